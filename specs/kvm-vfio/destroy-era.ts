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
// Threads (steps; virt/kvm/vfio.c, virt/kvm/kvm_main.c, drivers/vfio/group.c,
// drivers/vfio/vfio_main.c; every step's `kernel:` names its functions):
//   ioctl           FileAdd: KVM_DEV_VFIO_GROUP_ADD: under kv->lock, get_file, vfio_file_set_kvm(kvm)
//                   FileDel: KVM_DEV_VFIO_GROUP_DEL: vfio_file_set_kvm(NULL), fput(kvf->file)
//   kvm_vfio_close  close: close + __fput -> kvm_device_release (release designs:
//                   mutex_lock(kvm->lock); destroy designs: no .release, kvm_put_kvm);
//                   release: kvm_vfio_release, mutex_unlock(kvm->lock), kvm_put_kvm
//   vm_close        close: close + __fput -> kvm_vm_release -> kvm_put_kvm
//   vfio_open       open: VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open under group_lock: first
//                   open reads group->kvm and takes a users_count reference (release designs,
//                   with an association: driver is vfio-ap's open_device taking kvm->lock)
//   vfio_close      close: close + __fput -> vfio_device_fops_release -> vfio_device_group_close:
//                   group_lock, last close puts the reference (kvm_put_kvm)
//   Each closing thread whose kvm_put_kvm was the last goes on to `destroy`: the rest of
//   kvm_destroy_vm, in its own context, kvm_destroy_devices -> kvm_vfio_destroy (destroy
//   designs) among them; then it returns to its caller (vfio_close: group_lock unlock).
// kvm_destroy_vm is a step of its own so that other tasks can run while users_count is 0 and
// the association is still set; it runs in the context that did the last put, which matters
// because the VFIO close path holds group_lock there. Its phases before
// kvm_destroy_devices take no lock of this model, so they fold into the put.
//
// Abstractions, and why they are sound:
//   - Modules are not modelled: neither fault involves an unload (design 1's vendor-module hole
//     is in vm-pinning). One VFIO group with one device; the group fd stays open (closing it
//     only disables FileAdd and the open; its release touches neither group->kvm nor users_count).
//   - The VM, kvm-vfio and device files have no holder but their fd here, so close and the
//     deferred __fput are one step: the pending-release state only refuses ioctls on that fd.
//     For the same reason vfio_close waits for group_lock before closing.
//   - The kvm-vfio group entry (kvf) and group->kvm are set and cleared together under kv->lock,
//     so one flag (`assoc`). kv->lock, kvm_ref_lock and dev_set->lock are never held across
//     steps. kvm->lock is held across steps only where a path nests another lock inside it
//     (release designs); in the destroy designs vfio-ap's open takes kvm->lock inside
//     group_lock in one step.
//   - Every step takes and drops its locks except vfio_close's, which holds group_lock until
//     kvm_destroy_vm returns when its put was the last. The device opens at most once: a reopen
//     takes the same path, and a bound keeps leak checks meaningful.
//   - lockdep (default, the spec's `lockdep`): taking a mutex the task already holds is the
//     fault "possible recursive locking detected"; with lockdep=false the task blocks and the
//     checker reports a deadlock. The lock classes are kvm->lock and group->group_lock, so
//     lockdep's order check (`lockOrder`) sees 51cdc8bc120e's ABBA as well.
import { z } from "zod";
import { defineSpec, type ExpectedEntry, type ExpectedViolation } from "../../checker/spec.ts";
import { closeFd, fdInstalled, deferredFput, fdSchema, fileSchema, installedFd, newFile } from "../kernel/file.ts";
import { kvmDestroyVm, kvmGet, kvmIsFreed, kvmPut, kvmSchema, newKvm, kvmUse, kvmVmFileRelease } from "../kernel/kvm.ts";
import { kvmDestroyDevices, kvmDeviceFileRelease, kvmDeviceRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import { kvmVfioOps, vfioDeviceGetKvmSafe } from "../kernel/kvm-vfio.ts";
import { lockSchema, unlocked } from "../kernel/lock.ts";
import { threadSchema } from "../kernel/thread.ts";
import { freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["destroy-get_kvm", "release-51cdc8bc120e", "release", "destroy-get_kvm_safe"] as const;
type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("release"),
  lockdep: z.boolean().default(true),
});

