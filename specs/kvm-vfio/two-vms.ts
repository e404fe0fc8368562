// kvm-vfio/two-vms: two VMs' kvm-vfio devices name the same VFIO device file (review U5).
//
// Kernel text read:
//   - virt/kvm/vfio.c: kvm_vfio_file_add refuses a file already on *this* device's
//     kv->file_list (-EEXIST) but nothing looks at other kvm-vfio devices, so a second VM may
//     add the same file; it keeps kvf->file = get_file(filp) and calls kvm_vfio_file_set_kvm
//     (file, dev->kvm). kvm_vfio_file_del and kvm_vfio_release call
//     kvm_vfio_file_set_kvm(file, NULL) for their own entry, whatever VM the file names now.
//   - drivers/vfio/vfio_main.c:vfio_device_file_set_kvm (v6.6+): df->kvm = kvm under
//     df->kvm_ref_lock, a plain overwrite; vfio_df_get_kvm_safe at bind
//     (drivers/vfio/device_cdev.c) takes users_count of whatever VM df->kvm names.
//   - seed 000 v5 1/5: vfio_kvm_file_replace(&df->kvm_file, lock, kvm): new =
//     get_file_active(&kvm->_file) (NULL for a NULL kvm), swap under the lock, fput(old).
//
// Designs (`design`):
//   raw-kvm          upstream: the association is the raw kvm pointer; bind takes
//                    kvm_get_kvm_safe of it, release puts it.
//   get_file_active  seed 000 v5: the association holds a VM-file reference; replace puts the
//                    old one, whichever VM it named.
//   put-on-clear-only  the model's counterfactual: set_kvm(NULL) puts the stored reference, a
//                    set_kvm(kvm) stores the new one without putting the old, as if the file
//                    could only be associated from NULL. With one VM every set overwrites NULL, so it balances; the second
//                    VM's FILE_ADD is where vfio_kvm_file_replace's put-old is needed.
//
// Actions (v = VM 0 or 1): CloseVm(v)/ReleaseVm(v), CloseKvmVfioDev(v)/ReleaseKvmVfioDev(v),
// FileAdd(v)/FileDel(v) on VM v's kvm-vfio device, Bind (VFIO_DEVICE_BIND_IOMMUFD),
// CloseVfio/ReleaseVfio (vfio_df_unbind_iommufd -> vfio_device_put_kvm).
//
// Abstracted away, and why that is sound: each ioctl and release does its reference work in
// one critical section (kv->lock + kvm_ref_lock; dev_set->lock + kvm_ref_lock), so each is one
// step; modules and slab reuse are vm-pinning's subject; one VFIO device, bound at most once;
// each VM adds the file at most twice (enough for add, add, del, add orders).
import { z } from "zod";
import { action, defineSpec } from "../../checker/spec.ts";
import { fileSchema, fput, freeFile, getFile, getFileActive, isDying, newFile } from "../kernel/file.ts";
import { kvmGetKvmSafe, kvmPutKvm } from "../kernel/kvm.ts";
import { refcountSchema } from "../kernel/refcount.ts";

export const designs = ["raw-kvm", "get_file_active", "put-on-clear-only"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("raw-kvm") });
type Params = z.infer<typeof params>;
const pinsFile = (d: Design) => d !== "raw-kvm";
const VMS = [0, 1] as const;

const vm = z.object({
  fd: z.boolean(),
  /** fd + the association (maybe stale ones in put-on-clear-only) + the bound device. */
  file: fileSchema({ maxCount: 5 }),
  /** kvm->_file non-NULL. */
  filePtr: z.boolean(),
  users: refcountSchema(3),
  freed: z.boolean(),
  kvFd: z.boolean(),
  kvFile: fileSchema({ maxCount: 1 }),
  /** This VM's kvm-vfio device has an entry (kvf) for the VFIO file. */
  kvf: z.boolean(),
  /** References on this VM's file that nobody will put (put-on-clear-only). */
  stale: z.number().int().min(0).max(2),
  /** FILE_ADDs issued by this VM (at most two: bounds the run). */
  adds: z.number().int().min(0).max(2),
});
const stateSchema = z.object({
  vm: z.array(vm).length(2),
  vfioFd: z.boolean(),
  /** The VFIO device file: its fd and each VM's kvf->file. */
  vfioFile: fileSchema({ maxCount: 3 }),
  /** Which VM df->kvm / df->kvm_file names. */
  assoc: z.enum(["none", "0", "1"]),
  bound: z.boolean(),
  devRef: z.enum(["none", "0", "1"]),
});
type S = z.infer<typeof stateSchema>;
const idx = (a: "0" | "1") => Number(a);

