// kvm->users_count (virt/kvm/kvm_main.c).
import { refcountDecAndTest, refcountInc, refcountIncNotZero, type Refcount } from "./refcount.ts";

const users = "kvm->users_count";

/** kvm_get_kvm: refcount_inc on users_count. */
export function kvmGetKvm(users_count: Refcount): void {
  refcountInc(users_count, users);
}

/** kvm_get_kvm_safe: refcount_inc_not_zero; false once the VM is being destroyed. */
export function kvmGetKvmSafe(users_count: Refcount): boolean {
  return refcountIncNotZero(users_count);
}

/**
 * kvm_put_kvm: refcount_dec_and_test. Returns true when this put must run kvm_destroy_vm;
 * the caller does so in the same step, or starts a destroy sequence where phases matter.
 */
export function kvmPutKvm(users_count: Refcount): boolean {
  return refcountDecAndTest(users_count, users);
}
