// kvm-vfio/destroy-era: brief design 1, variant "kvm-vfio uses .destroy" (table C1), against
// 51cdc8bc120e ("kvm/vfio: Fix potential deadlock on vfio group_lock", v6.2), which switched
// the kvm-vfio device from .destroy to .release.
//
// Designs (`design`), in kernel order:
//   destroy-get_kvm  v6.0 (421cfe6596f6) to v6.2-rc4: the kvm-vfio device has .destroy, so it
//                    stays on kvm->devices after its fd is closed; associations are cleared by
//                    kvm_destroy_vm -> kvm_destroy_devices -> kvm_vfio_destroy ->
//                    vfio_file_set_kvm(NULL), which takes group_lock. The driver takes the
//                    device's kvm reference with a plain kvm_get_kvm in open_device.
//   release-51cdc8bc120e  51cdc8bc120e (v6.2-rc5) to 2b48f52f2bff: kvm_device_release holds
//                    kvm->lock and calls kvm_vfio_release, which clears every association
//                    through vfio_file_set_kvm (group_lock) before the device's users_count
//                    reference is put; open_device still runs under group_lock, and vfio-ap's
//                    (vfio_ap_ops.c:vfio_ap_mdev_set_kvm) takes kvm->lock there: ABBA, the
//                    deadlock 2b48f52f2bff fixed ("After 51cdc8bc120e, we have another
//                    deadlock scenario between the kvm->lock and the vfio group_lock").
//   release          2b48f52f2bff (v6.2) and later: group->kvm is written under kvm_ref_lock
//                    (a spinlock, innermost), not group_lock, and vfio core takes the device's
//                    reference with kvm_get_kvm_safe before open_device.
//   destroy-get_kvm_safe  never shipped: .destroy with the later core _safe get. Kept because
//                    it shows the group_lock self-deadlock 51cdc8bc120e fixed on its own,
//                    where the shipped destroy-get_kvm reaches IncFromZero first.
// Era details: the device's users_count reference belonged to the driver until 2b48f52f2bff
// (kvmgt's intel_vgpu_open_device, vfio-ap's vfio_ap_mdev_set_kvm: plain kvm_get_kvm) and to
// vfio core after it (vfio_device_get_kvm_safe/vfio_device_put_kvm). The driver modelled is
// vfio-ap: its open_device takes kvm->lock. v6.0/v6.1 used group_rwsem where v6.2-rc has
// group_lock; the model names group_lock.
//
// Actions (kernel functions also in each action's `kernel:`):
//   FileAdd           KVM_DEV_VFIO_GROUP_ADD: under kv->lock, get_file, vfio_file_set_kvm(kvm)
//   FileDel           KVM_DEV_VFIO_GROUP_DEL: vfio_file_set_kvm(NULL), fput(kvf->file)
//   CloseKvmVfioDev   close + __fput -> kvm_device_release (release designs: mutex_lock(kvm->lock),
//                     then KvmVfioRelease: kvm_vfio_release, unlock, kvm_put_kvm; destroy
//                     designs: no .release, kvm->lock not taken, kvm_put_kvm)
//   CloseVm           close + __fput -> kvm_vm_release -> kvm_put_kvm
//   OpenDevice        VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open under group_lock: first open
//                     reads group->kvm and takes a users_count reference (release designs, with
//                     an association: OpenDriver is vfio-ap's open_device taking kvm->lock)
//   CloseDevice       close + __fput -> vfio_device_fops_release -> vfio_device_group_close:
//                     group_lock, last close puts the reference (kvm_put_kvm)
//   DestroyDevices    kvm_destroy_vm, after the last put: kvm_destroy_devices -> kvm_vfio_destroy
//                     (destroy designs), free; then return to the caller (group_lock unlock when
//                     the caller was CloseDevice)
// kvm_destroy_vm is a step of its own so that other tasks can run while users_count is 0 and
// the association is still set; it runs in the context that did the last put (`ctx`), which
// matters because the VFIO close path holds group_lock there. Its phases before
// kvm_destroy_devices take no lock of this model, so they fold into the put.
//
// Abstractions, and why they are sound:
//   - Modules are not modelled: neither fault involves an unload (design 1's vendor-module hole
//     is in vm-pinning). One VFIO group with one device; the group fd stays open (closing it
//     only disables FileAdd/OpenDevice; its release touches neither group->kvm nor users_count).
//   - The VM, kvm-vfio and device files have no holder but their fd here, so close and the
//     deferred __fput are one step: the pending-release state only refuses ioctls on that fd.
//     For the same reason CloseDevice is enabled only once group_lock is free.
//   - The kvm-vfio group entry (kvf) and group->kvm are set and cleared together under kv->lock,
//     so one flag (`assoc`). kv->lock, kvm_ref_lock and dev_set->lock are never held across
//     steps. kvm->lock is held across steps only where a path nests another lock inside it
//     (release designs); in the destroy designs no path of this model takes kvm->lock and
//     group_lock together except vfio-ap's open, which is then one step.
//   - Every step takes and drops its locks except CloseDevice, which holds group_lock until
//     kvm_destroy_vm returns when its put was the last. The device opens at most once: a reopen
//     takes the same path, and a bound keeps leak checks meaningful.
//   - lockdep (default): taking a mutex the task already holds is the fault "possible recursive
//     locking detected"; with lockdep=false the task blocks and the checker reports a deadlock.
import { z } from "zod";
import { defineSpec, Fault } from "../../checker/spec.ts";
import { kvmGetKvm, kvmGetKvmSafe, kvmPutKvm } from "../kernel/kvm.ts";
import { acquire, isFree, lockSchema, release, unlocked, type Lock } from "../kernel/lock.ts";
import { refcountSchema } from "../kernel/refcount.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";

