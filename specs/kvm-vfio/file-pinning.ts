// kvm-vfio/file-pinning: VFIO pins the VM through its struct file, read from the weak
// kvm->_file with get_file_active.
//
// Seed 000_c0bd9b432b2ea1fa.txt (Aneesh Kumar K.V, "vfio: cache KVM VM file references
// instead of raw struct kvm pointers"; brief design 4). VFIO stops holding
// kvm->users_count and holds counted references on the VM's struct file instead:
//   - the association df->kvm_file, set by KVM_DEV_VFIO_FILE_ADD through
//     vfio_kvm_file_replace(): get_file_active(&kvm->_file), swapped in under kvm_ref_lock;
//   - the bound device's device->kvm_file, taken by vfio_device_get_kvm_safe() with
//     get_file(df->kvm_file) under kvm_ref_lock (the association owns a reference, so
//     the count is >= 1 there).
// The seed's point: struct kvm can outlive the VM fd (the kvm-vfio device holds
// users_count), so FILE_ADD can run while the VM file is dying. Design "get_file_active" is
// the patch as reposted in v5 (1/5, May 2026), where kvm_vm_release clears kvm->_file; the
// seed's own text (posted in the TSM v4 thread) never clears it, which kvm-vfio/vm-pinning
// models as 4b-uncleared. Here the two give the same verdict: this spec has no slab reuse.
// Design "get_file" is the plain get_file(kvm->_file) the seed warns against.
//
// Actions (thread: user operation -> kernel functions; files fs/file.c, fs/file_table.c,
// virt/kvm/kvm_main.c, virt/kvm/vfio.c, drivers/vfio/vfio_main.c, drivers/vfio/device_cdev.c):
//   CloseVm              close: close_fd -> fput of the VM file
//   ReleaseVm            task_work: __fput -> kvm_vm_release (v5: clears kvm->_file;
//                        kvm_put_kvm -> kvm_destroy_vm on the last put), file_free
//   CloseKvmVfioDev      close: close_fd -> fput of the kvm-vfio device file
//   ReleaseKvmVfioDev    task_work: __fput -> kvm_device_release -> kvm_vfio_release (per entry:
//                        kvm_vfio_file_set_kvm(NULL) -> vfio_kvm_file_replace, fput(kvf->file)),
//                        then kvm_put_kvm
//   FileAdd(i)           ioctl: KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> get_file(vfio file),
//                        kvm_vfio_file_set_kvm(file, kvm) -> vfio_kvm_file_replace
//   FileDel(i)           ioctl: KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_kvm_file_replace(NULL),
//                        fput(kvf->file)
//   Bind(i)              ioctl: VFIO_DEVICE_BIND_IOMMUFD: vfio_df_ioctl_bind_iommufd ->
//                        vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe (get_file)
//   CloseVfio(i)         close: close_fd -> fput (there is no unbind ioctl)
//   ReleaseVfio(i)       task_work: __fput -> vfio_device_fops_release -> vfio_df_unbind_iommufd ->
//                        vfio_device_put_kvm (fput of device->kvm_file), file_free
// The two designs differ only in FileAdd's read of kvm->_file (kvmFileGet).
//
// Abstracted away, and why that is sound:
//   - Locks: FILE_ADD/DEL run under kv->lock and read/write the association under
//     kvm_ref_lock; bind runs under dev_set->lock + kvm_ref_lock. Each ioctl does all its
//     reference work in one critical section, so each is one atomic action. The only
//     unlocked read that matters (get_file_active of kvm->_file outside kvm_ref_lock)
//     reads a pointer whose writers are the VM file's own release, which is an action.
//   - The fget/fput of the fd around an ioctl: the fd is open for the whole ioctl, so the
//     temporary reference only matters as "the fd is open" (the guard).
//   - Duplicate FILE_ADD (-EEXIST), FILE_DEL of an unknown file (-ENOENT): no state change.
//   - Modules and slab reuse: see kvm-vfio/vm-pinning (designs 4, 4b).
//   - kvm_destroy_vm runs whole in the step of the last kvm_put_kvm: no step of it matters here.
//   - Only the cdev path is modelled. The group path (VFIO_GROUP_GET_DEVICE_FD) is not the
//     same reference graph (the association is per group, the kvm reference is taken at
//     the first open and shared, kvf->file pins the group file); that its verdicts carry
//     over is not established here.
import { z } from "zod";
import { action, defineSpec, range } from "../../checker/spec.ts";
import { closeFd, fdInstalled, deferredFput, fdSchema, fileSchema, fput, getFile, installedFd, isDying, isLive, newFile } from "../kernel/file.ts";
import { kvmIsFreed, kvmIsLive, kvmSchema, newKvm, kvmVmFileRelease } from "../kernel/kvm.ts";
import { kvmDeviceFileRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import { kvmFileGet, kvmVfioFileAdd, kvmVfioFileDel, kvmVfioOps, kvmVfioRelease, vfioKvmFileReplace } from "../kernel/kvm-vfio.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

const params = z.object({
  /** FILE_ADD's read of kvm->_file. */
  design: z.enum(["get_file_active", "get_file"]).default("get_file_active"),
  devices: z.number().int().min(1).max(3).default(2),
});
type Params = z.infer<typeof params>;

function stateSchema(p: Params) {
  const vfio = z.object({
    /** The user's fd on the VFIO device cdev. */
    fd: fdSchema(),
    /** The VFIO device file: counted by the fd and by KVM's kvf->file. */
    file: fileSchema({ maxCount: 2 }),
    /** KVM's kvm_vfio_file entry for this file (kvf->file holds a reference). */
    kvf: z.boolean(),
    /** df->kvm_file: a counted VM-file reference (the association). */
    assoc: z.boolean(),
    /** Bound through VFIO_DEVICE_BIND_IOMMUFD. */
    bound: z.boolean(),
    /** device->kvm_file: counted VM-file reference held while bound. */
    devRef: z.boolean(),
  });
  return z.object({
    vmFd: fdSchema(),
    /** The VM file: counted by the fd, every association and every bound device. */
    vmFile: fileSchema({ maxCount: 1 + 2 * p.devices }),
    /** kvm->_file is non-NULL (weak back-pointer). */
    vmFilePtr: z.boolean(),
    /** struct kvm: users_count held by the VM file and the kvm-vfio device. */
    kvm: kvmSchema({ maxUsers: 2 }),
    kvmVfioFd: fdSchema(),
    kvmVfioFile: fileSchema({ maxCount: 1 }),
    kvmVfio: kvmDeviceSchema(),
    vfio: z.array(vfio).length(p.devices),
  });
}
type State = z.infer<ReturnType<typeof stateSchema>>;
type Vfio = State["vfio"][number];

const ops = kvmVfioOps();
const vfioWhat = "VFIO device file";

/** vfio_kvm_file_replace(&df->kvm_file, NULL): drop the association's VM-file reference. */
function clearAssoc(s: State, v: Vfio): void {
  v.assoc = vfioKvmFileReplace(v.assoc ? s.vmFile : null, null, "VM file");
}

/** The user has closed every fd: the VM's, the kvm-vfio device's, each VFIO device's. */
const allClosed = (s: State) => !fdInstalled(s.vmFd) && !fdInstalled(s.kvmVfioFd) && s.vfio.every((v) => !fdInstalled(v.fd));
/** struct kvm, the VM file, the kvm-vfio device file and every VFIO file are freed. */
const allFreed = (s: State) =>
  kvmIsFreed(s.kvm) && s.vmFile.state === "freed" && s.kvmVfioFile.state === "freed" && s.vfio.every((v) => v.file.state === "freed");

export default defineSpec({
  name: "kvm-vfio/file-pinning",
  summary: "VFIO pins the VM through kvm->_file read with get_file_active (seed 000, design 4)",
  source: "seed 000_c0bd9b432b2ea1fa.txt",
  params,
  state: stateSchema,
  init: (p) => ({
    vmFd: installedFd(),
    vmFile: newFile(),
    vmFilePtr: true,
    kvm: newKvm({ users: 2 }),
    kvmVfioFd: installedFd(),
    kvmVfioFile: newFile(),
    kvmVfio: { state: "listed" as const },
    vfio: range(p.devices).map(() => ({
      fd: installedFd(), file: newFile(), kvf: false, assoc: false, bound: false, devRef: false,
    })),
  }),
  actions: (p) => ({
    CloseVm: {
      kernel: "close(vm fd) -> fput",
      thread: "close",
      when: (s: State) => fdInstalled(s.vmFd),
      then: (s: State) => void closeFd(s.vmFd, s.vmFile, "VM file"),
    },
    ReleaseVm: {
      // virt/kvm/kvm_main.c:kvm_vm_release with seed 000's v5 1/5 hunk (clears kvm->_file).
      kernel: "__fput -> kvm_vm_release -> kvm_put_kvm",
      thread: "task_work",
      when: (s: State) => isDying(s.vmFile),
      then: (s: State) => {
        s.vmFilePtr = false; // v5 kvm_vm_release: RCU_INIT_POINTER(kvm->_file, NULL) before the put
        kvmVmFileRelease(s.kvm, s.vmFile, { destroy: {} });
      },
    },
    CloseKvmVfioDev: {
      kernel: "close(kvm-vfio fd) -> fput",
      thread: "close",
      when: (s: State) => fdInstalled(s.kvmVfioFd),
      then: (s: State) => void closeFd(s.kvmVfioFd, s.kvmVfioFile, "kvm-vfio device file"),
    },
    ReleaseKvmVfioDev: {
      kernel: "__fput -> kvm_device_release -> kvm_vfio_release; kvm_put_kvm",
      thread: "task_work",
      when: (s: State) => isDying(s.kvmVfioFile),
      then: (s: State) =>
        void kvmDeviceFileRelease(s.kvmVfio, s.kvm, s.kvmVfioFile, ops, {
          destroy: {},
          body: () => kvmVfioRelease(s.vfio.map((v) => ({ e: v, file: v.file, what: vfioWhat, clearKvm: () => clearAssoc(s, v) }))),
        }),
    },
    FileAdd: action({
      kernel: "KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add -> vfio_file_set_kvm -> vfio_kvm_file_replace",
      thread: "ioctl",
      each: { i: range(p.devices) },
      when: (s: State, { i }) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.vfio[i].fd) && !s.vfio[i].kvf,
      then: (s: State, { i }) => {
        const v = s.vfio[i];
        // vfio_kvm_file_replace(&df->kvm_file, kvm): take the new reference, swap, put the old.
        kvmVfioFileAdd(v, v.file, vfioWhat, () => {
          v.assoc = vfioKvmFileReplace(v.assoc ? s.vmFile : null, () => kvmFileGet(p.design, s.vmFilePtr, s.vmFile, "VM file (kvm->_file)"), "VM file");
        });
      },
    }),
    FileDel: action({
      kernel: "KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_del -> vfio_kvm_file_replace(NULL); fput(kvf->file)",
      thread: "ioctl",
      each: { i: range(p.devices) },
      when: (s: State, { i }) => fdInstalled(s.kvmVfioFd) && fdInstalled(s.vfio[i].fd) && s.vfio[i].kvf,
      then: (s: State, { i }) => kvmVfioFileDel(s.vfio[i], s.vfio[i].file, vfioWhat, () => clearAssoc(s, s.vfio[i])),
    }),
    Bind: action({
      kernel: "VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe",
      thread: "ioctl",
      each: { i: range(p.devices) },
      when: (s: State, { i }) => fdInstalled(s.vfio[i].fd) && !s.vfio[i].bound,
      then: (s: State, { i }) => {
        const v = s.vfio[i];
        v.bound = true;
        if (v.assoc) {
          getFile(s.vmFile, "VM file (df->kvm_file)");
          v.devRef = true;
        }
      },
    }),
    CloseVfio: action({
      kernel: "close(vfio fd) -> fput",
      thread: "close",
      each: { i: range(p.devices) },
      when: (s: State, { i }) => fdInstalled(s.vfio[i].fd),
      then: (s: State, { i }) => void closeFd(s.vfio[i].fd, s.vfio[i].file, vfioWhat),
    }),
    ReleaseVfio: action({
      kernel: "__fput -> vfio_device_fops_release -> vfio_df_unbind_iommufd -> vfio_device_put_kvm",
      thread: "task_work",
      each: { i: range(p.devices) },
      when: (s: State, { i }) => isDying(s.vfio[i].file),
      then: (s: State, { i }) => {
        const v = s.vfio[i];
        deferredFput(v.file, vfioWhat, {
          release: () => {
            if (v.devRef) {
              v.devRef = false;
              fput(s.vmFile, "VM file (device->kvm_file)");
            }
            v.bound = false;
          },
        });
      },
    }),
  }),
  ownership: {
    kvm: {
      doc: "kvm->users_count",
      count: (s: State) => s.kvm.users.count,
      live: (s: State) => kvmIsLive(s.kvm),
      // Each file's reference is put by its ->release, so it is held until the file is freed.
      holders: { vmFile: (s: State) => s.vmFile.state !== "freed", kvmVfioDevice: (s: State) => s.kvmVfioFile.state !== "freed" },
    },
    vmFile: {
      doc: "the VM's struct file, f_count",
      count: (s: State) => s.vmFile.count,
      live: (s: State) => isLive(s.vmFile),
      holders: {
        vmFd: (s: State) => fdInstalled(s.vmFd),
        assoc: (s: State) => s.vfio.filter((v) => v.assoc).length,
        devRef: (s: State) => s.vfio.filter((v) => v.devRef).length,
      },
    },
  },
  invariants: {
    assocPinsLiveVmFile: {
      doc: "an association or device reference names a VM file that is live and counted",
      holds: (s: State) => s.vfio.every((v) => !(v.assoc || v.devRef) || isLive(s.vmFile)),
    },
    assocOnlyWithEntry: {
      doc: "df->kvm_file is set only while KVM holds kvf->file on that VFIO file",
      holds: (s: State) => s.vfio.every((v) => !v.assoc || v.kvf),
    },
    kvmFreedUnreferenced: {
      doc: "once kvm_destroy_vm ran, nothing references the VM or its file",
      holds: (s: State) =>
        !kvmIsFreed(s.kvm) ||
        (s.vmFile.state === "freed" && s.kvmVfioFile.state === "freed" && s.vfio.every((v) => !v.assoc && !v.devRef)),
    },
    vfioFileRefsExact: {
      doc: "a live VFIO file is counted by its fd and KVM's entry",
      holds: (s: State) => s.vfio.every((v) => !isLive(v.file) || v.file.count === (fdInstalled(v.fd) ? 1 : 0) + (v.kvf ? 1 : 0)),
    },
  },
  quiescent: {
    noLeak: {
      doc: "all fds closed and no release pending => kvm, the VM file and every VFIO file are freed",
      holds: (s: State) => !allClosed(s) || allFreed(s),
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm, the VM file and every VFIO file") },
  fairness: deferredReleases(),
  reachable: {
    vfioHoldsLastVmRef: {
      doc: "a bound VFIO device holds the last VM-file reference after every KVM fd is closed",
      when: (s: State) =>
        !fdInstalled(s.vmFd) && s.kvmVfioFile.state === "freed" && isLive(s.vmFile) && s.vfio.some((v) => v.devRef),
    },
  },
  symmetry: (s: State) => s.vfio,
  expected: [
    {
      when: { design: "get_file" },
      violated: { noFault: { steps: 2, message: "get_file on dying VM file (kvm->_file)" } },
      doc: "plain get_file(kvm->_file), which the seed warns against: FILE_ADD after the VM fd's close revives a dying file",
    },
  ],
});
