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
// Actions: CloseVm/ReleaseVm, CloseKvmVfioDev (close and release: kvm_vfio_release clears the
// association), FileAdd/FileDel, Bind (VFIO_DEVICE_BIND_IOMMUFD: device->kvm_file, then
// iommufd_device_bind), ViommuAlloc (IOMMU_VIOMMU_ALLOC through the bound idev), TsmOp
// (IOMMU_VDEVICE_TSM_OP: reads viommu->kvm_file->private_data), DestroyViommu (IOMMU_DESTROY),
// CloseVfio/ReleaseVfio (vfio_df_unbind_iommufd).
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
import { defineSpec, Fault } from "../../checker/spec.ts";
import { fileSchema, fput, freeFile, getFile, getFileActive, isDying, newFile } from "../kernel/file.ts";
import { kvmPutKvm } from "../kernel/kvm.ts";
import { refcountSchema } from "../kernel/refcount.ts";

export const designs = ["v5", "put-before-unbind", "viommu-borrows"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("v5") });
type Params = z.infer<typeof params>;

const stateSchema = z.object({
  vmFd: z.boolean(),
  /** The VM file: its fd, the association df->kvm_file, device->kvm_file, viommu->kvm_file. */
  vmFile: fileSchema({ maxCount: 4 }),
  vmFilePtr: z.boolean(),
  /** users_count: the VM file and the kvm-vfio device. */
  users: refcountSchema(2),
  kvmFreed: z.boolean(),
  kvmVfioFd: z.boolean(),
  vfioFd: z.boolean(),
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

export default defineSpec({
  name: "iommufd-tsm/kvm-file",
  summary: "iommufd's VM-file holders: borrowed idev->kvm_file, counted viommu->kvm_file",
  source: "seed 000_c0bd9b432b2ea1fa.txt (v4 thread); iommufd TSM v5 1/5-4/5",
  params,
  state: () => stateSchema,
  init: () => ({
    vmFd: true, vmFile: newFile(), vmFilePtr: true, users: { count: 2 }, kvmFreed: false,
    kvmVfioFd: true, vfioFd: true, vfioFile: newFile(), kvf: false, assoc: false, bound: false,
    devRef: false, idevKvmFile: false, idev: false, viommu: "none" as const, viommuKvmFile: false, unbindPending: false,
  }),
  actions: (p: Params) => {
    const d = p.design;
    const putKvm = (s: S) => {
      if (kvmPutKvm(s.users)) s.kvmFreed = true;
    };
    const clearAssoc = (s: S) => {
      if (!s.assoc) return;
      s.assoc = false;
      fput(s.vmFile, "VM file (df->kvm_file)");
    };
    const dropKvf = (s: S) => {
      clearAssoc(s);
      s.kvf = false;
      fput(s.vfioFile, "VFIO device file (kvf->file)");
    };
    const unbindIdev = (s: S) => {
      s.idev = false;
      s.idevKvmFile = false;
    };
    const putDevKvm = (s: S) => {
      if (!s.devRef) return;
      s.devRef = false;
      fput(s.vmFile, "VM file (device->kvm_file)");
    };
    return {
      CloseVm: {
        kernel: "close(vm fd) -> fput",
        when: (s: S) => s.vmFd,
        then: (s: S) => {
          s.vmFd = false;
          fput(s.vmFile, "VM file");
        },
      },
      ReleaseVm: {
        kernel: "__fput -> kvm_vm_release: RCU_INIT_POINTER(kvm->_file, NULL), kvm_put_kvm",
        when: (s: S) => isDying(s.vmFile),
        then: (s: S) => {
          s.vmFilePtr = false;
          putKvm(s);
          freeFile(s.vmFile, "VM file");
        },
      },
      CloseKvmVfioDev: {
        kernel: "close(kvm-vfio fd) -> __fput -> kvm_device_release -> kvm_vfio_release; kvm_put_kvm",
        when: (s: S) => s.kvmVfioFd,
        then: (s: S) => {
          s.kvmVfioFd = false;
          if (s.kvf) dropKvf(s);
          putKvm(s);
        },
      },
      FileAdd: {
        kernel: "KVM_DEV_VFIO_FILE_ADD -> vfio_kvm_file_replace (get_file_active(&kvm->_file))",
        when: (s: S) => s.kvmVfioFd && s.vfioFd && !s.kvf,
        then: (s: S) => {
          getFile(s.vfioFile, "VFIO device file (kvf->file)");
          s.kvf = true;
          s.assoc = s.vmFilePtr && getFileActive(s.vmFile);
        },
      },
      FileDel: {
        kernel: "KVM_DEV_VFIO_FILE_DEL -> vfio_kvm_file_replace(NULL), fput(kvf->file)",
        when: (s: S) => s.kvmVfioFd && s.vfioFd && s.kvf,
        then: (s: S) => dropKvf(s),
      },
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD: vfio_df_get_kvm_safe (get_file), vfio_df_open -> iommufd_device_bind(.., kvm_file)",
        when: (s: S) => s.vfioFd && !s.bound,
        then: (s: S) => {
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
        when: (s: S) => s.idev && s.viommu === "none",
        then: (s: S) => {
          s.viommu = "live";
          if (!s.idevKvmFile) return;
          if (d !== "viommu-borrows") getFile(s.vmFile, "VM file (idev->kvm_file, for viommu->kvm_file)");
          s.viommuKvmFile = true;
        },
      },
      TsmOp: {
        kernel: "IOMMU_VDEVICE_TSM_OP: kvm = vdev->viommu->kvm_file->private_data; tsm_bind/tsm_unbind",
        when: (s: S) => s.viommu === "live" && s.viommuKvmFile,
        then: (s: S) => {
          if (s.vmFile.state === "freed" || s.kvmFreed) {
            throw new Fault("model: iommufd_vdevice_tsm_op_ioctl reads viommu->kvm_file->private_data after the VM file was freed (use-after-free)");
          }
        },
      },
      DestroyViommu: {
        kernel: "IOMMU_DESTROY -> iommufd_viommu_destroy: fput(viommu->kvm_file)",
        when: (s: S) => s.viommu === "live",
        then: (s: S) => {
          s.viommu = "destroyed";
          if (s.viommuKvmFile && d !== "viommu-borrows") fput(s.vmFile, "VM file (viommu->kvm_file)");
          s.viommuKvmFile = false;
        },
      },
      CloseVfio: {
        kernel: "close(vfio fd) -> fput",
        when: (s: S) => s.vfioFd,
        then: (s: S) => {
          s.vfioFd = false;
          fput(s.vfioFile, "VFIO device file");
        },
      },
      ReleaseVfio: {
        kernel: d === "put-before-unbind"
          ? "__fput -> vfio_df_unbind_iommufd: vfio_device_put_kvm, then (next step) iommufd_device_unbind"
          : "__fput -> vfio_df_unbind_iommufd: vfio_df_close (iommufd_device_unbind), vfio_device_put_kvm",
        when: (s: S) => isDying(s.vfioFile),
        then: (s: S) => {
          if (d === "put-before-unbind" && !s.unbindPending) {
            putDevKvm(s);
            s.unbindPending = true;
            return;
          }
          unbindIdev(s);
          if (d !== "put-before-unbind") putDevKvm(s);
          s.unbindPending = false;
          s.bound = false;
          freeFile(s.vfioFile, "VFIO device file");
        },
      },
    };
  },
  invariants: (p: Params) => ({
    vmFileRefsExact: {
      doc: "f_count of the VM file = fd + association + device->kvm_file + viommu->kvm_file (counted designs)",
      holds: (s: S) =>
        s.vmFile.state !== "live" ||
        s.vmFile.count ===
          (s.vmFd ? 1 : 0) + (s.assoc ? 1 : 0) + (s.devRef ? 1 : 0) + (s.viommuKvmFile && p.design !== "viommu-borrows" ? 1 : 0),
    },
    idevBorrowCovered: {
      doc: "idev->kvm_file is set only while device->kvm_file holds the file it borrows",
      holds: (s: S) => !s.idevKvmFile || s.devRef,
    },
  }),
  quiescent: {
    noLeak: {
      doc: "every fd closed, viommu destroyed, nothing pending => kvm and the VM file freed",
      holds: (s: S) =>
        s.vmFd || s.kvmVfioFd || s.vfioFd || s.viommu === "live" ||
        (s.kvmFreed && s.vmFile.state === "freed" && s.vfioFile.state === "freed"),
    },
  },
  reachable: (p: Params) => ({
    viommuOutlivesVfio: {
      doc: "every KVM fd closed and the VFIO device released; the viommu alone keeps the VM file (and its module) alive",
      when: (s: S) =>
        !s.vmFd && !s.kvmVfioFd && s.vfioFile.state === "freed" && s.viommuKvmFile && s.vmFile.state === "live",
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
      violated: { noFault: { steps: 9, message: "reads viommu->kvm_file->private_data after the VM file was freed" } },
      doc: "counterfactual: viommu->kvm_file without get_file, so TSM_OP reads a freed VM file",
    },
  ],
});
