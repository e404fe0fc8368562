// kvm-vfio/destroy-era: brief design 1, variant "kvm-vfio uses .destroy" (table C1), against
// 51cdc8bc120e ("kvm/vfio: Fix potential deadlock on vfio group_lock", v6.2), which switched
// the kvm-vfio device from .destroy to .release.
//
// Designs (`design`):
//   release          51cdc8bc120e and later: kvm_device_release -> kvm_vfio_release clears
//                    every association before the device's users_count reference is put.
//   destroy          before it: the kvm-vfio device stays on kvm->devices after its fd is
//                    closed; associations are cleared by kvm_destroy_vm -> kvm_destroy_devices
//                    -> kvm_vfio_destroy -> vfio_file_set_kvm(NULL), which takes group_lock.
//                    The device's kvm reference is taken with kvm_get_kvm_safe.
//   destroy-get_kvm  as destroy, with a plain kvm_get_kvm at first open.
// Era details: until 2b48f52f2bff vfio_file_set_kvm wrote group->kvm under group_lock (now
// kvm_ref_lock), and the device's users_count reference belonged to the driver (e.g. kvmgt's
// open_device/close_device with plain kvm_get_kvm/kvm_put_kvm); 2b48f52f2bff moved it into
// vfio core (vfio_device_get_kvm_safe/vfio_device_put_kvm). Both run under group_lock on the
// group path, which is all the model needs of them. "release" keeps the era's group_lock for
// the association (no path nests it there, so kvm_ref_lock gives the same verdict); drivers
// that take kvm->lock in open_device (the ABBA 2b48f52f2bff fixed) are not modelled.
//
// Actions (kernel functions also in each action's `kernel:`):
//   FileAdd           KVM_DEV_VFIO_GROUP_ADD: under kv->lock, get_file, vfio_file_set_kvm(kvm)
//   FileDel           KVM_DEV_VFIO_GROUP_DEL: vfio_file_set_kvm(NULL), fput(kvf->file)
//   CloseKvmVfioDev   close + __fput -> kvm_device_release (release: kvm_vfio_release under
//                     kvm->lock); kvm_put_kvm
//   CloseVm           close + __fput -> kvm_vm_release -> kvm_put_kvm
//   OpenDevice        VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open under group_lock: first open
//                     reads group->kvm and takes a users_count reference
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
//     so one flag (`assoc`). kv->lock, kvm->lock and dev_set->lock are never held across steps.
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

export const designs = ["release", "destroy", "destroy-get_kvm"] as const;

const params = z.object({
  design: z.enum(designs).default("release"),
  lockdep: z.boolean().default(true),
});

/** Lock owners: atomic ioctls/releases, the VFIO device close path, kvm_destroy_vm elsewhere. */
const IOCTL = 1, VFIO_CLOSE = 2, OTHER = 3;

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
  groupLock: lockSchema(3),
  /** kvm_destroy_vm in progress, and the context that did the last put. */
  destroy: threadSchema(["destroyDevices"], { ctx: z.enum(["none", "vfioClose", "other"]) }),
});
type S = z.infer<typeof stateSchema>;

export default defineSpec({
  name: "kvm-vfio/destroy-era",
  summary: "kvm-vfio .destroy (before 51cdc8bc120e) vs .release: group_lock self-deadlock, users_count 0 with a live association",
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
    destroy: { pc: "idle" as const, ctx: "none" as const },
  }),
  actions: (p) => {
    const onRelease = p.design === "release";
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
        kernel: "KVM_DEV_VFIO_GROUP_ADD: kvm_vfio_group_add -> get_file, kvm_vfio_group_set_kvm -> vfio_file_set_kvm (group_lock)",
        when: (s: S) => s.kvmVfioFd && !s.assoc && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, IOCTL, "group->group_lock");
          s.assoc = true;
          release(s.groupLock, IOCTL, "group->group_lock");
        },
      },
      FileDel: {
        kernel: "KVM_DEV_VFIO_GROUP_DEL: kvm_vfio_group_del -> vfio_file_set_kvm(NULL) (group_lock), fput(kvf->file)",
        when: (s: S) => s.kvmVfioFd && s.assoc && isFree(s.groupLock),
        then: (s: S) => clearAssoc(s, IOCTL),
      },
      CloseKvmVfioDev: {
        kernel: onRelease
          ? "__fput -> kvm_device_release: kvm->lock, kvm_vfio_release (vfio_file_set_kvm(NULL), fput); kvm_put_kvm"
          : "__fput -> kvm_device_release: no .release, device stays on kvm->devices; kvm_put_kvm",
        when: (s: S) => s.kvmVfioFd && (!onRelease || !s.assoc || isFree(s.groupLock)),
        then: (s: S) => {
          s.kvmVfioFd = false;
          if (onRelease) {
            if (s.assoc) clearAssoc(s, IOCTL);
            s.kvmVfioOnList = false; // list_del under kvm->lock
          }
          putKvm(s, "other");
        },
      },
      CloseVm: {
        kernel: "__fput -> kvm_vm_release -> kvm_put_kvm",
        when: (s: S) => s.vmFd,
        then: (s: S) => {
          s.vmFd = false;
          putKvm(s, "other");
        },
      },
      OpenDevice: {
        kernel: p.design === "destroy-get_kvm"
          ? "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): device->kvm = group->kvm; open_device -> kvm_get_kvm"
          : "VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open (group_lock): group->kvm -> kvm_get_kvm_safe",
        when: (s: S) => s.device === "unopened" && isFree(s.groupLock),
        then: (s: S) => {
          acquire(s.groupLock, IOCTL, "group->group_lock");
          s.device = "open";
          if (s.assoc) {
            if (s.kvmFreed) throw new Fault("BUG: KASAN: use-after-free: group->kvm names a freed struct kvm");
            if (p.design === "destroy-get_kvm") {
              kvmGetKvm(s.users);
              s.devRef = true;
            } else {
              s.devRef = kvmGetKvmSafe(s.users);
              s.safeRefused ||= !s.devRef;
            }
          }
          release(s.groupLock, IOCTL, "group->group_lock");
        },
      },
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
      holds: (s) => s.kvmFreed || s.users.count === (s.vmFd ? 1 : 0) + (s.kvmVfioFd ? 1 : 0) + (s.devRef ? 1 : 0),
    },
    assocPinsVm: {
      doc: "S4: an association exists only while users_count >= 1 (else kvm_get_kvm_safe is needed)",
      holds: (s) => !s.assoc || s.users.count >= 1,
    },
    kvmFreedUnreferenced: {
      doc: "S1: once kvm_destroy_vm ran, nothing references the VM",
      holds: (s) => !s.kvmFreed || (!s.vmFd && !s.kvmVfioFd && !s.assoc && !s.devRef),
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
    ...(p.design === "destroy-get_kvm" ? {} : {
      getKvmSafeRefused: {
        doc: "kvm_get_kvm_safe at open finds users_count 0 behind a live association",
        expect: p.design === "release" ? "unreachable" as const : "reachable" as const,
        when: (s: S) => s.safeRefused,
      },
    }),
  }),
  busy: (s) => firstBusy({ kvm_destroy_vm: s.destroy }),
});
