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
// Actions (thread: v = VM 0 or 1; virt/kvm/kvm_main.c, virt/kvm/vfio.c, drivers/vfio/vfio_main.c):
//   CloseVm(v), CloseKvmVfioDev(v), CloseVfio   close: close_fd -> fput
//   ReleaseVm(v)          task_work: __fput -> kvm_vm_release (v5: clears kvm->_file) -> kvm_put_kvm
//   ReleaseKvmVfioDev(v)  task_work: __fput -> kvm_device_release -> kvm_vfio_release
//                         (kvm_vfio_file_set_kvm(NULL), fput(kvf->file)), kvm_put_kvm
//   FileAdd(v), FileDel(v)  ioctl: KVM_DEV_VFIO_FILE_ADD/DEL on VM v's kvm-vfio device
//                         (kvm_vfio_file_add/del -> vfio_file_set_kvm)
//   Bind                  ioctl: VFIO_DEVICE_BIND_IOMMUFD -> vfio_device_get_kvm_safe
//   ReleaseVfio           task_work: __fput -> vfio_df_unbind_iommufd -> vfio_device_put_kvm
// The designs differ only in vfio_file_set_kvm (`setKvm`) and in what the device's reference is.
//
// Abstracted away, and why that is sound: each ioctl and release does its reference work in
// one critical section (kv->lock + kvm_ref_lock; dev_set->lock + kvm_ref_lock), so each is one
// step; modules and slab reuse are vm-pinning's subject; one VFIO device, bound at most once;
// each VM adds the file at most twice (enough for add, add, del, add orders).
import { z } from "zod";
import { action, defineSpec } from "../../checker/spec.ts";
import { closeFd, fdInstalled, deferredFput, fdSchema, fileSchema, fput, getFile, installedFd, isDying, isLive, newFile } from "../kernel/file.ts";
import { kvmIsFreed, kvmSchema, newKvm, kvmVmFileRelease } from "../kernel/kvm.ts";
import { kvmDeviceFileRelease, kvmDeviceSchema } from "../kernel/kvm-device.ts";
import {
  kvmFileGet, kvmVfioFileAdd, kvmVfioFileDel, kvmVfioOps, kvmVfioRelease, vfioDeviceCallPutKvm, vfioDeviceGetKvmSafe, vfioKvmFileReplace,
} from "../kernel/kvm-vfio.ts";
import { deferredReleases, freedOnceClosed } from "../kernel/lifetime.ts";

export const designs = ["raw-kvm", "get_file_active", "put-on-clear-only"] as const;
export type Design = (typeof designs)[number];

const params = z.object({ design: z.enum(designs).default("raw-kvm") });
type Params = z.infer<typeof params>;
const pinsFile = (d: Design) => d !== "raw-kvm";
const VMS = [0, 1] as const;

const vm = z.object({
  fd: fdSchema(),
  /** fd + the association (maybe stale ones in put-on-clear-only) + the bound device. */
  file: fileSchema({ maxCount: 5 }),
  /** kvm->_file non-NULL. */
  filePtr: z.boolean(),
  kvm: kvmSchema({ maxUsers: 3 }),
  kvFd: fdSchema(),
  kvFile: fileSchema({ maxCount: 1 }),
  kvDev: kvmDeviceSchema(),
  /** This VM's kvm-vfio device has an entry (kvf) for the VFIO file. */
  kvf: z.boolean(),
  /** References on this VM's file that nobody will put (put-on-clear-only). */
  stale: z.number().int().min(0).max(2),
  /** FILE_ADDs issued by this VM (at most two: bounds the run). */
  adds: z.number().int().min(0).max(2),
});
const stateSchema = z.object({
  vm: z.array(vm).length(2),
  vfioFd: fdSchema(),
  /** The VFIO device file: its fd and each VM's kvf->file. */
  vfioFile: fileSchema({ maxCount: 3 }),
  /** Which VM df->kvm / df->kvm_file names. */
  assoc: z.enum(["none", "0", "1"]),
  bound: z.boolean(),
  devRef: z.enum(["none", "0", "1"]),
});
type S = z.infer<typeof stateSchema>;
type Named = S["assoc"];
const idx = (a: "0" | "1") => Number(a);
const named = (v: number | null): Named => (v === null ? "none" : (String(v) as "0" | "1"));
const ops = kvmVfioOps();
const vfioWhat = (v: number) => `VFIO device file (VM ${v}'s kvf->file)`;

/** Every fd closed: the VFIO device's and each VM's VM and kvm-vfio fds. */
const allClosed = (s: S) => !fdInstalled(s.vfioFd) && s.vm.every((x) => !fdInstalled(x.fd) && !fdInstalled(x.kvFd));
/** Both VMs destroyed and every file freed. */
const allFreed = (s: S) =>
  s.vm.every((x) => kvmIsFreed(x.kvm) && x.file.state === "freed" && x.kvFile.state === "freed") && s.vfioFile.state === "freed";

