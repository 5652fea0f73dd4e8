// AVX-512F instantiation of the CPU selective scan (16 channels per vector). Compiled with a
// target pragma so the library still loads on any x86-64; only called when the CPU has AVX-512F.

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
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*().
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f")

namespace mcv::kernels::scan {
namespace {

struct Vec {
  static constexpr int W = 16;
  using Mask = __mmask16;
  __m512 v;
  static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  // W elements of an I/O row, converted (bf16 round to nearest even, NaN kept quiet, as
  // to_bf16; f16 by the hardware conversion, as to_half / from_half).
  static Vec load_row(const float* p) { return load(p); }
  static Vec load_row(const BFloat16* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
  }
  static Vec load_row(const Half* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))}; }
  void store_row(float* p) const { store(p); }
  void store_row(BFloat16* p) const {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i bits = _mm512_mask_blend_epi32(nan, rounded, quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bits));
  }
  void store_row(Half* p) const {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  Vec reversed() const {
    return {_mm512_permutexvar_ps(_mm512_set_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), v)};
  }
  __attribute__((target("avx512f"))) friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  __attribute__((target("avx512f"))) friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  __attribute__((target("avx512f"))) friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
  __attribute__((target("avx512f"))) friend Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
  __attribute__((target("avx512f"))) friend Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static Vec min_nan(Vec c, Vec x) { return {_mm512_min_ps(c.v, x.v)}; }
  static Vec max_nan(Vec c, Vec x) { return {_mm512_max_ps(c.v, x.v)}; }
  static Vec round(Vec x) {
    return {_mm512_roundscale_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
  }
  static Vec pow2i(Vec k) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(k.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
  }
  /// x 2^k for integral k, any (one instruction; underflow and overflow as IEEE).
  static Vec scale_pow2i(Vec x, Vec k) { return {_mm512_scalef_ps(x.v, k.v)}; }
  static Mask lt(Vec a, Vec b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
  static Mask gt(Vec a, Vec b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
  static Vec select(Mask m, Vec a, Vec b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
  /// r[i] lane j <-> r[j] lane i: 32-bit, 64-bit, then two 128-bit interleaving stages.
  [[gnu::always_inline]] static void transpose(Vec (&r)[W]) {
    __m512 t[W];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i].v, r[2 * i + 1].v);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i].v, r[2 * i + 1].v);
    }
    for (int i = 0; i < 4; ++i) {
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
      r[4 * i].v = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[4 * i + 1].v = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[4 * i + 2].v = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[4 * i + 3].v = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) {
        t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j].v, r[8 * i + j + 4].v, 0x88);
        t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j].v, r[8 * i + j + 4].v, 0xdd);
      }
    for (int j = 0; j < 8; ++j) {
      r[j].v = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
      r[j + 8].v = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
  }
};

#include "selective_scan/cpu_vecmath.h"
#include "selective_scan/cpu_body.h"
#include "selective_scan/cpu_peak.h"

}  // namespace

void run_cpu_avx512(Context& ctx, const Problem& p) { run_any(ctx, p); }
double peak_fma_avx512(Context& ctx) { return peak_fma_any(ctx); }

}  // namespace mcv::kernels::scan

#pragma GCC pop_options

#else
namespace mcv::kernels::scan {
void run_cpu_avx512(Context& ctx, const Problem& p) { run_cpu_scalar(ctx, p); }
double peak_fma_avx512(Context& ctx) { return peak_fma_scalar(ctx); }
}  // namespace mcv::kernels::scan
#endif
