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
#include "selective_scan/softplus_poly.h"

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
  // W elements of an I/O row, converted (bf16 round to nearest even, NaN kept quiet, as
  // to_bf16; f16 through to_half / from_half: this target has no F16C).
  static Vec load_row(const float* p) { return load(p); }
  static Vec load_row(const BFloat16* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
  }
  static Vec load_row(const Half* p) {
    alignas(32) float f[W];
    for (int i = 0; i < W; ++i) f[i] = from_half(p[i]);
    return load(f);
  }
  void store_row(float* p) const { store(p); }
  void store_row(BFloat16* p) const {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    // |u| > 0x7f800000 as signed compares: both sides are below 2^31.
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i bits = _mm256_blendv_epi8(rounded, quiet, nan);
    // 32 -> 16 bits (values < 2^16: no saturation), then the two 64-bit halves in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }
  void store_row(Half* p) const {
    alignas(32) float f[W];
    store(f);
    for (int i = 0; i < W; ++i) p[i] = to_half(f[i]);
  }
  Vec reversed() const { return {_mm256_permutevar8x32_ps(v, _mm256_set_epi32(0, 1, 2, 3, 4, 5, 6, 7))}; }
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
  /// r[i] lane j <-> r[j] lane i: 32-bit, 64-bit, then 128-bit interleaving stages.
  [[gnu::always_inline]] static void transpose(Vec (&r)[W]) {
    __m256 t[W];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i].v, r[2 * i + 1].v);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i].v, r[2 * i + 1].v);
    }
    for (int i = 0; i < 2; ++i) {
      const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
      const __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
      r[4 * i].v = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
      r[4 * i + 1].v = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
      r[4 * i + 2].v = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
      r[4 * i + 3].v = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; ++j) {
      t[j] = _mm256_permute2f128_ps(r[j].v, r[j + 4].v, 0x20);
      t[j + 4] = _mm256_permute2f128_ps(r[j].v, r[j + 4].v, 0x31);
    }
    for (int j = 0; j < W; ++j) r[j].v = t[j];
  }
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
