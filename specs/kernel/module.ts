// Kernel modules (kernel/module/main.c): reference counts, symbol_get, unload, and the
// module's text while a thread runs it.
//
// `refs` is module_refcount(): the kernel's refcnt minus MODULE_REF_BASE. States: live,
// going (delete_module passed its checks: try_module_get fails, ->exit runs), gone (freed).
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";
import { kernelWarn, warnedField, type MayWarn } from "./warn.ts";

export const moduleStates = ["live", "going", "gone"] as const;

export interface Module extends MayWarn {
  refs: number;
  state: (typeof moduleStates)[number];
  /** Threads now executing the module's text (present when the schema bounds it). */
  running?: number;
}

export function moduleSchema(maxRefs: number) {
  return z.object({ refs: z.number().int().min(0).max(maxRefs), state: z.enum(moduleStates) });
}

export function loadedModule(): Module {
  return { refs: 0, state: "live" };
}

/**
 * kernel/module/main.c:try_module_get: +1 if the module is live (module_is_live and
 * atomic_inc_not_zero); false once delete_module marked it GOING.
 */
export function tryModuleGet(m: Module): boolean {
  if (m.state !== "live") return false;
  m.refs += 1;
  return true;
}

/** kernel/module/main.c:__module_get: unconditional +1; the caller already holds a reference. */
export function moduleGet(m: Module, name: string): void {
  // kernel/module/main.c:__module_get has no check: the wording is the model's.
  if (m.state === "gone") throw new Fault(`model: __module_get on unloaded module ${name} (the kernel does not check)`, m);
  m.refs += 1;
}

/**
 * kernel/module/main.c:module_put: atomic_dec_if_positive, WARN_ON when the count was 0.
 * Never unloads by itself.
 */
export function modulePut(m: Module, name: string): void {
  if (m.state === "gone") throw new Fault(`BUG: unable to handle page fault: module_put on unloaded module ${name}`, m);
  // kernel/module/main.c:module_put: a bare WARN_ON(ret < 0), no message of its own.
  // atomic_dec_if_positive leaves 0 alone: in record mode the WARN is all that happens.
  if (m.refs === 0) {
    kernelWarn(m, `model: module_put underflow on ${name} (the kernel: a bare WARN_ON in module_put)`);
    return;
  }
  m.refs -= 1;
}

/**
 * symbol_get(sym) (kernel/module/main.c:__symbol_get): pins the symbol's owner with
 * strong_try_module_get; false if it is going or gone. Since v6.6 it also refuses symbols
 * not exported with EXPORT_SYMBOL_GPL (not modelled: a spec names only symbols that exist).
 */
export const symbolGet = tryModuleGet;
/** symbol_put(sym) (kernel/module/main.c:__symbol_put): module_put of its owner. */
export const symbolPut = modulePut;

/** kernel/module/main.c:delete_module would proceed: live, no references, no loaded module depends on it. */
export function canUnload(m: Module, dependents: readonly Module[] = []): boolean {
  return m.state === "live" && m.refs === 0 && dependents.every((d) => d.state === "gone");
}

/** kernel/module/main.c:delete_module in one step: GOING, ->exit, free_module (see deleteModule + freeModule for the two-step form). */
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

export interface ModuleSchemaOptions {
  /** Record module_put's WARN_ON and go on (the count stays 0), instead of faulting. */
  warn?: boolean;
  /** Count the threads inside the module's text, up to this many (enterModule/leaveModule). */
  maxRunning?: number;
}

function moduleShape(maxRefs: number) {
  return { refs: z.number().int().min(0).max(maxRefs), state: z.enum(moduleStates) };
}
type ModuleShape = ReturnType<typeof moduleShape>;

/** moduleSchema with the optional `warned` and `running` fields. */
export function moduleSchemaWith(maxRefs: number, o: ModuleSchemaOptions) {
  return z.object({
    ...moduleShape(maxRefs),
    ...(o.warn ? { warned: warnedField } : {}),
    ...(o.maxRunning !== undefined ? { running: z.number().int().min(0).max(o.maxRunning) } : {}),
  }) as unknown as z.ZodObject<ModuleShape & { warned: z.ZodOptional<z.ZodBoolean>; running: z.ZodOptional<z.ZodNumber> }>;
}

/** A live, unused module whose fields match moduleSchemaWith(_, o). */
export function newModule(o: ModuleSchemaOptions = {}): Module {
  const m: Module = loadedModule();
  if (o.warn) m.warned = false;
  if (o.maxRunning !== undefined) m.running = 0;
  return m;
}

/** The schema counts threads in the text (`in`: the state view refuses unknown fields). */
function hasRunning(m: Module): boolean {
  return "running" in m;
}

/** delete_module's errors, as the syscall returns them. */
export const EWOULDBLOCK = -11;
export const EBUSY = -16;

/**
 * kernel/module/main.c:delete_module, up to its point of no return: -EWOULDBLOCK while
 * another loaded module depends on it (source_list), -EBUSY unless it is LIVE, -EWOULDBLOCK
 * while anything holds a reference (try_stop_module: it never waits for the count to drop).
 * On 0 the module is GOING: try_module_get fails from now on,
 * and its ->exit runs next. Finish with `freeModule`.
 */
export function deleteModule(m: Module, dependents: readonly Module[] = []): 0 | typeof EWOULDBLOCK | typeof EBUSY {
  if (dependents.some((d) => d.state !== "gone")) return EWOULDBLOCK;
  if (m.state !== "live") return EBUSY;
  if (m.refs !== 0) return EWOULDBLOCK;
  m.state = "going";
  return 0;
}

/**
 * kernel/module/main.c:free_module at the end of delete_module (after ->exit and
 * async_synchronize_full): the text is freed. The kernel does not look for threads still
 * executing it; they fault when they return (`leaveModule`).
 */
export function freeModule(m: Module, name: string): void {
  if (m.state !== "going") throw new Fault(`model: free_module of ${name} while it is ${m.state}`, m);
  m.state = "gone";
}

/**
 * A thread calls into the module's text (a function pointer of its ops, a symbol_get'd
 * function) from `fn`: a call into freed text is the oops. Counts the thread in `running`
 * when the schema has it.
 */
export function enterModule(m: Module, name: string, fn: string): void {
  runModuleCode(m, name, fn);
  if (hasRunning(m)) m.running! += 1;
}

/**
 * The thread returns out of the module's text back to `fn`'s caller. If the module was
 * freed meanwhile (e.g. its code dropped the last reference to itself and was preempted
 * before returning), the return lands in freed text.
 */
export function leaveModule(m: Module, name: string, fn: string): void {
  if (m.state === "gone") {
    throw new Fault(`BUG: unable to handle page fault for address: ${fn} returns into ${name}'s text, freed by delete_module`, m);
  }
  if (hasRunning(m)) {
    if (m.running === 0) throw new Fault(`model: leaveModule of ${name} in ${fn} with no thread inside it`, m);
    m.running! -= 1;
  }
}

/** Some thread is still inside the module's text (needs the `running` field). */
export function moduleTextBusy(m: Module): boolean {
  return hasRunning(m) && m.running! > 0;
}
