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