/** What each design changes: the kvm-vfio device op, vfio_file_set_kvm's lock, the device's get. */
interface Patch {
  /** kvm_vfio_ops has ->release (since 51cdc8bc120e) rather than ->destroy. */
  release: boolean;
  /** vfio_file_set_kvm writes group->kvm under group_lock (before 2b48f52f2bff), else kvm_ref_lock. */
  setKvmUnderGroupLock: boolean;
  /** The open device's users_count reference: vfio core's kvm_get_kvm_safe, or the driver's kvm_get_kvm. */
  getSafe: boolean;
}
const patches: Record<Design, Patch> = {
  "destroy-get_kvm": { release: false, setKvmUnderGroupLock: true, getSafe: false },
  "release-51cdc8bc120e": { release: true, setKvmUnderGroupLock: true, getSafe: false },
  release: { release: true, setKvmUnderGroupLock: false, getSafe: true },
  "destroy-get_kvm_safe": { release: false, setKvmUnderGroupLock: true, getSafe: true },
};

/** Thread ids (lock holders). */
const IOCTL = 1, VFIO_CLOSE = 2, VM_CLOSE = 3, VFIO_OPEN = 4, KVM_VFIO_CLOSE = 5;
const GROUP_LOCK = "group->group_lock", KVM_LOCK = "kvm->lock";

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
  ioctl: threadSchema([]),
  kvmVfioClose: threadSchema(["release", "destroy"]),
  vmClose: threadSchema(["destroy"]),
  vfioOpen: threadSchema(["driver"]),
  vfioClose: threadSchema(["destroy"]),
});
type S = z.infer<typeof stateSchema>;

/** Every fd closed: the VM's, the kvm-vfio device's, the VFIO device's (the group fd stays open). */
const allClosed = (s: S) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.device !== "open";
/** kvm freed and the association cleared. */
const allFreed = (s: S) => kvmIsFreed(s.kvm) && !s.assoc;
/** A closing thread is in kvm_destroy_vm. */
const inDestroy = (s: S) => s.kvmVfioClose.pc === "destroy" || s.vmClose.pc === "destroy" || s.vfioClose.pc === "destroy";
/**
 * After a step's put: kvm_put_kvm was the last (users_count hit 0, no thread in
 * kvm_destroy_vm yet), so this thread runs kvm_destroy_vm next.
 */
