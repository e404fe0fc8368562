// iommufd-tsm/kvm-file: iommufd's holders of the VM file proposed with seed 000 (Aneesh Kumar
// K.V, iommufd TSM series v5, May 2026; posted as v4 in the seed's thread): the borrowed
// idev->kvm_file and the counted viommu->kvm_file.
//
// Text read (v5 patches 1/5-4/5 as posted; drivers/vfio/device_cdev.c current text):
//   - 1/5 vfio_device_get_kvm_safe: device->kvm_file = get_file(df->kvm_file) under
//     kvm_ref_lock; vfio_device_put_kvm: fput(device->kvm_file).
//   - 2/5 iommufd_device_bind(ictx, dev, kvm_file, id): idev->kvm_file = kvm_file, no
//     reference ("reference is already taken in vfio_df_ioctl_bind_iommufd()");
//     vfio_iommufd_physical_bind passes vdev->kvm_file.
//   - 3/5 iommufd_viommu_alloc_ioctl: viommu->kvm_file = get_file(idev->kvm_file);
//     iommufd_viommu_destroy: fput(viommu->kvm_file).
//   - 4/5 iommufd_vdevice_tsm_op_ioctl: kvm = vdev->viommu->kvm_file->private_data, then
//     tsm_bind/tsm_unbind.
//   - device_cdev.c:vfio_df_ioctl_bind_iommufd takes the kvm reference (vfio_df_get_kvm_safe)
//     before vfio_df_open (which binds the idev); vfio_df_unbind_iommufd runs vfio_df_close
//     (-> iommufd_device_unbind) before vfio_device_put_kvm, both under dev_set->lock.
//
// Designs (`design`):
//   v5                 as posted: borrowed idev->kvm_file, counted viommu->kvm_file, unbind
//                      before put.
//   put-before-unbind  the model's counterfactual order in vfio_df_unbind_iommufd:
//                      vfio_device_put_kvm before iommufd_device_unbind (two steps).
//   viommu-borrows     the model's counterfactual: viommu->kvm_file = idev->kvm_file without
//                      get_file (and no fput at destroy), like idev's own pointer.
//
// Actions (thread "vmm": the VMM's syscalls; "task_work": the deferred __fput of a last close):
//   CloseVm / ReleaseVm  close_fd; __fput -> virt/kvm/kvm_main.c:kvm_vm_release (v5 clears
//                        kvm->_file), kvm_put_kvm
//   CloseKvmVfioDev      close and __fput -> kvm_main.c:kvm_device_release -> virt/kvm/vfio.c:
//                        kvm_vfio_release (clears the association, fput(kvf->file)), kvm_put_kvm
//   FileAdd / FileDel    virt/kvm/vfio.c:kvm_vfio_file_add / kvm_vfio_file_del (v5:
//                        vfio_kvm_file_replace, get_file_active(&kvm->_file))
//   Bind                 drivers/vfio/device_cdev.c:vfio_df_ioctl_bind_iommufd: device->kvm_file,
//                        then iommufd_device_bind
//   ViommuAlloc          drivers/iommu/iommufd/viommu.c:iommufd_viommu_alloc_ioctl
//   TsmOp                iommufd_vdevice_tsm_op_ioctl (reads viommu->kvm_file->private_data)
//   DestroyViommu        IOMMU_DESTROY -> iommufd_viommu_destroy
//   CloseVfio / ReleaseVfio  close_fd; __fput -> device_cdev.c:vfio_df_unbind_iommufd
// v5's actions are the base; each counterfactual design replaces the actions it changes.
//
// Abstracted away, and why that is sound:
//   - The vdevice: TsmOp stands for an op on a vdevice of this viommu; the vdevice holds a
//     viommu users reference, so DestroyViommu after the vdevice is gone is the only order
//     (iommufd-tsm/vdevice models the vdevice itself).
//   - ViommuAlloc holds the idev (iommufd_get_device); iommufd_device_unbind waits for such
//     short-term users, so in v5 the alloc runs wholly before or after the unbind: one step.
//   - The iommufd fd and its release (which destroys the viommu) are IOMMU_DESTROY here;
//     the cycle "bound device pins the iommufd ctx" is not modelled.
//   - The kvm-vfio device's close and release are one step (nothing else holds its file).
//   - Modules: the VM file pins the vendor module as its f_op->owner; a viommu holding the
//     file therefore pins it too, which the witness shows through the file.
import { z } from "zod";
import { defineSpec } from "../../checker/spec.ts";
import {
  closeFd, fdSchema, fileSchema, fileUse, fput, freeFile, getFile, getFileActive, installedFd, isDying, isLive, newFile,
} from "../kernel/file.ts";
import { kvmDestroyVm, kvmIsFreed, kvmSchema, kvmUse, kvmVmFileRelease, newKvm } from "../kernel/kvm.ts";
import { kvmDeviceFileRelease, kvmDeviceSchema, type KvmDeviceOps } from "../kernel/kvm-device.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["v5", "put-before-unbind", "viommu-borrows"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("v5") });
type Params = z.infer<typeof params>;

