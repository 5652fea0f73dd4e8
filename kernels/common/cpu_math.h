#pragma once
// Host math shared by the CPU paths of the ops: PyTorch's softplus and SiLU, a vectorisable exp
// for whole-row loops, and the attributes that compile one function per vector ISA. Private to
// the kernels library.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace mcv::kernels::cpu {

/// PyTorch's softplus (beta 1, threshold 20).
inline float softplus(float v) { return v <= 20.0f ? std::log1p(std::exp(v)) : v; }
inline float silu(float v) { return v / (1.0f + std::exp(-v)); }

/// exp(x) in plain float arithmetic that the compiler vectorises (libm's expf does not), for
/// loops over whole rows. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and the Cephes
/// degree-7 polynomial: within 2 ulp of expf over the clamped range [-87, 88]; NaN stays NaN.
/// 2^n is assembled from bits: the round-to-nearest trick (adding 1.5 * 2^23) leaves n in the
/// low mantissa bits, so there is no float -> int conversion (undefined for NaN).
inline __attribute__((always_inline)) float exp_vec(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = x * 1.44269504088896341f + kMagic;
  const float n = shifted - kMagic;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const std::uint32_t k = std::bit_cast<std::uint32_t>(shifted) - 0x4B400000u;  // n, two's complement
  return p * std::bit_cast<float>((k + 127u) << 23);
}
/// silu with exp_vec, for vectorised loops.
inline __attribute__((always_inline)) float silu_vec(float v) { return v / (1.0f + exp_vec(-v)); }

}  // namespace mcv::kernels::cpu

// Per-function ISA targets: the body is written once (always inlined) and compiled into one
// wrapper per ISA, chosen at run time from mcv::kernels::cpu_features(). The library itself
// builds for baseline x86-64, so nothing else in the binary uses these instructions. 64-bit only:
// the GEMM kernels use 64-bit intrinsics.
#if defined(__x86_64__)
#define MCV_CPU_X86 1
#define MCV_CPU_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MCV_CPU_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define MCV_CPU_X86 0
#define MCV_CPU_TARGET_AVX2
#define MCV_CPU_TARGET_AVX512
#endif
#define MCV_CPU_ALWAYS_INLINE inline __attribute__((always_inline))
