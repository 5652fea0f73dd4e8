// AVX2 + FMA instantiation of the CPU selective scan (8 channels per vector). Compiled with a
// target pragma so the library still loads on any x86-64; only called when the CPU has AVX2.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "mcv/error.h"
#include "mcv/thread_pool.h"
#include "selective_scan/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace mcv::kernels::scan {
namespace {

struct Vec {
  static constexpr int W = 8;
  using Mask = __m256;
  __m256 v;
  static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec zero() { return {_mm256_setzero_ps()}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  __attribute__((target("avx2,fma"))) friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  __attribute__((target("avx2,fma"))) friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
  __attribute__((target("avx2,fma"))) friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
  __attribute__((target("avx2,fma"))) friend Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
  __attribute__((target("avx2,fma"))) friend Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static Vec min_nan(Vec c, Vec x) { return {_mm256_min_ps(c.v, x.v)}; }
  static Vec max_nan(Vec c, Vec x) { return {_mm256_max_ps(c.v, x.v)}; }
  static Vec round(Vec x) { return {_mm256_round_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static Vec pow2i(Vec k) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(k.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
  }
  /// x 2^k for integral k <= 127 (k below -126 taken as -126: pow2i's exponent field).
  static Vec scale_pow2i(Vec x, Vec k) { return x * pow2i(max_nan(set1(-126.0f), k)); }
  static Mask lt(Vec a, Vec b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
  static Mask gt(Vec a, Vec b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
  static Vec select(Mask m, Vec a, Vec b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
};

#include "selective_scan/cpu_vecmath.h"
#include "selective_scan/cpu_body.h"
#include "selective_scan/cpu_peak.h"

}  // namespace

void run_cpu_avx2(Context& ctx, const Problem& p) { run_any(ctx, p); }
double peak_fma_avx2(Context& ctx) { return peak_fma_any(ctx); }

}  // namespace mcv::kernels::scan

#pragma GCC pop_options

#else
namespace mcv::kernels::scan {
void run_cpu_avx2(Context& ctx, const Problem& p) { run_cpu_scalar(ctx, p); }
double peak_fma_avx2(Context& ctx) { return peak_fma_scalar(ctx); }
}  // namespace mcv::kernels::scan
#endif