const afterPut = (s: S) => (s.kvm.phase === "destroying" && !inDestroy(s) ? "destroy" : "idle");

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
    ioctl: { pc: "idle" as const },
    kvmVfioClose: { pc: "idle" as const },
    vmClose: { pc: "idle" as const },
    vfioOpen: { pc: "idle" as const },
    vfioClose: { pc: "idle" as const },
  }),
  actions: () => ({}),
  lockdep: (p) => p.lockdep,
  locks: (s) => ({ [KVM_LOCK]: s.kvm.lock, [GROUP_LOCK]: s.groupLock }),
  threads: (p) => {
    const d = patches[p.design];
    const ops = kvmVfioOps({ era: d.release ? "release" : "destroy" });
    const setKvmLock = d.setKvmUnderGroupLock ? "group_lock" : "kvm_ref_lock";
    /** vfio_file_set_kvm takes group_lock (before 2b48f52f2bff); kvm_ref_lock, innermost, is not modelled. */
    const setKvmLocks = d.setKvmUnderGroupLock ? [GROUP_LOCK] : [];
    /** kvm_destroy_vm, the rest of it, in the context of the thread whose put was the last. */
    const destroy = (tid: number) => ({
      kernel: d.release
        ? "kvm_destroy_vm: kvm_destroy_devices (kvm-vfio already released), free; return"
        : "kvm_destroy_vm: kvm_destroy_devices -> kvm_vfio_destroy -> vfio_file_set_kvm(NULL) (group_lock), free; return",
      // kvm_vfio_destroy clears a remaining association through vfio_file_set_kvm.
      lock: (s: S) => (s.kvmVfio.state === "listed" && s.assoc ? setKvmLocks : []),
      then: (s: S) => kvmDestroyVm(s.kvm, {
        destroyDevices: () => kvmDestroyDevices([{ dev: s.kvmVfio, ops, body: () => { s.assoc = false; } }]),
      }),
      // Back in the caller: vfio_device_group_close drops the group_lock it took.
      unlock: (s: S) => (s.groupLock.holder === tid ? GROUP_LOCK : []),
    });
    return {
      ioctl: {
        id: IOCTL,
        pc: (s: S) => s.ioctl,
        calls: {
          FileAdd: {
            kernel: `KVM_DEV_VFIO_GROUP_ADD: kvm_vfio_group_add -> get_file, kvm_vfio_group_set_kvm -> vfio_file_set_kvm (${setKvmLock})`,
            when: (s: S) => fdInstalled(s.kvmVfioFd) && !s.assoc,
            lock: setKvmLocks,
            then: (s: S) => { s.assoc = true; },
            unlock: setKvmLocks,
          },
          FileDel: {
            kernel: `KVM_DEV_VFIO_GROUP_DEL: kvm_vfio_group_del -> vfio_file_set_kvm(NULL) (${setKvmLock}), fput(kvf->file)`,
            when: (s: S) => fdInstalled(s.kvmVfioFd) && s.assoc,
            lock: setKvmLocks,
            then: (s: S) => { s.assoc = false; },
            unlock: setKvmLocks,
          },
        },
      },
      kvmVfioClose: {
        id: KVM_VFIO_CLOSE,
        pc: (s: S) => s.kvmVfioClose,
        steps: {
          // virt/kvm/kvm_main.c:kvm_device_release: kvm->lock only around ops->release.
          close: d.release
            ? {
              kernel: "__fput -> kvm_device_release: mutex_lock(kvm->lock)",
              when: (s: S) => fdInstalled(s.kvmVfioFd),
              lock: KVM_LOCK,
              then: (s: S) => closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file"),
              next: "release",
            }
            : {
              kernel: "__fput -> kvm_device_release: no .release, device stays on kvm->devices; kvm_put_kvm",
              when: (s: S) => fdInstalled(s.kvmVfioFd),
              then: (s: S) => {
                closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file");
                kvmDeviceFileRelease(s.kvmVfio, s.kvm, s.kvmVfioFile, ops);
              },
              next: afterPut,
            },
          // virt/kvm/vfio.c:kvm_vfio_release -> vfio_file_set_kvm(NULL): group_lock before
          // 2b48f52f2bff, kvm_ref_lock (innermost spinlock) from it on.
          release: {
            kernel: `kvm_vfio_release -> vfio_file_set_kvm(NULL) (${setKvmLock}); list_del; mutex_unlock(kvm->lock); kvm_put_kvm`,
            lock: (s: S) => (s.assoc ? setKvmLocks : []),
            then: (s: S) => {
              // kvm->lock is held since `close`: the device release runs without taking it.
              deferredFput(s.kvmVfioFile, "kvm-vfio device file", {
                release: () => void kvmDeviceRelease(s.kvmVfio, s.kvm, ops, undefined, () => { s.assoc = false; }),
              });
            },
            unlock: (s: S) => (s.groupLock.holder === KVM_VFIO_CLOSE ? [GROUP_LOCK, KVM_LOCK] : KVM_LOCK),
            next: afterPut,
          },
          destroy: destroy(KVM_VFIO_CLOSE),
        },
      },
      vmClose: {
        id: VM_CLOSE,
        pc: (s: S) => s.vmClose,
        steps: {
          close: {
            kernel: "__fput -> kvm_vm_release -> kvm_put_kvm",
            when: (s: S) => fdInstalled(s.vmFd),
            then: (s: S) => {
              closeFd(s.vmFd, s.vmFile, "VM file");
              kvmVmFileRelease(s.kvm, s.vmFile);
            },
            next: afterPut,
          },
          destroy: destroy(VM_CLOSE),
        },
      },
      vfioOpen: {
        id: VFIO_OPEN,
        pc: (s: S) => s.vfioOpen,
        steps: {
          // drivers/vfio/group.c:vfio_device_group_open -> vfio_device_open, under group_lock.
          open: {
            kernel: {
              "destroy-get_kvm": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): device->kvm = group->kvm; vfio-ap open_device: kvm->lock, kvm_get_kvm",
              "release-51cdc8bc120e": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open: mutex_lock(group_lock), device->kvm = group->kvm",
              release: "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_group_open: mutex_lock(group_lock), vfio_device_group_get_kvm_safe (kvm_ref_lock)",
              "destroy-get_kvm_safe": "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): group->kvm -> kvm_get_kvm_safe (never shipped with .destroy)",
            }[p.design],
            when: (s: S) => s.device === "unopened",
            // Destroy designs: vfio-ap's open_device (kvm->lock, kvm_get_kvm) is part of this step.
            lock: (s: S) => (s.assoc && !d.release && !d.getSafe ? [GROUP_LOCK, KVM_LOCK] : GROUP_LOCK),
            then: (s: S) => {
              s.device = "open";
              if (!s.assoc) return;
              kvmUse(s.kvm, "vfio_device_open (device->kvm = group->kvm)");
              if (d.getSafe) {
                s.devRef = vfioDeviceGetKvmSafe(s.kvm);
                s.safeRefused ||= !s.devRef;
              } else if (!d.release) {
                kvmGet(s.kvm); // vfio_ap_mdev_set_kvm, under kvm->lock
                s.devRef = true;
              }
            },
            // Release designs: vfio-ap's open_device runs next, still under group_lock.
            unlock: (s: S) => (d.release && s.assoc ? [] : s.kvm.lock.holder === VFIO_OPEN ? [KVM_LOCK, GROUP_LOCK] : GROUP_LOCK),
            next: (s: S) => (d.release && s.assoc ? "driver" : "idle"),
          },
          // drivers/s390/crypto/vfio_ap_ops.c:vfio_ap_mdev_set_kvm: mutex_lock(&kvm->lock).
          driver: {
            kernel: d.getSafe
              ? "vfio-ap open_device -> vfio_ap_mdev_set_kvm: mutex_lock(kvm->lock); unlock; mutex_unlock(group_lock)"
              : "vfio-ap open_device -> vfio_ap_mdev_set_kvm: mutex_lock(kvm->lock), kvm_get_kvm; unlock; mutex_unlock(group_lock)",
            lock: KVM_LOCK,
            then: (s: S) => {
              if (d.getSafe) return;
              kvmGet(s.kvm);
              s.devRef = true;
            },
            unlock: [KVM_LOCK, GROUP_LOCK],
          },
        },
      },
      vfioClose: {
        id: VFIO_CLOSE,
        pc: (s: S) => s.vfioClose,
        steps: {
          close: {
            kernel: "__fput -> vfio_device_fops_release -> vfio_device_group_close (group_lock): last close -> kvm_put_kvm",
            when: (s: S) => s.device === "open",
            lock: GROUP_LOCK,
            then: (s: S) => {
              s.device = "closed";
              if (s.devRef) kvmPut(s.kvm);
              s.devRef = false;
            },
            // The last put runs kvm_destroy_vm with group_lock still held.
            unlock: (s: S) => (afterPut(s) === "destroy" ? [] : GROUP_LOCK),
            next: afterPut,
          },
          destroy: destroy(VFIO_CLOSE),
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
      holds: (s) => !kvmIsFreed(s.kvm) || (!fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.kvmVfioClose.pc !== "release" && !s.assoc && !s.devRef),
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
  fairness: { weak: [{ thread: ["kvmVfioClose", "vmClose", "vfioClose"] }] },
  reachable: (p) => ({
    vfioHoldsLastVmRef: {
      doc: "witness: every KVM fd is closed and an open VFIO device keeps the VM alive",
      when: (s: S) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.devRef && !kvmIsFreed(s.kvm),
    },
    destroyUnderGroupLock: {
      doc: "witness: the VFIO close path's put is the last one, so kvm_destroy_vm runs holding group_lock",
      when: (s: S) => s.vfioClose.pc === "destroy",
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
  // With lockdep (the default), the VFIO close path's second group_lock is lockdep's
  // recursive-locking fault; without it (lockdep=false) the task waits for itself.
  expected: (p): ExpectedEntry<z.infer<typeof params>>[] => {
    const selfLock: Record<string, ExpectedViolation> = p.lockdep
      ? { freedOnceClosed: { steps: 5, message: "every step enabled there faults (vfioClose.destroy)" } }
      : {
        noDeadlock: { steps: 5, message: "vfioClose at destroy, waiting for group->group_lock held by itself" },
        freedOnceClosed: { steps: 5, message: "deadlock, vfioClose at destroy, waiting for group->group_lock held by itself" },
      };
    return [
      {
        when: { design: "destroy-get_kvm" },
        violated: {
          noFault: { steps: 4, message: "refcount_t: addition on 0" }, assocPinsVm: { steps: 3 },
          // Not a leak noLeak can see: kvm_destroy_vm from the device's last close takes group_lock again.
          ...selfLock,
        },
        doc: "v6.0-v6.2-rc4: the association is cleared only at kvm_destroy_vm, so open_device's plain kvm_get_kvm can take a reference from 0; and kvm_destroy_vm from the VFIO close path takes group_lock again, so the VM is never freed",
      },
      {
        when: { design: "release-51cdc8bc120e" },
        violated: {
          noDeadlock: { steps: 4, message: "kvmVfioClose at release, waiting for group->group_lock held by vfioOpen" },
          lockOrder: { steps: 3, message: "possible circular locking dependency detected" },
          // The deadlocked run never frees kvm; a deadlock is not quiescent, so noLeak does not look there.
          freedOnceClosed: { steps: 4, message: "deadlock, kvmVfioClose at release, waiting for group->group_lock held by vfioOpen" },
        },
        doc: "51cdc8bc120e: kvm->lock then group_lock in release against group_lock then kvm->lock in vfio-ap's open (fixed by 2b48f52f2bff)",
      },
      {
        when: { design: "destroy-get_kvm_safe" },
        violated: {
          ...(p.lockdep ? { noFault: { steps: 6, message: "possible recursive locking detected" } } : {}),
          assocPinsVm: { steps: 3 },
          ...selfLock,
        },
        doc: "never shipped: .destroy with the _safe get shows the group_lock self-deadlock 51cdc8bc120e fixed",
      },
    ];
  },
});
