// kvm-vfio/group-path: the legacy VFIO group path (VFIO_GROUP_GET_DEVICE_FD), where KVM's
// association is per group and shared by every device of the group (review U4).
//
// Kernel text read:
//   - drivers/vfio/group.c (v6.6+ text): vfio_df_group_open takes group_lock then
//     dev_set->lock and, only when device->open_count == 0, vfio_device_group_get_kvm_safe
//     (group->kvm read under group->kvm_ref_lock, _vfio_device_get_kvm_safe); vfio_df_open;
//     if the open failed and open_count is 0 again, vfio_device_put_kvm. vfio_df_group_close:
//     same locks, vfio_df_close, and vfio_device_put_kvm once open_count is 0.
//     vfio_group_set_kvm writes group->kvm under kvm_ref_lock. vfio_group_fops_release
//     touches neither group->kvm nor users_count ("Device FDs hold a group file reference,
//     therefore the group release is only called when there are no open devices").
//   - drivers/vfio/vfio_main.c: vfio_device_open counts open_count and calls
//     vfio_device_first_open at 1; vfio_device_close calls vfio_device_last_close at 1;
//     vfio_device_fops_release -> vfio_device_group_close (group fds).
//   - drivers/vfio/container.c:vfio_group_use_container (first open of a device, container
//     backend): get_file(group->opened_file); vfio_group_unuse_container (last close): fput.
//     That is the group file reference a device holds.
//   - virt/kvm/vfio.c: kvm_vfio_file_add keeps kvf->file = get_file(group file) and calls
//     kvm_vfio_file_set_kvm; kvm_vfio_file_del / kvm_vfio_release clear it and fput kvf->file.
//     KVM pins the group file, not the device file.
//   - seed 000 (v5 1/5): group->kvm becomes group->kvm_file, set by
//     vfio_kvm_file_replace(&group->kvm_file, &group->kvm_ref_lock, kvm) (get_file_active of
//     kvm->_file); vfio_device_group_get_kvm_safe calls vfio_device_get_kvm_safe(device,
//     group->kvm_file), a get_file.
//
// Designs (`design`):
//   raw-kvm          upstream since 2b48f52f2bff: group->kvm raw, the device takes users_count
//                    with kvm_get_kvm_safe at first open, puts it at last close.
//   get_file_active  seed 000 v5: group->kvm_file counted, device->kvm_file = get_file of it.
//   get_file         as get_file_active with plain get_file(kvm->_file) at FILE_ADD.
//   put-every-close  the model's counterfactual: the kvm reference taken at first open but
//                    put at every close of a device fd, to show what open_count guards.
//
// Actions (thread: kernel functions; files as above and virt/kvm/kvm_main.c):
//   CloseVm, CloseKvmVfioDev, CloseGroup   close: close_fd -> fput
//   ReleaseVm            task_work: __fput -> kvm_vm_release (v5: clears kvm->_file), kvm_put_kvm
//   ReleaseKvmVfioDev    task_work: __fput -> kvm_device_release -> kvm_vfio_release, kvm_put_kvm
//   ReleaseGroup         task_work: __fput -> vfio_group_fops_release, file_free
//   FileAdd / FileDel    ioctl: KVM_DEV_VFIO_FILE_ADD/DEL on the group fd (kvm_vfio_file_add/del
//                        -> vfio_group_set_kvm / vfio_kvm_file_replace)
//   Open(d)              ioctl: VFIO_GROUP_GET_DEVICE_FD -> vfio_device_open_file ->
//                        vfio_df_group_open
//   Close(d)             close: close of one device fd of device d and its __fput:
//                        vfio_device_fops_release -> vfio_df_group_close
// The designs differ in what group->kvm holds (`Patch`) and, for the counterfactual, in Close.
//
// Abstracted away, and why that is sound:
//   - Locks: each ioctl and release does its reference work under group_lock +
//     dev_set->lock (+ kvm_ref_lock), or kv->lock; each is one atomic step.
//   - A device fd's close and its __fput are one step: nothing but its fd holds a device file
//     on this path (KVM holds the group file), so its dying window has no other holder.
//   - Container/iommufd: the container backend is modelled (it is the one whose first open
//     pins the group file); with the iommufd compat backend the device does not pin the group
//     file, which only removes a holder of the group file.
//   - Modules, slab reuse: see kvm-vfio/vm-pinning; errors of open_device: not modelled.
import { z } from "zod";
import { action, defineSpec, range } from "../../checker/spec.ts";
import { closeFd, fdInstalled, deferredFput, fdSchema, fileSchema, fput, getFile, installedFd, isDying, isLive, newFile } from "../kernel/file.ts";
import { kvmIsFreed, kvmIsLive, kvmPutDestroy, kvmSchema, newKvm, kvmVmFileRelease } from "../kernel/kvm.ts";
import { kvmDeviceFileRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import {
  kvmFileGet, kvmVfioFileAdd, kvmVfioFileDel, kvmVfioOps, kvmVfioRelease, vfioDeviceCallPutKvm, vfioDeviceGetKvmSafe, vfioKvmFileReplace,
  type KvmFileRead,
} from "../kernel/kvm-vfio.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["raw-kvm", "get_file_active", "get_file", "put-every-close"] as const;
export type Design = (typeof designs)[number];

const params = z.object({
  design: z.enum(designs).default("raw-kvm"),
  /** Devices in the group. */
  devices: z.number().int().min(1).max(2).default(2),
  /** Device fds per device (VFIO_GROUP_GET_DEVICE_FD may be called again for an open device). */
  fds: z.number().int().min(1).max(2).default(2),
});
type Params = z.infer<typeof params>;

interface Patch {
  /** group->kvm_file (seed 000), read from kvm->_file this way; raw group->kvm without it. */
  read?: KvmFileRead;
  /** The counterfactual: the first open's reference is put at every close. */
  putEveryClose?: boolean;
}
const patches: Record<Design, Patch> = {
  "raw-kvm": {},
  get_file_active: { read: "get_file_active" },
  get_file: { read: "get_file" },
  "put-every-close": { putEveryClose: true },
};
const pinsFile = (d: Design) => patches[d].read !== undefined;

function stateSchema(p: Params) {
  const dev = z.object({
    /** Open device fds (device->open_count on this path). */
    open: z.number().int().min(0).max(p.fds),
    /** Device fds ever opened (bounds the run). */
    opened: z.number().int().min(0).max(p.fds),
    /** device->kvm (users_count) or device->kvm_file (a VM-file reference). */
    kvmRef: z.boolean(),
  });
  return z.object({
    vmFd: fdSchema(),
    vmFile: fileSchema({ maxCount: 2 + p.devices }),
    /** kvm->_file non-NULL (file designs). */
    vmFilePtr: z.boolean(),
    kvm: kvmSchema({ maxUsers: 2 + p.devices }),
    kvmVfioFd: fdSchema(),
    kvmVfioFile: fileSchema({ maxCount: 1 }),
    kvmVfio: kvmDeviceSchema(),
    groupFd: fdSchema(),
    /** The group file: its fd, KVM's kvf->file, and each device with open_count > 0. */
    groupFile: fileSchema({ maxCount: 2 + p.devices }),
    kvf: z.boolean(),
    /** group->kvm / group->kvm_file. */
    assoc: z.boolean(),
    dev: z.array(dev).length(p.devices),
  });
}
type S = z.infer<ReturnType<typeof stateSchema>>;
const ops = kvmVfioOps();
const kvfWhat = "group file (kvf->file)";

/** Every fd closed: the VM's, the kvm-vfio device's, the group's and every device fd. */
const allClosed = (s: S) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && !fdInstalled(s.groupFd) && s.dev.every((x) => x.open === 0);
/** struct kvm and every file freed. */
const allFreed = (s: S) =>
  kvmIsFreed(s.kvm) && s.vmFile.state === "freed" && s.kvmVfioFile.state === "freed" && s.groupFile.state === "freed";

export default defineSpec({
  name: "kvm-vfio/group-path",
  summary: "VFIO group path: one association per group, the kvm reference taken at a device's first open",
  source: "drivers/vfio/group.c (vfio_df_group_open/close); seed 000_c0bd9b432b2ea1fa.txt (group->kvm_file)",
  params,
  state: stateSchema,
  init: (p: Params) => ({
    vmFd: installedFd(),
    vmFile: newFile(),
    vmFilePtr: pinsFile(p.design),
    kvm: newKvm({ users: 2 }),
    kvmVfioFd: installedFd(),
    kvmVfioFile: newFile(),
    kvmVfio: { state: "listed" as const },
    groupFd: installedFd(),
    groupFile: newFile(),
    kvf: false,
    assoc: false,
    dev: range(p.devices).map(() => ({ open: 0, opened: 0, kvmRef: false })),
  }),
  actions: (p: Params) => {
    const d = patches[p.design];
    const read = d.read;
    /** vfio_group_set_kvm(group, kvm): raw group->kvm, or vfio_kvm_file_replace(&group->kvm_file, kvm). */
    const setKvm = (s: S) => {
      s.assoc = read ? vfioKvmFileReplace(null, () => kvmFileGet(read, s.vmFilePtr, s.vmFile, "VM file (kvm->_file)"), "VM file (group->kvm_file)") : true;
    };
    /** vfio_group_set_kvm(group, NULL) / vfio_kvm_file_replace(&group->kvm_file, NULL). */
    const clearKvm = (s: S) => {
      s.assoc = read ? vfioKvmFileReplace(s.assoc ? s.vmFile : null, null, "VM file (group->kvm_file)") : false;
    };
    /** vfio_device_group_get_kvm_safe: users_count, or get_file(group->kvm_file). */
    const getDevKvm = (s: S, i: number) => {
      if (!s.assoc) return;
      if (read) getFile(s.vmFile, "VM file (device->kvm_file)");
      s.dev[i].kvmRef = read ? true : vfioDeviceGetKvmSafe(s.kvm);
    };
    /** vfio_device_put_kvm. */
    const putDevKvm = (s: S, i: number) => {
      if (!s.dev[i].kvmRef) return;
      s.dev[i].kvmRef = false;
      if (read) fput(s.vmFile, "VM file (device->kvm_file)");
      else vfioDeviceCallPutKvm(s.kvm, {});
    };
    return {
      CloseVm: {
        kernel: "close(vm fd) -> fput",
        thread: "close",
        when: (s: S) => fdInstalled(s.vmFd),
        then: (s: S) => void closeFd(s.vmFd, s.vmFile, "VM file"),
      },
      ReleaseVm: {
        kernel: "__fput -> kvm_vm_release (v5: RCU_INIT_POINTER(kvm->_file, NULL)) -> kvm_put_kvm",
        thread: "task_work",
        when: (s: S) => isDying(s.vmFile),
        then: (s: S) => {
          s.vmFilePtr = false;
          kvmVmFileRelease(s.kvm, s.vmFile, { destroy: {} });
        },
      },
      CloseKvmVfioDev: {
        kernel: "close(kvm-vfio fd) -> fput",
        thread: "close",
        when: (s: S) => fdInstalled(s.kvmVfioFd),
        then: (s: S) => void closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file"),
      },
      ReleaseKvmVfioDev: {
        kernel: "__fput -> kvm_device_release -> kvm_vfio_release (set_kvm(NULL), fput(kvf->file)); kvm_put_kvm",
        thread: "task_work",
        when: (s: S) => isDying(s.kvmVfioFile),
        then: (s: S) =>
          void kvmDeviceFileRelease(s.kvmVfio, s.kvm, s.kvmVfioFile, ops, {
            destroy: {},
            body: () => kvmVfioRelease([{ e: s, file: s.groupFile, what: kvfWhat, clearKvm: () => clearKvm(s) }]),
          }),
      },
      FileAdd: {
        kernel: "KVM_DEV_VFIO_FILE_ADD(group fd): kvf->file = get_file, kvm_vfio_file_set_kvm -> vfio_group_set_kvm",
        thread: "ioctl",
        when: (s: S) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.groupFd) && !s.kvf,
        then: (s: S) => kvmVfioFileAdd(s, s.groupFile, kvfWhat, () => setKvm(s)),
      },
      FileDel: {
        kernel: "KVM_DEV_VFIO_FILE_DEL(group fd): vfio_group_set_kvm(NULL), fput(kvf->file)",
        thread: "ioctl",
        when: (s: S) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.groupFd) && s.kvf,
        then: (s: S) => kvmVfioFileDel(s, s.groupFile, kvfWhat, () => clearKvm(s)),
      },
      CloseGroup: {
        kernel: "close(group fd) -> fput",
        thread: "close",
        when: (s: S) => fdInstalled(s.groupFd),
        then: (s: S) => void closeFd(s.groupFd, s.groupFile, "group file"),
      },
      ReleaseGroup: {
        kernel: "__fput -> vfio_group_fops_release (detach container); file_free",
        thread: "task_work",
        when: (s: S) => isDying(s.groupFile),
        then: (s: S) => deferredFput(s.groupFile, "group file"), // its release touches nothing modelled
      },
      Open: action({
        kernel: "VFIO_GROUP_GET_DEVICE_FD -> vfio_df_group_open: open_count == 0 -> vfio_device_group_get_kvm_safe; vfio_df_open",
        thread: "ioctl",
        each: { i: range(p.devices) },
        when: (s: S, { i }) => fdInstalled(s.groupFd) && s.dev[i].opened < p.fds,
        then: (s: S, { i }) => {
          const dv = s.dev[i];
          dv.opened += 1;
          if (dv.open === 0) {
            getDevKvm(s, i);
            getFile(s.groupFile, "group file (vfio_group_use_container)");
          }
          dv.open += 1;
        },
      }),
      Close: action({
        kernel: "close(device fd) -> __fput -> vfio_device_fops_release -> vfio_df_group_close",
        thread: "close",
        each: { i: range(p.devices) },
        when: (s: S, { i }) => s.dev[i].open > 0,
        then: (s: S, { i }) => {
          const dv = s.dev[i];
          dv.open -= 1;
          if (d.putEveryClose && dv.open > 0 && dv.kvmRef) kvmPutDestroy(s.kvm, {}); // the counterfactual
          if (dv.open === 0) {
            putDevKvm(s, i);
            fput(s.groupFile, "group file (vfio_group_unuse_container)");
          }
        },
      }),
    };
  },
  ownership: (p: Params) => {
    const files = pinsFile(p.design);
    const refs = (s: S) => s.dev.filter((x) => x.kvmRef).length;
    return {
      kvm: {
        doc: "kvm->users_count",
        count: (s: S) => s.kvm.users.count,
        live: (s: S) => kvmIsLive(s.kvm),
        holders: {
          vmFile: (s: S) => s.vmFile.state !== "freed",
          kvmVfioDevice: (s: S) => s.kvmVfioFile.state !== "freed",
          devices: (s: S) => (files ? 0 : refs(s)),
        },
      },
      vmFile: {
        doc: "the VM's struct file, f_count",
        count: (s: S) => s.vmFile.count,
        live: (s: S) => isLive(s.vmFile),
        holders: { vmFd: (s: S) => fdInstalled(s.vmFd), groupKvmFile: (s: S) => files && s.assoc, devices: (s: S) => (files ? refs(s) : 0) },
      },
      groupFile: {
        doc: "the VFIO group file, f_count",
        count: (s: S) => s.groupFile.count,
        live: (s: S) => isLive(s.groupFile),
        holders: { groupFd: (s: S) => fdInstalled(s.groupFd), kvf: (s: S) => s.kvf, openDevices: (s: S) => s.dev.filter((x) => x.open > 0).length },
      },
    };
  },
  invariants: {
    kvmRefOnlyWhileOpen: {
      doc: "a device holds its kvm reference only while open_count > 0",
      holds: (s: S) => s.dev.every((x) => !x.kvmRef || x.open > 0),
    },
    kvmFreedUnreferenced: {
      doc: "once kvm_destroy_vm ran, no association or device references the VM",
      holds: (s: S) => !kvmIsFreed(s.kvm) || (!s.assoc && s.dev.every((x) => !x.kvmRef)),
    },
  },
  quiescent: {
    noLeak: {
      doc: "every fd closed, no release pending => kvm and every file freed",
      holds: (s: S) => !allClosed(s) || allFreed(s),
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm and every file") },
  fairness: deferredReleases(),
  reachable: {
    openWithoutKvm: {
      doc: "U4: a device is open without a kvm reference while its group has one (first open came before FILE_ADD)",
      when: (s: S) => s.assoc && s.dev.some((x) => x.open > 0 && !x.kvmRef),
    },
    deviceClosedWhileKvmHoldsGroup: {
      doc: "U4: a device's fds are all closed and released (its kvm reference dropped) while KVM still holds the group file",
      when: (s: S) => s.kvf && s.assoc && s.dev.some((x) => x.opened > 0 && x.open === 0),
    },
    groupOutlivesItsFd: {
      doc: "the group fd is closed and the group file lives on, pinned by KVM or an open device",
      when: (s: S) => !fdInstalled(s.groupFd) && isLive(s.groupFile),
    },
  },
  symmetry: (s: S) => s.dev,
  expected: [
    {
      when: { design: "get_file" },
      violated: { noFault: { steps: 2, message: "get_file on dying VM file (kvm->_file)" } },
      doc: "plain get_file(kvm->_file) at FILE_ADD revives a dying VM file",
    },
    {
      when: { design: "put-every-close" },
      violated: {
        noFault: { steps: 9, message: "refcount_t: underflow" }, kvmCountExact: { steps: 4 },
        kvmFreedUnreferenced: { steps: 7 }, kvmNoHolderAfterFree: { steps: 7 },
        // Not a leak the quiescent noLeak sees: the release that would free the rest faults there.
        freedOnceClosed: { steps: 9, message: "every step enabled there faults (ReleaseKvmVfioDev)" },
      },
      doc: "counterfactual: the reference taken at first open is put at every close, which open_count guards against; kvm_destroy_vm then runs while a device still holds device->kvm, and the kvm-vfio device's release underflows users_count and never completes",
    },
  ],
});
