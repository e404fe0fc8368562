// A kmalloc'd object (mm/slub.c, include/linux/slab.h) and what KASAN says about its misuse
// (mm/kasan/report.c:print_error_description, mm/kasan/report_generic.c:get_shadow_bug_type).
//
// A slot is:
//   none   the pointer is NULL (never allocated, or the owner cleared it)
//   live   allocated by kmalloc/kzalloc
//   rcu    kfree_rcu queued it: still readable until the grace period ends
//   freed  kfree ran (or the grace period after kfree_rcu did)
//
// KASAN prints its report and, by default (kasan.fault=report), the kernel goes on. The model
// stops at the report: what runs after a use-after-free is undefined, so there is nothing
// faithful to continue with. The wording is recent generic KASAN's: "slab-use-after-free"
// (kernels up to about v6.2 print "use-after-free" for slab objects as well).
import { z } from "zod";
import { Fault } from "../../checker/spec.ts";

export const slabStates = ["none", "live", "rcu", "freed"] as const;
export type SlabState = (typeof slabStates)[number];

export interface SlabObject {
  state: SlabState;
}

export function slabSchema() {
  return z.object({ state: z.enum(slabStates) });
}

/** A NULL pointer: nothing allocated yet. */
export function noObject(): SlabObject {
  return { state: "none" };
}

/** An object allocated before the model starts. */
export function liveObject(): SlabObject {
  return { state: "live" };
}

/**
 * kmalloc / kzalloc (include/linux/slab.h): the slot now holds a new live object. A freed
 * slot may be allocated again (a new object at the same place, as the slab would); a slot
 * that still holds a live or pending object would lose it, which is the spec's leak.
 */
export function kmalloc(o: SlabObject, what: string): void {
  if (o.state === "live" || o.state === "rcu") {
    throw new Fault(`model: kmalloc of ${what} over an object that is still ${o.state === "live" ? "allocated" : "waiting for its grace period"} (it leaks)`, o);
  }
  o.state = "live";
}

/** kzalloc: kmalloc with __GFP_ZERO; the same lifetime. */
export const kzalloc = kmalloc;

/**
 * kfree (mm/slub.c:kfree) called from `fn`. kfree(NULL) does nothing. A second kfree is
 * KASAN's "double-free" report, which names the function that freed again.
 */
export function kfree(o: SlabObject, what: string, fn: string): void {
  switch (o.state) {
    case "none":
      return;
    case "live":
      o.state = "freed";
      return;
    case "freed":
      throw new Fault(`BUG: KASAN: double-free in ${fn}: kfree of ${what}, already freed`, o);
    case "rcu":
      // KASAN would report only when the grace period's free runs (a double free there).
      throw new Fault(`model: kfree of ${what} in ${fn} while its kfree_rcu is pending (the grace period frees it again)`, o);
  }
}

/**
 * kfree_rcu (include/linux/rcupdate.h, mm/slab_common.c:kvfree_call_rcu) called from `fn`:
 * the object stays readable by RCU readers until a grace period ends (`rcuGracePeriod`).
 * kfree_rcu(NULL) does nothing. kfree_rcu writes the rcu_head inside the object, so on a
 * freed object it is KASAN's use-after-free (a write).
 */
export function kfreeRcu(o: SlabObject, what: string, fn: string): void {
  switch (o.state) {
    case "none":
      return;
    case "live":
      o.state = "rcu";
      return;
    case "freed":
      throw new Fault(`BUG: KASAN: slab-use-after-free in ${fn}: Write of ${what} (kfree_rcu's rcu_head) after kfree`, o);
    case "rcu":
      throw new Fault(`model: kfree_rcu of ${what} in ${fn} twice (its rcu_head is queued already)`, o);
  }
}

/** A kfree_rcu is waiting for its grace period. */
export function isRcuPending(o: SlabObject): boolean {
  return o.state === "rcu";
}

/** The grace period ended: the queued object is freed (kvfree_rcu's batch runs kfree). */
export function rcuGracePeriod(o: SlabObject, what: string): void {
  if (o.state !== "rcu") throw new Fault(`model: grace period for ${what} with no kfree_rcu pending (it is ${o.state})`, o);
  o.state = "freed";
}

export function isAllocated(o: SlabObject): boolean {
  return o.state === "live" || o.state === "rcu";
}

/**
 * `fn` dereferences the object (`access` is KASAN's word: Read or Write). Freed: KASAN's
 * slab-use-after-free naming `fn`. NULL: the x86 oops line. While a kfree_rcu is pending the
 * memory is still valid (that is the point of kfree_rcu); whether the access sits inside an
 * RCU read-side section that began before the kfree_rcu is the spec's guard to express.
 */
export function slabUse(o: SlabObject, what: string, fn: string, access: "Read" | "Write" = "Read"): void {
  if (o.state === "freed") throw new Fault(`BUG: KASAN: slab-use-after-free in ${fn}: ${access} of ${what} after kfree`, o);
  if (o.state === "none") {
    throw new Fault(`BUG: kernel NULL pointer dereference, address: 0000000000000000 (${fn}: ${access} of ${what})`, o);
  }
}