export default defineSpec({
  name: "kvm-vfio/two-vms",
  summary: "Two VMs add the same VFIO file: the second FILE_ADD overwrites, either DEL or release clears it for both",
  source: "virt/kvm/vfio.c (kvm_vfio_file_add/del/release); seed 000_c0bd9b432b2ea1fa.txt (vfio_kvm_file_replace)",
  params,
  state: () => stateSchema,
  init: (p: Params) => ({
    vm: VMS.map(() => ({
      fd: true, file: newFile(), filePtr: pinsFile(p.design), users: { count: 2 }, freed: false,
      kvFd: true, kvFile: newFile(), kvf: false, stale: 0, adds: 0,
    })),
    vfioFd: true,
    vfioFile: newFile(),
    assoc: "none" as const,
    bound: false,
    devRef: "none" as const,
  }),
  actions: (p: Params) => {
    const d = p.design;
    const putKvm = (s: S, v: number) => {
      if (kvmPutKvm(s.vm[v].users)) s.vm[v].freed = true;
    };
    /** vfio_file_set_kvm(file, kvm of VM `to`, or NULL): overwrite what the file names. */
    const setKvm = (s: S, to: number | null) => {
      const old = s.assoc;
      let next: S["assoc"] = "none";
      if (to !== null) {
        if (!pinsFile(d)) next = String(to) as "0" | "1";
        else if (s.vm[to].filePtr && getFileActive(s.vm[to].file)) next = String(to) as "0" | "1";
      }
      s.assoc = next;
      if (pinsFile(d) && old !== "none") {
        if (d === "put-on-clear-only" && to !== null) s.vm[idx(old)].stale += 1;
        else fput(s.vm[idx(old)].file, `VM ${old} file (old df->kvm_file)`);
      }
    };
    const each = { v: [0, 1] };
    const dropKvf = (s: S, v: number) => {
      setKvm(s, null);
      s.vm[v].kvf = false;
      fput(s.vfioFile, `VFIO device file (VM ${v}'s kvf->file)`);
    };
    return {
      CloseVm: action({
        kernel: "close(vm fd) -> fput",
        each,
        when: (s: S, { v }) => s.vm[v].fd,
        then: (s: S, { v }) => {
          s.vm[v].fd = false;
          fput(s.vm[v].file, `VM ${v} file`);
        },
      }),
      ReleaseVm: action({
        kernel: "__fput -> kvm_vm_release (v5: clears kvm->_file) -> kvm_put_kvm",
        each,
        when: (s: S, { v }) => isDying(s.vm[v].file),
        then: (s: S, { v }) => {
          s.vm[v].filePtr = false;
          putKvm(s, v);
          freeFile(s.vm[v].file, `VM ${v} file`);
        },
      }),
      CloseKvmVfioDev: action({
        kernel: "close(kvm-vfio fd) -> fput",
        each,
        when: (s: S, { v }) => s.vm[v].kvFd,
        then: (s: S, { v }) => {
          s.vm[v].kvFd = false;
          fput(s.vm[v].kvFile, `VM ${v} kvm-vfio device file`);
        },
      }),
      ReleaseKvmVfioDev: action({
        kernel: "__fput -> kvm_device_release -> kvm_vfio_release (set_kvm(NULL), fput(kvf->file)); kvm_put_kvm",
        each,
        when: (s: S, { v }) => isDying(s.vm[v].kvFile),
        then: (s: S, { v }) => {
          if (s.vm[v].kvf) dropKvf(s, v);
          putKvm(s, v);
          freeFile(s.vm[v].kvFile, `VM ${v} kvm-vfio device file`);
        },
      }),
      FileAdd: action({
        kernel: "KVM_DEV_VFIO_FILE_ADD: kvf->file = get_file, kvm_vfio_file_set_kvm(file, kvm)",
        each,
        when: (s: S, { v }) => s.vm[v].kvFd && s.vfioFd && !s.vm[v].kvf && s.vm[v].adds < 2,
        then: (s: S, { v }) => {
          s.vm[v].adds += 1;
          getFile(s.vfioFile, `VFIO device file (VM ${v}'s kvf->file)`);
          s.vm[v].kvf = true;
          setKvm(s, v);
        },
      }),
      FileDel: action({
        kernel: "KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_set_kvm(file, NULL), fput(kvf->file)",
        each,
        when: (s: S, { v }) => s.vm[v].kvFd && s.vfioFd && s.vm[v].kvf,
        then: (s: S, { v }) => dropKvf(s, v),
      }),
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe",
        when: (s: S) => s.vfioFd && !s.bound,
        then: (s: S) => {
          s.bound = true;
          if (s.assoc === "none") return;
          const v = idx(s.assoc);
          if (pinsFile(d)) {
            getFile(s.vm[v].file, `VM ${v} file (device->kvm_file)`);
            s.devRef = s.assoc;
          } else if (kvmGetKvmSafe(s.vm[v].users)) s.devRef = s.assoc;
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
        kernel: "__fput -> vfio_df_unbind_iommufd -> vfio_device_put_kvm",
        when: (s: S) => isDying(s.vfioFile),
        then: (s: S) => {
          if (s.devRef !== "none") {
            const v = idx(s.devRef);
            if (pinsFile(d)) fput(s.vm[v].file, `VM ${v} file (device->kvm_file)`);
            else putKvm(s, v);
            s.devRef = "none";
          }
          s.bound = false;
          freeFile(s.vfioFile, "VFIO device file");
        },
      },
    };
  },
  invariants: (p: Params) => {
    const d = p.design;
    return {
      vmFileRefsExact: {
        doc: "f_count of each VM file = its fd + the association if it names this VM + the bound device's reference",
        holds: (s: S) =>
          VMS.every((v) => {
            const f = s.vm[v].file;
            if (f.state !== "live" || !pinsFile(d)) return true;
            const me = String(v);
            return f.count === (s.vm[v].fd ? 1 : 0) + (s.assoc === me ? 1 : 0) + (s.devRef === me ? 1 : 0);
          }),
      },
      assocNamesAnAdder: {
        doc: "the association names a VM whose kvm-vfio device still has the file (it is its last FILE_ADD)",
        holds: (s: S) => s.assoc === "none" || (s.vm[idx(s.assoc)].kvf && !s.vm[idx(s.assoc)].freed),
      },
      kvmFreedUnreferenced: {
        doc: "a destroyed VM is named by neither the association nor the device",
        holds: (s: S) => VMS.every((v) => !s.vm[v].freed || (s.assoc !== String(v) && s.devRef !== String(v))),
      },
    };
  },
  quiescent: {
    noLeak: {
      doc: "every fd closed, no release pending => both VMs destroyed and every file freed",
      holds: (s: S) =>
        s.vfioFd || s.vm.some((x) => x.fd || x.kvFd) ||
        (s.vm.every((x) => x.freed && x.file.state === "freed" && x.kvFile.state === "freed") && s.vfioFile.state === "freed"),
    },
  },
  reachable: {
    secondAddOverwrites: {
      doc: "U5: both VMs have the file on their kvm-vfio device and the association names only the second",
      when: (s: S) => s.vm[0].kvf && s.vm[1].kvf && s.assoc !== "none",
    },
    otherDelClears: {
      doc: "U5: a VM still has the file on its kvm-vfio device but the association is gone (the other VM's DEL or release cleared it)",
      when: (s: S) =>
        s.vm.every((x) => x.file.state === "live") && s.vm.some((x) => x.kvf && x.kvFd) && s.assoc === "none" &&
        s.vm.some((x) => !x.kvf),
    },
  },
  expected: [
    {
      when: { design: "put-on-clear-only" },
      violated: { vmFileRefsExact: { steps: 2 }, noLeak: { steps: 11 } },
      doc: "counterfactual: the second VM's FILE_ADD overwrites the stored reference without putting it, leaking the first VM's file",
    },
  ],
});
