#pragma once
// Device math shared by the CUDA ops: division by a run-time constant, activations. softplus uses
// precise libm calls (expf, log1pf: the oracles are f32 PyTorch without fast math); the
// selective-scan kernels keep their own polynomial form of it. SiLU is the MUFU form everywhere.

#include <cstdint>

namespace mcv::kernels::cuda {

/// n / d and n % d for 0 <= n < 2^31 and 1 <= d < 2^31 by a multiply-high (PyTorch's IntDivider):
/// with s = ceil(log2 d) and m = floor(2^32 (2^s - d) / d) + 1, n / d = (umulhi(n, m) + n) >> s.
/// About 4 instructions against ~20 for a 32-bit and ~70 for a 64-bit division.
struct FastDiv {
  std::uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  explicit FastDiv(std::uint32_t divisor) : d(divisor) {
    while ((std::uint64_t{1} << s) < d) ++s;
    m = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) * ((std::uint64_t{1} << s) - d)) / d + 1);
  }
  __host__ __device__ __forceinline__ std::uint32_t div(std::uint32_t n) const {
#ifdef __CUDA_ARCH__
    const std::uint32_t hi = __umulhi(n, m);
#else
    const std::uint32_t hi = static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * m) >> 32);
#endif
    return (hi + n) >> s;
  }
  __host__ __device__ __forceinline__ std::uint32_t mod(std::uint32_t n) const { return n - div(n) * d; }
};

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/// 2^x by the special-function unit (relative error ~2^-22; subnormal results flush to zero).
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// log2(x) by the special-function unit (absolute error ~2^-22 for x in [0.5, 2]).
__device__ __forceinline__ float lg2_approx(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// PyTorch's softplus (beta 1, threshold 20).
__device__ __forceinline__ float softplus(float v) { return v <= 20.0f ? log1pf(expf(v)) : v; }

/// z * sigmoid(z) with MUFU ex2/rcp: relative error ~1e-7 for |z| < 10, at most ~1e-5 relative
/// (an absolute error below 1e-30) further out, where z log2(e)'s rounding shows in the
/// exponential; 0 below z = -88 (the true value is below 1e-36). About 4 instructions against
/// ~20 for expf and an IEEE division, which made the conv1d kernels issue-bound.
__device__ __forceinline__ float silu(float z) { return __fdividef(z, 1.0f + ex2_approx(-z * kLog2e)); }

}  // namespace mcv::kernels::cuda