export const designs = ["destroy-get_kvm", "release-51cdc8bc120e", "release", "destroy-get_kvm_safe"] as const;

const params = z.object({
  design: z.enum(designs).default("release"),
  lockdep: z.boolean().default(true),
});

/**
 * Lock owners: atomic ioctls/releases, the VFIO device close path, kvm_destroy_vm elsewhere,
 * the device open path, kvm_device_release.
 */
const IOCTL = 1, VFIO_CLOSE = 2, OTHER = 3, OPEN = 4, KV_RELEASE = 5;

const stateSchema = z.object({
  vmFd: z.boolean(),
  kvmVfioFd: z.boolean(),
  /** The kvm-vfio device is still on kvm->devices (destroy designs: until kvm_destroy_devices). */
  kvmVfioOnList: z.boolean(),
  /** kvf entry + group->kvm (raw). */
  assoc: z.boolean(),
  device: z.enum(["unopened", "open", "closed"]),
  /** The open device holds a users_count reference. */
  devRef: z.boolean(),
  /** kvm_get_kvm_safe refused: the open found the association with users_count 0. */
  safeRefused: z.boolean(),
  users: refcountSchema(3),
  kvmFreed: z.boolean(),
  groupLock: lockSchema(5),
  kvmLock: lockSchema(5),
  /** vfio_device_open holding group_lock, before the driver's open_device takes kvm->lock. */
  open: threadSchema(["driver"], {}),
  /** kvm_device_release holding kvm->lock, before kvm_vfio_release. */
  kvRel: threadSchema(["release"], {}),
  /** kvm_destroy_vm in progress, and the context that did the last put. */
  destroy: threadSchema(["destroyDevices"], { ctx: z.enum(["none", "vfioClose", "other"]) }),
});
type S = z.infer<typeof stateSchema>;