const stateSchema = z.object({
  vmFd: fdSchema(),
  /** The VM file: its fd, the association df->kvm_file, device->kvm_file, viommu->kvm_file. */
  vmFile: fileSchema({ maxCount: 4 }),
  /** kvm->_file (v5): cleared by kvm_vm_release. */
  vmFilePtr: z.boolean(),
  /** users_count: the VM file and the kvm-vfio device. */
  kvm: kvmSchema({ maxUsers: 2 }),
  kvmVfio: z.object({ fd: fdSchema(), file: fileSchema({ maxCount: 1 }), dev: kvmDeviceSchema() }),
  vfioFd: fdSchema(),
  /** The VFIO device file: its fd and KVM's kvf->file. */
  vfioFile: fileSchema({ maxCount: 2 }),
  kvf: z.boolean(),
  assoc: z.boolean(),
  bound: z.boolean(),
  /** device->kvm_file held. */
  devRef: z.boolean(),
  /** The idev exists and idev->kvm_file is set (borrowed from device->kvm_file). */
  idevKvmFile: z.boolean(),
  idev: z.boolean(),
  viommu: z.enum(["none", "live", "destroyed"]),
  /** viommu->kvm_file set (counted in v5). */
  viommuKvmFile: z.boolean(),
  /** put-before-unbind: the device reference is put, the idev not yet unbound. */
  unbindPending: z.boolean(),
});
type S = z.infer<typeof stateSchema>;
type Action = { kernel: string; thread: string; when: (s: S) => boolean; then: (s: S) => void };

/** virt/kvm/vfio.c's kvm_vfio_ops: a device type with ->release (kvm-vfio.ts of the vocabulary has no model of the body). */
const kvmVfioOps: KvmDeviceOps = { name: "kvm-vfio", release: true, destroy: false };

/**
 * The user has let go of everything: every fd closed, and the iommufd (not modelled as an fd)
 * done with: its viommu destroyed, or none left to make (the idev is gone). Its ioctls need
 * only the viommu or the idev here, so an fd-only trigger would let them go on forever.
 */
const allClosed = (s: S) =>
  s.vmFd.state !== "installed" && s.kvmVfio.fd.state !== "installed" && s.vfioFd.state !== "installed" &&
  (s.viommu === "destroyed" || (s.viommu === "none" && !s.idev));
/** struct kvm and the VM, kvm-vfio and VFIO files are freed. */
const allFreed = (s: S) =>
  kvmIsFreed(s.kvm) && s.vmFile.state === "freed" && s.kvmVfio.file.state === "freed" && s.vfioFile.state === "freed";

