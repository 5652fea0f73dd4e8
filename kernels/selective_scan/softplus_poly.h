#pragma once
// The polynomials of the scans' softplus, one table for the CPU (cpu_vecmath.h) and CUDA
// (cuda/scan_device.cuh) paths: torch's softplus (threshold 20) is max(x, 0) + log1p(e), e =
// exp(-|x|) in (0, 1], and log1p(e) = e q(e) with q a polynomial on [0, 1]. No branch and no
// division: the scans' pre-passes stay one basic block of independent FMA chains.
// tests/kernels/test_softplus_poly.cpp checks every degree's bound below.

#if defined(__CUDACC__)
#define MCV_SOFTPLUS_HD __host__ __device__
#else
#define MCV_SOFTPLUS_HD
#endif

namespace mcv::kernels::scan {

/// Coefficient i of q of degree kDegree, highest power first (i = 0 .. kDegree). A constexpr
/// function rather than a namespace-scope array, whose elements device code could not read (it
/// is a host variable); the kernels take softplus_coefs below.
/// Degrees 6-8 by Chebyshev interpolation, 5 by a minimax fit of the relative error.
template <int kDegree>
MCV_SOFTPLUS_HD constexpr float softplus_q(int i) {
  static_assert(kDegree >= 5 && kDegree <= 8, "softplus_q: degree 5 to 8");
  if constexpr (kDegree == 8) {
    constexpr float q[] = {5.126102362e-03f, -2.907406539e-02f, 7.751608640e-02f,  -1.360224783e-01f, 1.907688081e-01f,
                           -2.483539879e-01f, 3.331812024e-01f, -4.999944568e-01f, 9.999999404e-01f};
    return q[i];
  } else if constexpr (kDegree == 7) {
    constexpr float q[] = {-8.371152915e-03f, 4.349390045e-02f, -1.068500280e-01f, 1.768747717e-01f,
                           -2.447477430e-01f, 3.327192962e-01f, -4.999717474e-01f, 9.999997616e-01f};
    return q[i];
  } else if constexpr (kDegree == 6) {
    constexpr float q[] = {1.387448423e-02f, -6.559030712e-02f, 1.482941359e-01f, -2.345452011e-01f,
                           3.309752643e-01f, -4.998590052e-01f, 9.999985695e-01f};
    return q[i];
  } else {
    constexpr float q[] = {-2.452784963e-02f, 1.028700024e-01f, -2.114915997e-01f,
                           3.257225454e-01f,  -4.994259179e-01f, 9.999929070e-01f};
    return q[i];
  }
}

/// q's coefficients of degree kDegree as one array (softplus_q in order): what a kernel's Horner
/// loop indexes; a local copy folds to immediates in device code.
template <int kDegree>
struct SoftplusCoefs {
  float v[kDegree + 1];
};
template <int kDegree>
MCV_SOFTPLUS_HD constexpr SoftplusCoefs<kDegree> softplus_coefs() {
  SoftplusCoefs<kDegree> c{};
  for (int i = 0; i <= kDegree; ++i) c.v[i] = softplus_q<kDegree>(i);
  return c;
}

/// Largest relative error of e q(e) against log1p(e) over e in (0, 1], evaluated in f32 (Horner
/// by FMAs), rounded up - measured (4 x 10^6 points; degree 5 at e = 1: 1.03e-5, degree 6
/// 1.50e-6, 7 3.15e-7, 8 2.13e-7) and held by test_softplus_poly.cpp. Degree 7 serves f32 CUDA
/// launches, 5 and 6 16-bit ones (47x and more under f16's rounding of delta itself, 2^-11), 8
/// the CPU scan.
template <int kDegree>
inline constexpr double kSoftplusMaxRelErr =
    kDegree == 8 ? 2.2e-7 : kDegree == 7 ? 3.2e-7 : kDegree == 6 ? 1.55e-6 : 1.05e-5;

}  // namespace mcv::kernels::scan
