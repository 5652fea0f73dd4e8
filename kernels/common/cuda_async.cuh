#pragma once
// Asynchronous global -> shared copies (cp.async, sm_80+) for kernels that want many loads in
// flight without holding them in registers.

#include <cstdint>

namespace mcv::kernels::cuda {

/// The shared-memory address of a generic pointer into shared memory (PTX operands).
__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 16 bytes from global `src` to shared `dst` (both 16-byte aligned), bypassing L1; zero-filled
/// instead (nothing read) when !ok.
__device__ __forceinline__ void cp_async16_or_zero(void* dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(ok ? 16 : 0)
               : "memory");
}

/// Closes the group of this thread's copies started since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most kPending of this thread's committed groups are still in flight (the newest
/// ones: groups complete in commit order).
template <int kPending>
__device__ __forceinline__ void cp_async_wait_pending() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}
/// Waits for every committed group of this thread's copies.
__device__ __forceinline__ void cp_async_wait_committed() { cp_async_wait_pending<0>(); }
/// Closes this thread's group of copies and waits for all of them.
__device__ __forceinline__ void cp_async_wait_all() {
  cp_async_commit();
  cp_async_wait_committed();
}

}  // namespace mcv::kernels::cuda
