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
// Actions (thread: kernel functions, also in each action's `kernel:`; virt/kvm/vfio.c,
// virt/kvm/kvm_main.c, drivers/vfio/group.c, drivers/vfio/vfio_main.c):
//   FileAdd           ioctl: KVM_DEV_VFIO_GROUP_ADD: under kv->lock, get_file, vfio_file_set_kvm(kvm)
//   FileDel           ioctl: KVM_DEV_VFIO_GROUP_DEL: vfio_file_set_kvm(NULL), fput(kvf->file)
//   CloseKvmVfioDev   close: close + __fput -> kvm_device_release (release designs:
//                     mutex_lock(kvm->lock), then KvmVfioRelease: kvm_vfio_release, unlock,
//                     kvm_put_kvm; destroy designs: no .release, kvm->lock not taken, kvm_put_kvm)
//   CloseVm           close: close + __fput -> kvm_vm_release -> kvm_put_kvm
//   OpenDevice        ioctl: VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open under group_lock: first
//                     open reads group->kvm and takes a users_count reference (release designs,
//                     with an association: OpenDriver is vfio-ap's open_device taking kvm->lock)
//   CloseDevice       close: close + __fput -> vfio_device_fops_release -> vfio_device_group_close:
//                     group_lock, last close puts the reference (kvm_put_kvm)
//   DestroyDevices    close: kvm_destroy_vm, after the last put (in the closer's context): the
//                     rest of its steps, kvm_destroy_devices -> kvm_vfio_destroy (destroy designs)
//                     among them; then return to the caller (group_lock unlock when the caller
//                     was CloseDevice)
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
import { defineSpec } from "../../checker/spec.ts";
import { closeFd, fdInstalled, deferredFput, fdSchema, fileSchema, installedFd, newFile } from "../kernel/file.ts";
import { kvmDestroyVm, kvmGet, kvmIsFreed, kvmPut, kvmSchema, newKvm, kvmUse, kvmVmFileRelease } from "../kernel/kvm.ts";
import { kvmDestroyDevices, kvmDeviceFileRelease, kvmDeviceRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import { kvmVfioOps, vfioDeviceGetKvmSafe } from "../kernel/kvm-vfio.ts";
import { acquire, isFree, lockSchema, release, unlocked, type Lock } from "../kernel/lock.ts";
import { firstBusy, threadSchema } from "../kernel/thread.ts";
import { freedOnceClosed } from "../kernel/lifetime.ts";

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
  vmFd: fdSchema(),
  vmFile: fileSchema({ maxCount: 1 }),
  kvmVfioFd: fdSchema(),
  kvmVfioFile: fileSchema({ maxCount: 1 }),
  /** The kvm-vfio device: listed on kvm->devices until its ->release or ->destroy. */
  kvmVfio: kvmDeviceSchema(),
  /** kvf entry + group->kvm (raw). */
  assoc: z.boolean(),
  device: z.enum(["unopened", "open", "closed"]),
  /** The open device holds a users_count reference. */
  devRef: z.boolean(),
  /** kvm_get_kvm_safe refused: the open found the association with users_count 0. */
  safeRefused: z.boolean(),
  /** struct kvm; kvm->lock is its `lock`. */
  kvm: kvmSchema({ maxUsers: 3, threads: 5 }),
  groupLock: lockSchema(5),
  /** vfio_device_open holding group_lock, before the driver's open_device takes kvm->lock. */
  open: threadSchema(["driver"], {}),
  /** kvm_device_release holding kvm->lock, before kvm_vfio_release. */
  kvRel: threadSchema(["release"], {}),
  /** kvm_destroy_vm in progress, and the context that did the last put. */
  destroy: threadSchema(["destroyDevices"], { ctx: z.enum(["none", "vfioClose", "other"]) }),
});
type S = z.infer<typeof stateSchema>;

/** Every fd closed: the VM's, the kvm-vfio device's, the VFIO device's (the group fd stays open). */
const allClosed = (s: S) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.device !== "open";
/** kvm freed and the association cleared. */
const allFreed = (s: S) => kvmIsFreed(s.kvm) && !s.assoc;