export default defineSpec({
  name: "kvm-vfio/destroy-era",
  summary: "kvm-vfio .destroy (before 51cdc8bc120e) vs .release (kvm->lock/group_lock ABBA until 2b48f52f2bff): users_count 0 with a live association",
  source: "brief design 1 variant and table C1; 51cdc8bc120e, 2b48f52f2bff; virt/kvm/vfio.c, drivers/vfio/group.c, virt/kvm/kvm_main.c",
  params,
  state: () => stateSchema,
  init: () => ({
    vmFd: true,
    kvmVfioFd: true,
    kvmVfioOnList: true,
    assoc: false,
    device: "unopened" as const,
    devRef: false,
    safeRefused: false,
    users: { count: 2 },
    kvmFreed: false,
    groupLock: unlocked(),
    kvmLock: unlocked(),
    open: { pc: "idle" as const },
    kvRel: { pc: "idle" as const },
    destroy: { pc: "idle" as const, ctx: "none" as const },
  }),
  actions: (p) => {
    const onRelease = p.design === "release" || p.design === "release-51cdc8bc120e";
    /** vfio_file_set_kvm takes group_lock (before 2b48f52f2bff) rather than kvm_ref_lock. */
    const assocUnderGroupLock = p.design !== "release";
    const setKvmLock = assocUnderGroupLock ? "group_lock" : "kvm_ref_lock";
    /** The device's reference: vfio core's kvm_get_kvm_safe, or the driver's kvm_get_kvm. */
    const getSafe = p.design === "release" || p.design === "destroy-get_kvm_safe";
    const tidOf = (s: S) => (s.destroy.ctx === "vfioClose" ? VFIO_CLOSE : OTHER);
    /** Guard of a mutex_lock: free, or (lockdep) already ours, so acquire reports the recursion. */
    const canTake = (l: Lock, tid: number) => isFree(l) || (p.lockdep && l.holder === tid);

    /** vfio_file_set_kvm(group file, NULL) under group_lock. */
    function clearAssoc(s: S, tid: number): void {
      acquire(s.groupLock, tid, "group->group_lock");
      s.assoc = false;
      release(s.groupLock, tid, "group->group_lock");
    }
    /** kvm_put_kvm; the last one starts kvm_destroy_vm in the caller's context. */
    function putKvm(s: S, ctx: "vfioClose" | "other"): boolean {
      if (!kvmPutKvm(s.users)) return false;
      s.destroy = { pc: "destroyDevices", ctx };
      return true;
    }

    return {
      FileAdd: {
        kernel: `KVM_DEV_VFIO_GROUP_ADD: kvm_vfio_group_add -> get_file, kvm_vfio_group_set_kvm -> vfio_file_set_kvm (${setKvmLock})`,
        when: (s: S) => s.kvmVfioFd && !s.assoc && (!assocUnderGroupLock || isFree(s.groupLock)),
        then: (s: S) => {
          if (!assocUnderGroupLock) {
            s.assoc = true; // kvm_ref_lock
            return;
          }
          acquire(s.groupLock, IOCTL, "group->group_lock");
          s.assoc = true;
          release(s.groupLock, IOCTL, "group->group_lock");
        },
      },
      FileDel: {
        kernel: `KVM_DEV_VFIO_GROUP_DEL: kvm_vfio_group_del -> vfio_file_set_kvm(NULL) (${setKvmLock}), fput(kvf->file)`,
        when: (s: S) => s.kvmVfioFd && s.assoc && (!assocUnderGroupLock || isFree(s.groupLock)),
        then: (s: S) => {
          if (assocUnderGroupLock) clearAssoc(s, IOCTL);
          else s.assoc = false; // kvm_ref_lock
        },
      },
      CloseKvmVfioDev: {
        // virt/kvm/kvm_main.c:kvm_device_release: kvm->lock only around ops->release.
        kernel: onRelease
          ? "__fput -> kvm_device_release: mutex_lock(kvm->lock)"
          : "__fput -> kvm_device_release: no .release, device stays on kvm->devices; kvm_put_kvm",
        when: (s: S) => s.kvmVfioFd && (!onRelease || isFree(s.kvmLock)),
        then: (s: S) => {
          s.kvmVfioFd = false;
          if (onRelease) {
            acquire(s.kvmLock, KV_RELEASE, "kvm->lock");
            s.kvRel.pc = "release";
            return;
          }
          putKvm(s, "other");
        },
      },
      ...(onRelease ? {
        KvmVfioRelease: {
          // virt/kvm/vfio.c:kvm_vfio_release -> vfio_file_set_kvm(NULL): group_lock before
          // 2b48f52f2bff, kvm_ref_lock (innermost spinlock) from it on.
          kernel: assocUnderGroupLock
            ? "kvm_vfio_release -> vfio_file_set_kvm(NULL) (group_lock); list_del; mutex_unlock(kvm->lock); kvm_put_kvm"
            : "kvm_vfio_release -> vfio_file_set_kvm(NULL) (kvm_ref_lock); list_del; mutex_unlock(kvm->lock); kvm_put_kvm",
          when: (s: S) => s.kvRel.pc === "release" && (!assocUnderGroupLock || !s.assoc || canTake(s.groupLock, KV_RELEASE)),
          then: (s: S) => {
            if (s.assoc) {
              if (assocUnderGroupLock) clearAssoc(s, KV_RELEASE);
              else s.assoc = false;
            }
            s.kvmVfioOnList = false;
            release(s.kvmLock, KV_RELEASE, "kvm->lock");
            s.kvRel.pc = "idle";
            putKvm(s, "other");
          },
        },
      } : {}),
      CloseVm: {
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm",
        when: (s: S) => s.vmFd,
        then: (s: S) => {
          s.vmFd = false;
          putKvm(s, "other");
        },
      },
      OpenDevice: {
        // drivers/vfio/group.c:vfio_device_group_open -> vfio_device_open, under group_lock.
        kernel: {
          "destroy-get_kvm": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): device->kvm = group->kvm; vfio-ap open_device: kvm->lock, kvm_get_kvm",
          "release-51cdc8bc120e": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open: mutex_lock(group_lock), device->kvm = group->kvm",
          release: "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_group_open: mutex_lock(group_lock), vfio_device_group_get_kvm_safe (kvm_ref_lock)",
          "destroy-get_kvm_safe": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): group->kvm -> kvm_get_kvm_safe (never shipped with .destroy)",
        }[p.design],
        when: (s: S) => s.device === "unopened" && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, OPEN, "group->group_lock");
          s.device = "open";
          if (s.assoc) {
            if (s.kvmFreed) throw new Fault("model: group->kvm names a struct kvm that kvm_destroy_vm freed (the model's wording)");
            if (getSafe) {
              s.devRef = kvmGetKvmSafe(s.users);
              s.safeRefused ||= !s.devRef;
            }
            if (onRelease) {
              s.open.pc = "driver"; // vfio-ap's open_device runs next, still under group_lock
              return;
            }
            if (!getSafe) {
              kvmGetKvm(s.users); // vfio_ap_mdev_set_kvm, under kvm->lock (uncontended here)
              s.devRef = true;
            }
          }
          release(s.groupLock, OPEN, "group->group_lock");
        },
      },
      ...(onRelease ? {
        OpenDriver: {
          // drivers/s390/crypto/vfio_ap_ops.c:vfio_ap_mdev_set_kvm: mutex_lock(&kvm->lock).
          kernel: getSafe
            ? "vfio-ap open_device -> vfio_ap_mdev_set_kvm: mutex_lock(kvm->lock); unlock; mutex_unlock(group_lock)"
            : "vfio-ap open_device -> vfio_ap_mdev_set_kvm: mutex_lock(kvm->lock), kvm_get_kvm; unlock; mutex_unlock(group_lock)",
          when: (s: S) => s.open.pc === "driver" && canTake(s.kvmLock, OPEN),
          then: (s: S) => {
            acquire(s.kvmLock, OPEN, "kvm->lock");
            if (!getSafe) {
              kvmGetKvm(s.users);
              s.devRef = true;
            }
            release(s.kvmLock, OPEN, "kvm->lock");
            release(s.groupLock, OPEN, "group->group_lock");
            s.open.pc = "idle";
          },
        },
      } : {}),
      CloseDevice: {
        kernel: "__fput -> vfio_device_fops_release -> vfio_device_group_close (group_lock): last close -> kvm_put_kvm",
        when: (s: S) => s.device === "open" && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, VFIO_CLOSE, "group->group_lock");
          s.device = "closed";
          const ref = s.devRef;
          s.devRef = false;
          // The last put runs kvm_destroy_vm with group_lock still held.
          if (ref && putKvm(s, "vfioClose")) return;
          release(s.groupLock, VFIO_CLOSE, "group->group_lock");
        },
      },
      DestroyDevices: {
        kernel: onRelease
          ? "kvm_destroy_vm: kvm_destroy_devices (kvm-vfio already released), free; return"
          : "kvm_destroy_vm: kvm_destroy_devices -> kvm_vfio_destroy -> vfio_file_set_kvm(NULL) (group_lock), free; return",
        when: (s: S) =>
          s.destroy.pc === "destroyDevices" && (!s.kvmVfioOnList || !s.assoc || canTake(s.groupLock, tidOf(s))),
        then: (s: S) => {
          const tid = tidOf(s);
          if (s.kvmVfioOnList) {
            if (s.assoc) clearAssoc(s, tid);
            s.kvmVfioOnList = false;
          }
          s.kvmFreed = true;
          if (tid === VFIO_CLOSE) release(s.groupLock, tid, "group->group_lock"); // back in vfio_device_group_close
          s.destroy = { pc: "idle", ctx: "none" };
        },
      },
    };
  },
  invariants: {
    usersExact: {
      doc: "users_count = VM fd + kvm-vfio fd + the open device's reference, until kvm_destroy_vm",
      holds: (s) =>
        s.kvmFreed ||
        s.users.count === (s.vmFd ? 1 : 0) + (s.kvmVfioFd || s.kvRel.pc !== "idle" ? 1 : 0) + (s.devRef ? 1 : 0),
    },
    assocPinsVm: {
      doc: "S4: an association exists only while users_count >= 1 (else kvm_get_kvm_safe is needed)",
      holds: (s) => !s.assoc || s.users.count >= 1,
    },
    kvmFreedUnreferenced: {
      doc: "S1: once kvm_destroy_vm ran, nothing references the VM",
      holds: (s) => !s.kvmFreed || (!s.vmFd && !s.kvmVfioFd && s.kvRel.pc === "idle" && !s.assoc && !s.devRef),
    },
  },
  quiescent: {
    noLeak: {
      doc: "L1: nothing left to run => kvm freed and the association cleared",
      holds: (s) => s.kvmFreed && !s.assoc,
    },
  },
  reachable: (p) => ({
    vfioHoldsLastVmRef: {
      doc: "witness: every KVM fd is closed and an open VFIO device keeps the VM alive",
      when: (s: S) => !s.vmFd && !s.kvmVfioFd && s.devRef && !s.kvmFreed,
    },
    destroyUnderGroupLock: {
      doc: "witness: the VFIO close path's put is the last one, so kvm_destroy_vm runs holding group_lock",
      when: (s: S) => s.destroy.ctx === "vfioClose",
    },
    // The _safe get matters only in the destroy era; since .release it cannot fail.
    ...(!(p.design === "release" || p.design === "destroy-get_kvm_safe") ? {} : {
      getKvmSafeRefused: {
        doc: "kvm_get_kvm_safe at open finds users_count 0 behind a live association",
        expect: p.design === "release" ? "unreachable" as const : "reachable" as const,
        when: (s: S) => s.safeRefused,
      },
    }),
  }),
  busy: (s) => firstBusy({ kvm_destroy_vm: s.destroy, "vfio open": s.open, kvm_device_release: s.kvRel }),
  expected: [
    {
      when: { design: "destroy-get_kvm" },
      violated: { noFault: { steps: 4, message: "refcount_t: addition on 0" }, assocPinsVm: { steps: 3 } },
      doc: "v6.0-v6.2-rc4: the association is cleared only at kvm_destroy_vm, so open_device's plain kvm_get_kvm can take a reference from 0",
    },
    {
      when: { design: "release-51cdc8bc120e" },
      violated: { noDeadlock: { steps: 4, message: "vfio open at driver is blocked" } },
      doc: "51cdc8bc120e: kvm->lock then group_lock in release against group_lock then kvm->lock in vfio-ap's open (fixed by 2b48f52f2bff)",
    },
    {
      when: { design: "destroy-get_kvm_safe" },
      violated: { noFault: { steps: 6, message: "possible recursive locking detected" }, assocPinsVm: { steps: 3 } },
      doc: "never shipped: .destroy with the _safe get shows the group_lock self-deadlock 51cdc8bc120e fixed",
    },
  ],
});