export default defineSpec({
  name: "kvm-vfio/two-vms",
  summary: "Two VMs add the same VFIO file: the second FILE_ADD overwrites, either DEL or release clears it for both",
  source: "virt/kvm/vfio.c (kvm_vfio_file_add/del/release); seed 000_c0bd9b432b2ea1fa.txt (vfio_kvm_file_replace)",
  params,
  state: () => stateSchema,
  init: (p: Params) => ({
    vm: VMS.map(() => ({
      fd: installedFd(), file: newFile(), filePtr: pinsFile(p.design), kvm: newKvm({ users: 2 }),
      kvFd: installedFd(), kvFile: newFile(), kvDev: { state: "listed" as const }, kvf: false, stale: 0, adds: 0,
    })),
    vfioFd: installedFd(),
    vfioFile: newFile(),
    assoc: "none" as const,
    bound: false,
    devRef: "none" as const,
  }),
  actions: (p: Params) => {
    const d = p.design;
    /**
     * vfio_kvm_file_replace(&df->kvm_file, kvm of VM `to` or NULL): the new VM's file with
     * get_file_active, the old one put (`putOld` false: the counterfactual keeps it, stale).
     */
    const replace = (s: S, to: number | null, putOld: boolean) => {
      const old = s.assoc;
      const oldFile = old === "none" || !putOld ? null : s.vm[idx(old)].file;
      const get = to === null ? null : () => kvmFileGet("get_file_active", s.vm[to].filePtr, s.vm[to].file, `VM ${to} file (kvm->_file)`);
      const got = vfioKvmFileReplace(oldFile, get, `VM ${old} file (old df->kvm_file)`);
      if (!putOld && old !== "none") s.vm[idx(old)].stale += 1;
      s.assoc = got ? named(to) : "none";
    };
    /** vfio_file_set_kvm(file, kvm of VM `to`, or NULL): overwrite what the file names. */
    const setKvm: (s: S, to: number | null) => void = {
      "raw-kvm": (s: S, to: number | null) => { s.assoc = named(to); }, // df->kvm = kvm, under kvm_ref_lock
      get_file_active: (s: S, to: number | null) => replace(s, to, true),
      "put-on-clear-only": (s: S, to: number | null) => replace(s, to, to === null),
    }[d];
    const each = { v: [0, 1] };
    return {
      CloseVm: action({
        kernel: "close(vm fd) -> fput",
        thread: "close",
        each,
        when: (s: S, { v }) => fdInstalled(s.vm[v].fd),
        then: (s: S, { v }) => void closeFd(s.vm[v].fd, s.vm[v].file, `VM ${v} file`),
      }),
      ReleaseVm: action({
        kernel: "__fput -> kvm_vm_release (v5: clears kvm->_file) -> kvm_put_kvm",
        thread: "task_work",
        each,
        when: (s: S, { v }) => isDying(s.vm[v].file),
        then: (s: S, { v }) => {
          s.vm[v].filePtr = false;
          kvmVmFileRelease(s.vm[v].kvm, s.vm[v].file, { destroy: {} });
        },
      }),
      CloseKvmVfioDev: action({
        kernel: "close(kvm-vfio fd) -> fput",
        thread: "close",
        each,
        when: (s: S, { v }) => fdInstalled(s.vm[v].kvFd),
        then: (s: S, { v }) => void closeFd(s.vm[v].kvFd, s.vm[v].kvFile, `VM ${v} kvm-vfio device file`),
      }),
      ReleaseKvmVfioDev: action({
        kernel: "__fput -> kvm_device_release -> kvm_vfio_release (set_kvm(NULL), fput(kvf->file)); kvm_put_kvm",
        thread: "task_work",
        each,
        when: (s: S, { v }) => isDying(s.vm[v].kvFile),
        then: (s: S, { v }) =>
          void kvmDeviceFileRelease(s.vm[v].kvDev, s.vm[v].kvm, s.vm[v].kvFile, ops, {
            destroy: {},
            body: () => kvmVfioRelease([{ e: s.vm[v], file: s.vfioFile, what: vfioWhat(v), clearKvm: () => setKvm(s, null) }]),
          }),
      }),
      FileAdd: action({
        kernel: "KVM_DEV_VFIO_FILE_ADD: kvf->file = get_file, kvm_vfio_file_set_kvm(file, kvm)",
        thread: "ioctl",
        each,
        when: (s: S, { v }) => fdInstalled(s.vm[v].kvFd) && fdInstalled(s.vfioFd) && !s.vm[v].kvf && s.vm[v].adds < 2,
        then: (s: S, { v }) => {
          s.vm[v].adds += 1;
          kvmVfioFileAdd(s.vm[v], s.vfioFile, vfioWhat(v), () => setKvm(s, v));
        },
      }),
      FileDel: action({
        kernel: "KVM_DEV_VFIO_FILE_DEL: kvm_vfio_file_set_kvm(file, NULL), fput(kvf->file)",
        thread: "ioctl",
        each,
        when: (s: S, { v }) => fdInstalled(s.vm[v].kvFd) && fdInstalled(s.vfioFd) && s.vm[v].kvf,
        then: (s: S, { v }) => kvmVfioFileDel(s.vm[v], s.vfioFile, vfioWhat(v), () => setKvm(s, null)),
      }),
      Bind: {
        kernel: "VFIO_DEVICE_BIND_IOMMUFD -> vfio_df_get_kvm_safe -> vfio_device_get_kvm_safe",
        thread: "ioctl",
        when: (s: S) => fdInstalled(s.vfioFd) && !s.bound,
        then: (s: S) => {
          s.bound = true;
          if (s.assoc === "none") return;
          const v = idx(s.assoc);
          if (pinsFile(d)) {
            getFile(s.vm[v].file, `VM ${v} file (device->kvm_file)`);
            s.devRef = s.assoc;
          } else if (vfioDeviceGetKvmSafe(s.vm[v].kvm)) s.devRef = s.assoc;
        },
      },
      CloseVfio: {
        kernel: "close(vfio fd) -> fput",
        thread: "close",
        when: (s: S) => fdInstalled(s.vfioFd),
        then: (s: S) => void closeFd(s.vfioFd, s.vfioFile, "VFIO device file"),
      },
      ReleaseVfio: {
        kernel: "__fput -> vfio_df_unbind_iommufd -> vfio_device_put_kvm",
        thread: "task_work",
        when: (s: S) => isDying(s.vfioFile),
        then: (s: S) =>
          deferredFput(s.vfioFile, "VFIO device file", {
            release: () => {
              if (s.devRef !== "none") {
                const v = idx(s.devRef);
                if (pinsFile(d)) fput(s.vm[v].file, `VM ${v} file (device->kvm_file)`);
                else vfioDeviceCallPutKvm(s.vm[v].kvm, {});
                s.devRef = "none";
              }
              s.bound = false;
            },
          }),
      },
    };
  },
  ownership: (p: Params) =>
    Object.fromEntries(
      VMS.map((v) => {
        const me = String(v);
        const counted = (x: Named) => pinsFile(p.design) && x === me;
        return [`vm${v}File`, {
          doc: `VM ${v}'s struct file, f_count`,
          count: (s: S) => s.vm[v].file.count,
          live: (s: S) => isLive(s.vm[v].file),
          holders: { fd: (s: S) => fdInstalled(s.vm[v].fd), assoc: (s: S) => counted(s.assoc), devRef: (s: S) => counted(s.devRef) },
        }];
      }),
    ),
  invariants: {
    assocNamesAnAdder: {
      doc: "the association names a VM whose kvm-vfio device still has the file (it is its last FILE_ADD)",
      holds: (s: S) => s.assoc === "none" || (s.vm[idx(s.assoc)].kvf && !kvmIsFreed(s.vm[idx(s.assoc)].kvm)),
    },
    kvmFreedUnreferenced: {
      doc: "a destroyed VM is named by neither the association nor the device",
      holds: (s: S) => VMS.every((v) => !kvmIsFreed(s.vm[v].kvm) || (s.assoc !== String(v) && s.devRef !== String(v))),
    },
  },
  quiescent: {
    noLeak: {
      doc: "every fd closed, no release pending => both VMs destroyed and every file freed",
      holds: (s: S) => !allClosed(s) || allFreed(s),
    },
  },
  liveness: { freedOnceClosed: freedOnceClosed(allClosed, allFreed, "both VMs and every file") },
  fairness: deferredReleases(),
  reachable: {
    secondAddOverwrites: {
      doc: "U5: both VMs have the file on their kvm-vfio device and the association names only the second",
      when: (s: S) => s.vm[0].kvf && s.vm[1].kvf && s.assoc !== "none",
    },
    otherDelClears: {
      doc: "U5: a VM still has the file on its kvm-vfio device but the association is gone (the other VM's DEL or release cleared it)",
      when: (s: S) =>
        s.vm.every((x) => isLive(x.file)) && s.vm.some((x) => x.kvf && fdInstalled(x.kvFd)) && s.assoc === "none" &&
        s.vm.some((x) => !x.kvf),
    },
  },
  expected: [
    {
      when: { design: "put-on-clear-only" },
      // Either VM can be the first: the same leak shows on both files.
      violated: {
        vm0FileCountExact: { steps: 2 }, vm1FileCountExact: { steps: 2 },
        noLeak: { steps: 11 }, vm0FileNoLeak: { steps: 11 }, vm1FileNoLeak: { steps: 11 },
        freedOnceClosed: { steps: 11, message: "the run stops at step 11 (no action can run)" },
      },
      doc: "counterfactual: the second VM's FILE_ADD overwrites the stored reference without putting it, leaking the first VM's file",
    },
  ],
});
