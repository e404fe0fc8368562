// Kernel modules (kernel/module/main.c): reference counts, symbol_get, unload.
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

export const moduleStates = ["live", "going", "gone"] as const;

export interface Module {
  refs: number;
  state: (typeof moduleStates)[number];
}

export function moduleSchema(maxRefs: number) {
  return z.object({ refs: z.number().int().min(0).max(maxRefs), state: z.enum(moduleStates) });
}

export function loadedModule(): Module {
  return { refs: 0, state: "live" };
}

/** try_module_get: +1 if the module is live; false once unloading started. */
export function tryModuleGet(m: Module): boolean {
  if (m.state !== "live") return false;
  m.refs += 1;
  return true;
}

/** __module_get: unconditional +1; the caller already holds a reference. */
export function moduleGet(m: Module, name: string): void {
  // kernel/module/main.c:__module_get has no check: the wording is the model's.
  if (m.state === "gone") throw new Fault(`model: __module_get on unloaded module ${name} (the kernel does not check)`, m);
  m.refs += 1;
}

/** module_put: -1, WARN on underflow. Never unloads by itself. */
export function modulePut(m: Module, name: string): void {
  if (m.state === "gone") throw new Fault(`BUG: unable to handle page fault: module_put on unloaded module ${name}`, m);
  // kernel/module/main.c:module_put: a bare WARN_ON(ret < 0), no message of its own.
  if (m.refs === 0) throw new Fault(`model: module_put underflow on ${name} (the kernel: a bare WARN_ON in module_put)`, m);
  m.refs -= 1;
}

/** symbol_get(sym): pins the symbol's owner (strong_try_module_get); false if it is going or gone. */
export const symbolGet = tryModuleGet;
/** symbol_put(sym): module_put of its owner. */
export const symbolPut = modulePut;

/** delete_module may proceed: live, no references, no loaded module depends on it. */
export function canUnload(m: Module, dependents: readonly Module[] = []): boolean {
  return m.state === "live" && m.refs === 0 && dependents.every((d) => d.state === "gone");
}

/** delete_module in one step: GOING, ->exit, free_module. */
export function unloadModule(m: Module): void {
  m.state = "gone";
}

/**
 * Running code of `m` (calling into it through a stored function pointer, or returning
 * into it) after it was freed is a crash.
 */
export function runModuleCode(m: Module, name: string, what: string): void {
  if (m.state === "gone") {
    throw new Fault(`BUG: unable to handle page fault: ${what} calls into unloaded module ${name}`, m);
  }
}