export default defineSpec({
  name: "iommufd-tsm/kvm-file",
  summary: "iommufd's VM-file holders: borrowed idev->kvm_file, counted viommu->kvm_file",
  source: "seed 000_c0bd9b432b2ea1fa.txt (v4 thread); iommufd TSM v5 1/5-4/5",
  params,
  state: () => stateSchema,
  init: () => ({
    vmFd: installedFd(), vmFile: newFile(), vmFilePtr: true, kvm: { ...newKvm(), users: { count: 2 } },
    kvmVfio: { fd: installedFd(), file: newFile(), dev: { state: "listed" as const } },
    vfioFd: installedFd(), vfioFile: newFile(), kvf: false, assoc: false, bound: false,
    devRef: false, idevKvmFile: false, idev: false, viommu: "none" as const, viommuKvmFile: false, unbindPending: false,
  }),
  actions: (p: Params) => {
    /** vfio_kvm_file_replace(NULL) (v5): the association's VM-file reference is put. */
    const clearAssoc = (s: S) => {
      if (!s.assoc) return;
      s.assoc = false;
      fput(s.vmFile, "VM file (df->kvm_file)");
    };
    /** kvm_vfio_file_del / kvm_vfio_release for the one kvf: clear the association, fput(kvf->file). */
    const dropKvf = (s: S) => {
      clearAssoc(s);
      s.kvf = false;
      fput(s.vfioFile, "VFIO device file (kvf->file)");
    };
    /** drivers/vfio/vfio_main.c:vfio_device_put_kvm (v5): fput(device->kvm_file). */
    const putDevKvm = (s: S) => {
      if (!s.devRef) return;
      s.devRef = false;
      fput(s.vmFile, "VM file (device->kvm_file)");
    };
    /** vfio_df_unbind_iommufd's vfio_df_close -> iommufd_device_unbind: idev and its borrowed kvm_file go. */
    const unbindIdev = (s: S) => {
      s.idev = false;
      s.idevKvmFile = false;
    };
    /** The rest of the VFIO file's __fput after vfio_df_unbind_iommufd. */
    const vfioReleased = (s: S) => {
      s.bound = false;
      freeFile(s.vfioFile, "VFIO device file");
    };

    const v5: Record<string, Action> = {
      CloseVm: {
        kernel: "close(vm fd) -> fput",
        thread: "vmm",
        when: (s) => s.vmFd.state === "installed",
        then: (s) => void closeFd(s.vmFd, s.vmFile, "VM file"),
      },
      ReleaseVm: {
        kernel: "__fput -> kvm_vm_release: RCU_INIT_POINTER(kvm->_file, NULL), kvm_put_kvm",
        thread: "task_work",
        when: (s) => isDying(s.vmFile),
        then: (s) => {
          s.vmFilePtr = false;
          if (kvmVmFileRelease(s.kvm, s.vmFile)) kvmDestroyVm(s.kvm);
        },
      },
      CloseKvmVfioDev: {
        kernel: "close(kvm-vfio fd) -> __fput -> kvm_device_release -> kvm_vfio_release; kvm_put_kvm",
        thread: "vmm",
        when: (s) => s.kvmVfio.fd.state === "installed",
        then: (s) => {
          if (closeFd(s.kvmVfio.fd, s.kvmVfio.file, "kvm-vfio file") !== "last") return;
          if (s.kvf) dropKvf(s); // kvm_vfio_release, under kvm->lock
          if (kvmDeviceFileRelease(s.kvmVfio.dev, s.kvm, s.kvmVfio.file, kvmVfioOps)) kvmDestroyVm(s.kvm);
        },
      },
      FileAdd: {
        kernel: "KVM_DEV_VFIO_FILE_ADD -> vfio_kvm_file_replace (get_file_active(&kvm->_file))",
        thread: "vmm",
        when: (s) => s.kvmVfio.fd.state === "installed" && s.vfioFd.state === "installed" && !s.kvf,
        then: (s) => {
          getFile(s.vfioFile, "VFIO device file (kvf->file)");
          s.kvf = true;
          s.assoc = s.vmFilePtr && getFileActive(s.vmFile);
        },
      },
      FileDel: {
        kernel: "KVM_DEV_VFIO_FILE_DEL -> vfio_kvm_file_replace(NULL), fput(kvf->file)",
        thread: "vmm",
        when: (s) => s.kvmVfio.fd.state === "installed" && s.vfioFd.state === "installed" && s.kvf,
        then: (s) => dropKvf(s),
      },
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe (get_file), vfio_df_open -> iommufd_device_bind(.., kvm_file)",
        thread: "vmm",
        when: (s) => s.vfioFd.state === "installed" && !s.bound,
        then: (s) => {
          s.bound = true;
          if (s.assoc) {
            getFile(s.vmFile, "VM file (device->kvm_file)");
            s.devRef = true;
          }
          s.idev = true;
          s.idevKvmFile = s.devRef; // borrowed
        },
      },
      ViommuAlloc: {
        kernel: "IOMMU_VIOMMU_ALLOC -> iommufd_viommu_alloc_ioctl: viommu->kvm_file = get_file(idev->kvm_file)",
        thread: "vmm",
        when: (s) => s.idev && s.viommu === "none",
        then: (s) => {
          s.viommu = "live";
          if (!s.idevKvmFile) return;
          getFile(s.vmFile, "VM file (idev->kvm_file, for viommu->kvm_file)");
          s.viommuKvmFile = true;
        },
      },
      TsmOp: {
        kernel: "IOMMU_VDEVICE_TSM_OP: kvm = vdev->viommu->kvm_file->private_data; tsm_bind/tsm_unbind",
        thread: "vmm",
        when: (s) => s.viommu === "live" && s.viommuKvmFile,
        then: (s) => {
          fileUse(s.vmFile, "viommu->kvm_file->private_data", "iommufd_vdevice_tsm_op_ioctl");
          kvmUse(s.kvm, "iommufd_vdevice_tsm_op_ioctl (tsm_bind with kvm_file->private_data)");
        },
      },
      DestroyViommu: {
        kernel: "IOMMU_DESTROY -> iommufd_viommu_destroy: fput(viommu->kvm_file)",
        thread: "vmm",
        when: (s) => s.viommu === "live",
        then: (s) => {
          s.viommu = "destroyed";
          if (s.viommuKvmFile) fput(s.vmFile, "VM file (viommu->kvm_file)");
          s.viommuKvmFile = false;
        },
      },
      CloseVfio: {
        kernel: "close(vfio fd) -> fput",
        thread: "vmm",
        when: (s) => s.vfioFd.state === "installed",
        then: (s) => void closeFd(s.vfioFd, s.vfioFile, "VFIO device file"),
      },
      ReleaseVfio: {
        kernel: "__fput -> vfio_df_unbind_iommufd: vfio_df_close (iommufd_device_unbind), vfio_device_put_kvm",
        thread: "task_work",
        when: (s) => isDying(s.vfioFile),
        then: (s) => {
          unbindIdev(s);
          putDevKvm(s);
          vfioReleased(s);
        },
      },
    };

    // Each counterfactual design is v5 with these actions replaced.
    const patch: Record<Design, Record<string, Action>> = {
      v5: {},
      "put-before-unbind": {
        ReleaseVfio: {
          ...v5.ReleaseVfio,
          kernel: "__fput -> vfio_df_unbind_iommufd: vfio_device_put_kvm, then (next step) iommufd_device_unbind",
          then: (s) => {
            if (!s.unbindPending) {
              putDevKvm(s);
              s.unbindPending = true;
              return;
            }
            unbindIdev(s);
            s.unbindPending = false;
            vfioReleased(s);
          },
        },
      },
      "viommu-borrows": {
        ViommuAlloc: {
          ...v5.ViommuAlloc,
          kernel: "IOMMU_VIOMMU_ALLOC -> iommufd_viommu_alloc_ioctl: viommu->kvm_file = idev->kvm_file (no reference)",
          then: (s) => {
            s.viommu = "live";
            s.viommuKvmFile = s.idevKvmFile;
          },
        },
        DestroyViommu: {
          ...v5.DestroyViommu,
          kernel: "IOMMU_DESTROY -> iommufd_viommu_destroy (nothing to put)",
          then: (s) => {
            s.viommu = "destroyed";
            s.viommuKvmFile = false;
          },
        },
      },
    };
    return { ...v5, ...patch[p.design] };
  },
  ownership: (p: Params) => ({
    vmFile: {
      doc: "the VM file's f_count",
      count: (s: S) => s.vmFile.count,
      live: (s: S) => isLive(s.vmFile),
      holders: {
        fd: (s: S) => s.vmFd.state === "installed",
        assoc: (s: S) => s.assoc,
        device: (s: S) => s.devRef,
        ...(p.design === "viommu-borrows" ? {} : { viommu: (s: S) => s.viommuKvmFile }),
      },
    },
    kvm: {
      doc: "kvm->users_count",
      count: (s: S) => s.kvm.users.count,
      live: (s: S) => !kvmIsFreed(s.kvm),
      // Each file's ->release puts it: held until that file's __fput.
      holders: { vmFile: (s: S) => s.vmFile.state !== "freed", kvmVfio: (s: S) => s.kvmVfio.file.state !== "freed" },
    },
    vfioFile: {
      doc: "the VFIO device file's f_count",
      count: (s: S) => s.vfioFile.count,
      live: (s: S) => isLive(s.vfioFile),
      holders: { fd: (s: S) => s.vfioFd.state === "installed", kvf: (s: S) => s.kvf },
    },
  }),
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "kvm and every file") },
  fairness: deferredReleases(),
  invariants: {
    idevBorrowCovered: {
      doc: "idev->kvm_file is set only while device->kvm_file holds the file it borrows",
      holds: (s: S) => !s.idevKvmFile || s.devRef,
    },
  },
  reachable: (p: Params) => ({
    viommuOutlivesVfio: {
      doc: "every KVM fd closed and the VFIO device released; the viommu alone keeps the VM file (and its module) alive",
      when: (s: S) =>
        s.vmFd.state !== "installed" && s.kvmVfio.fd.state !== "installed" && s.vfioFile.state === "freed" && s.viommuKvmFile && isLive(s.vmFile),
      expect: p.design === "viommu-borrows" ? ("unreachable" as const) : ("reachable" as const),
    },
  }),
  expected: [
    {
      when: { design: "put-before-unbind" },
      violated: {
        noFault: { steps: 7, message: "get_file on dying VM file (idev->kvm_file" },
        idevBorrowCovered: { steps: 5 },
      },
      doc: "counterfactual order: vfio_device_put_kvm before iommufd_device_unbind leaves idev's borrowed kvm_file uncovered",
    },
    {
      when: { design: "viommu-borrows" },
      violated: { noFault: { steps: 9, message: "iommufd_vdevice_tsm_op_ioctl reads viommu->kvm_file->private_data after the file was freed" } },
      doc: "counterfactual: viommu->kvm_file without get_file, so TSM_OP reads a freed VM file",
    },
  ],
});