export default defineSpec({
  name: "kvm-vfio/destroy-era",
  summary: "kvm-vfio .destroy (before 51cdc8bc120e) vs .release (kvm->lock/group_lock ABBA until 2b48f52f2bff): users_count 0 with a live association",
  source: "brief design 1 variant and table C1; 51cdc8bc120e, 2b48f52f2bff; virt/kvm/vfio.c, drivers/vfio/group.c, virt/kvm/kvm_main.c",
  params,
  state: () => stateSchema,
  init: () => ({
    vmFd: installedFd(),
    vmFile: newFile(),
    kvmVfioFd: installedFd(),
    kvmVfioFile: newFile(),
    kvmVfio: { state: "listed" as const },
    assoc: false,
    device: "unopened" as const,
    devRef: false,
    safeRefused: false,
    kvm: newKvm({ users: 2 }),
    groupLock: unlocked(),
    open: { pc: "idle" as const },
    kvRel: { pc: "idle" as const },
    destroy: { pc: "idle" as const, ctx: "none" as const },
  }),
  actions: (p) => {
    const onRelease = p.design === "release" || p.design === "release-51cdc8bc120e";
    const ops = kvmVfioOps({ era: onRelease ? "release" : "destroy" });
    /** vfio_file_set_kvm takes group_lock (before 2b48f52f2bff) rather than kvm_ref_lock. */
    const assocUnderGroupLock = p.design !== "release";
    const setKvmLock = assocUnderGroupLock ? "group_lock" : "kvm_ref_lock";
    /** The device's reference: vfio core's kvm_get_kvm_safe, or the driver's kvm_get_kvm. */
    const getSafe = p.design === "release" || p.design === "destroy-get_kvm_safe";
    const tidOf = (s: S) => (s.destroy.ctx === "vfioClose" ? VFIO_CLOSE : OTHER);
    /** Guard of a mutex_lock: free, or (lockdep) already ours, so acquire reports the recursion. */
    const canTake = (l: Lock, tid: number) => isFree(l) || (p.lockdep && l.holder === tid);

    /** vfio_file_set_kvm(group file, kvm or NULL): under group_lock or, from 2b48f52f2bff, kvm_ref_lock. */
    function setKvm(s: S, tid: number, to: boolean): void {
      if (!assocUnderGroupLock) {
        s.assoc = to; // kvm_ref_lock, innermost spinlock
        return;
      }
      acquire(s.groupLock, tid, "group->group_lock");
      s.assoc = to;
      release(s.groupLock, tid, "group->group_lock");
    }
    /** A kvm_put_kvm was the last: kvm_destroy_vm's remaining steps run next, in the caller's context. */
    function destroyFrom(s: S, last: boolean, ctx: "vfioClose" | "other"): boolean {
      if (last) s.destroy = { pc: "destroyDevices", ctx };
      return last;
    }

    return {
      FileAdd: {
        kernel: `KVM_DEV_VFIO_GROUP_ADD: kvm_vfio_group_add -> get_file, kvm_vfio_group_set_kvm -> vfio_file_set_kvm (${setKvmLock})`,
        thread: "ioctl",
        when: (s: S) => fdInstalled(s.kvmVfioFd) && !s.assoc && (!assocUnderGroupLock || isFree(s.groupLock)),
        then: (s: S) => setKvm(s, IOCTL, true),
      },
      FileDel: {
        kernel: `KVM_DEV_VFIO_GROUP_DEL: kvm_vfio_group_del -> vfio_file_set_kvm(NULL) (${setKvmLock}), fput(kvf->file)`,
        thread: "ioctl",
        when: (s: S) => fdInstalled(s.kvmVfioFd) && s.assoc && (!assocUnderGroupLock || isFree(s.groupLock)),
        then: (s: S) => setKvm(s, IOCTL, false),
      },
      CloseKvmVfioDev: {
        // virt/kvm/kvm_main.c:kvm_device_release: kvm->lock only around ops->release.
        kernel: onRelease
          ? "__fput -> kvm_device_release: mutex_lock(kvm->lock)"
          : "__fput -> kvm_device_release: no .release, device stays on kvm->devices; kvm_put_kvm",
        thread: "close",
        when: (s: S) => fdInstalled(s.kvmVfioFd) && (!onRelease || isFree(s.kvm.lock)),
        then: (s: S) => {
          closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file");
          if (onRelease) {
            acquire(s.kvm.lock, KV_RELEASE, "kvm->lock");
            s.kvRel.pc = "release";
            return;
          }
          destroyFrom(s, kvmDeviceFileRelease(s.kvmVfio, s.kvm, s.kvmVfioFile, ops), "other");
        },
      },
      ...(onRelease ? {
        KvmVfioRelease: {
          // virt/kvm/vfio.c:kvm_vfio_release -> vfio_file_set_kvm(NULL): group_lock before
          // 2b48f52f2bff, kvm_ref_lock (innermost spinlock) from it on.
          kernel: `kvm_vfio_release -> vfio_file_set_kvm(NULL) (${setKvmLock}); list_del; mutex_unlock(kvm->lock); kvm_put_kvm`,
          thread: "close",
          when: (s: S) => s.kvRel.pc === "release" && (!assocUnderGroupLock || !s.assoc || canTake(s.groupLock, KV_RELEASE)),
          then: (s: S) => {
            let last = false;
            deferredFput(s.kvmVfioFile, "kvm-vfio device file", {
              // kvm->lock is held since CloseKvmVfioDev: the device release runs without taking it.
              release: () => { last = kvmDeviceRelease(s.kvmVfio, s.kvm, ops, undefined, () => s.assoc && setKvm(s, KV_RELEASE, false)); },
            });
            release(s.kvm.lock, KV_RELEASE, "kvm->lock");
            s.kvRel.pc = "idle";
            destroyFrom(s, last, "other");
          },
        },
      } : {}),
      CloseVm: {
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm",
        thread: "close",
        when: (s: S) => fdInstalled(s.vmFd),
        then: (s: S) => {
          closeFd(s.vmFd, s.vmFile, "VM file");
          destroyFrom(s, kvmVmFileRelease(s.kvm, s.vmFile), "other");
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
        thread: "ioctl",
        when: (s: S) => s.device === "unopened" && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, OPEN, "group->group_lock");
          s.device = "open";
          if (s.assoc) {
            kvmUse(s.kvm, "vfio_device_open (device->kvm = group->kvm)");
            if (getSafe) {
              s.devRef = vfioDeviceGetKvmSafe(s.kvm);
              s.safeRefused ||= !s.devRef;
            }
            if (onRelease) {
              s.open.pc = "driver"; // vfio-ap's open_device runs next, still under group_lock
              return;
            }
            if (!getSafe) {
              kvmGet(s.kvm); // vfio_ap_mdev_set_kvm, under kvm->lock (uncontended here)
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
          thread: "ioctl",
          when: (s: S) => s.open.pc === "driver" && canTake(s.kvm.lock, OPEN),
          then: (s: S) => {
            acquire(s.kvm.lock, OPEN, "kvm->lock");
            if (!getSafe) {
              kvmGet(s.kvm);
              s.devRef = true;
            }
            release(s.kvm.lock, OPEN, "kvm->lock");
            release(s.groupLock, OPEN, "group->group_lock");
            s.open.pc = "idle";
          },
        },
      } : {}),
      CloseDevice: {
        kernel: "__fput -> vfio_device_fops_release -> vfio_device_group_close (group_lock): last close -> kvm_put_kvm",
        thread: "close",
        when: (s: S) => s.device === "open" && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, VFIO_CLOSE, "group->group_lock");
          s.device = "closed";
          const ref = s.devRef;
          s.devRef = false;
          // The last put runs kvm_destroy_vm with group_lock still held.
          if (ref && destroyFrom(s, kvmPut(s.kvm), "vfioClose")) return;
          release(s.groupLock, VFIO_CLOSE, "group->group_lock");
        },
      },
      DestroyDevices: {
        kernel: onRelease
          ? "kvm_destroy_vm: kvm_destroy_devices (kvm-vfio already released), free; return"
          : "kvm_destroy_vm: kvm_destroy_devices -> kvm_vfio_destroy -> vfio_file_set_kvm(NULL) (group_lock), free; return",
        thread: "close",
        when: (s: S) =>
          s.destroy.pc === "destroyDevices" && (s.kvmVfio.state !== "listed" || !s.assoc || canTake(s.groupLock, tidOf(s))),
        then: (s: S) => {
          const tid = tidOf(s);
          kvmDestroyVm(s.kvm, {
            destroyDevices: () => kvmDestroyDevices([{ dev: s.kvmVfio, ops, body: () => s.assoc && setKvm(s, tid, false) }]),
          });
          if (tid === VFIO_CLOSE) release(s.groupLock, tid, "group->group_lock"); // back in vfio_device_group_close
          s.destroy = { pc: "idle", ctx: "none" };
        },
      },
    };
  },
  ownership: {
    kvm: {
      doc: "kvm->users_count, while struct kvm is allocated (until kvm_destroy_vm frees it)",
      count: (s) => s.kvm.users.count,
      live: (s) => !kvmIsFreed(s.kvm),
      holders: {
        // Each file's reference is put by its release: held until the file is freed.
        vmFile: (s) => s.vmFile.state !== "freed",
        kvmVfioDevice: (s) => s.kvmVfioFile.state !== "freed",
        device: (s) => s.devRef,
      },
    },
  },
  invariants: {
    assocPinsVm: {
      doc: "S4: an association exists only while users_count >= 1 (else kvm_get_kvm_safe is needed)",
      holds: (s) => !s.assoc || s.kvm.users.count >= 1,
    },
    kvmFreedUnreferenced: {
      doc: "S1: once kvm_destroy_vm ran, nothing references the VM",
      holds: (s) => !kvmIsFreed(s.kvm) || (!fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.kvRel.pc === "idle" && !s.assoc && !s.devRef),
    },
  },
  quiescent: {
    noLeak: {
      doc: "L1: nothing left to run => kvm freed and the association cleared",
      holds: allFreed,
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm and the association") },
  // The deferred work runs in the closing task here (close and __fput are one step,
  // kvm_destroy_vm runs where the last put was): a close that has begun goes on.
  fairness: { weak: [{ thread: "close" }] },
  reachable: (p) => ({
    vfioHoldsLastVmRef: {
      doc: "witness: every KVM fd is closed and an open VFIO device keeps the VM alive",
      when: (s: S) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.devRef && !kvmIsFreed(s.kvm),
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
      violated: {
        noFault: { steps: 4, message: "refcount_t: addition on 0" }, assocPinsVm: { steps: 3 },
        // Not a leak noLeak can see: kvm_destroy_vm from the device's last close takes group_lock again and faults.
        freedOnceClosed: { steps: 5, message: "every step enabled there faults (DestroyDevices)" },
      },
      doc: "v6.0-v6.2-rc4: the association is cleared only at kvm_destroy_vm, so open_device's plain kvm_get_kvm can take a reference from 0; and kvm_destroy_vm from the VFIO close path takes group_lock again, so the VM is never freed",
    },
    {
      when: { design: "release-51cdc8bc120e" },
      violated: {
        noDeadlock: { steps: 4, message: "vfio open at driver is blocked" },
        // The deadlocked run never frees kvm; a deadlock is not quiescent, so noLeak does not look there.
        freedOnceClosed: { steps: 4, message: "deadlock, vfio open at driver is blocked" },
      },
      doc: "51cdc8bc120e: kvm->lock then group_lock in release against group_lock then kvm->lock in vfio-ap's open (fixed by 2b48f52f2bff)",
    },
    {
      when: { design: "destroy-get_kvm_safe" },
      violated: {
        noFault: { steps: 6, message: "possible recursive locking detected" }, assocPinsVm: { steps: 3 },
        freedOnceClosed: { steps: 5, message: "every step enabled there faults (DestroyDevices)" },
      },
      doc: "never shipped: .destroy with the _safe get shows the group_lock self-deadlock 51cdc8bc120e fixed",
    },
  ],
});
