// CPU selective scan: ISA dispatch and the portable (scalar) instantiation. The vector paths are
// cpu_avx2.cpp / cpu_avx512.cpp; all three share cpu_body.h.
//
// The Vec interface cpu_body.h needs: W, set1, zero, load, store (W floats), + - *, fma(a, b, c)
// = a*b + c, and the functions vexp, vexp2_decay (2^x, x <= 0) and vexp2_decays (kN of them at
// once), vsoftplus (torch's: x > 20 -> x, else log1p(exp(x))) and vsoftplus_n (kN in place), and
// vsilu (z / (1 + exp(-z))).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "mcv/error.h"
#include "mcv/kernels/cpu_features.h"
#include "mcv/thread_pool.h"
#include "selective_scan/cpu.h"

namespace mcv::kernels::scan {

CpuIsa default_cpu_isa() {
  const auto& f = cpu_features();
  return f.avx512f ? CpuIsa::avx512 : f.avx2 ? CpuIsa::avx2 : CpuIsa::scalar;
}

const char* cpu_isa_label(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::scalar: return "scalar";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::avx512: return "avx512";
  }
  return "?";
}

CpuIsa runnable_isa(CpuIsa isa) {
  const auto& f = cpu_features();
  if (isa == CpuIsa::avx512 && f.avx512f) return CpuIsa::avx512;
  if (isa != CpuIsa::scalar && f.avx2) return CpuIsa::avx2;
  return CpuIsa::scalar;
}

void run_cpu(Context& ctx, const Problem& p, CpuIsa isa) {
  switch (runnable_isa(isa)) {
    case CpuIsa::avx512: return run_cpu_avx512(ctx, p);
    case CpuIsa::avx2: return run_cpu_avx2(ctx, p);
    case CpuIsa::scalar: return run_cpu_scalar(ctx, p);
  }
}

namespace {

// Portable path: 8 lanes in plain arrays (the compiler may use SSE), libm's exp/log1p.
struct Vec {
  static constexpr int W = 8;
  float v[W];
  static Vec set1(float x) {
    Vec r;
    std::fill(r.v, r.v + W, x);
    return r;
  }
  static Vec zero() { return set1(0.0f); }
  static Vec load(const float* p) {
    Vec r;
    std::copy(p, p + W, r.v);
    return r;
  }
  void store(float* p) const { std::copy(v, v + W, p); }
  static Vec load_row(const float* p) { return load(p); }
  static Vec load_row(const BFloat16* p) {
    Vec r;
    for (int i = 0; i < W; ++i) r.v[i] = from_bf16(p[i]);
    return r;
  }
  static Vec load_row(const Half* p) {
    Vec r;
    for (int i = 0; i < W; ++i) r.v[i] = from_half(p[i]);
    return r;
  }
  void store_row(float* p) const { store(p); }
  void store_row(BFloat16* p) const {
    for (int i = 0; i < W; ++i) p[i] = to_bf16(v[i]);
  }
  void store_row(Half* p) const {
    for (int i = 0; i < W; ++i) p[i] = to_half(v[i]);
  }
  Vec reversed() const {
    Vec r;
    std::reverse_copy(v, v + W, r.v);
    return r;
  }
  template <typename F>
  static Vec map2(const Vec& a, const Vec& b, F f) {
    Vec r;
    for (int i = 0; i < W; ++i) r.v[i] = f(a.v[i], b.v[i]);
    return r;
  }
  friend Vec operator+(const Vec& a, const Vec& b) { return map2(a, b, [](float x, float y) { return x + y; }); }
  friend Vec operator-(const Vec& a, const Vec& b) { return map2(a, b, [](float x, float y) { return x - y; }); }
  friend Vec operator*(const Vec& a, const Vec& b) { return map2(a, b, [](float x, float y) { return x * y; }); }
  friend Vec fma(const Vec& a, const Vec& b, const Vec& c) {
    Vec r;
    for (int i = 0; i < W; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
    return r;
  }
  static void transpose(Vec (&r)[W]) {
    for (int i = 0; i < W; ++i)
      for (int j = i + 1; j < W; ++j) std::swap(r[i].v[j], r[j].v[i]);
  }
};

Vec vexp(const Vec& x) {
  Vec r;
  for (int i = 0; i < Vec::W; ++i) r.v[i] = std::exp(x.v[i]);
  return r;
}
// 2^x (the decays with A log2 e folded in, cpu_vecmath.h's vexp2_decay).
Vec vexp2_decay(const Vec& x) {
  Vec r;
  for (int i = 0; i < Vec::W; ++i) r.v[i] = std::exp2(x.v[i]);
  return r;
}
template <int kN>
void vexp2_decays(const Vec (&x)[kN], Vec (&out)[kN]) {
  for (int i = 0; i < kN; ++i) out[i] = vexp2_decay(x[i]);
}
Vec vsoftplus(const Vec& x) {
  Vec r;
  for (int i = 0; i < Vec::W; ++i) r.v[i] = x.v[i] > 20.0f ? x.v[i] : std::log1p(std::exp(x.v[i]));
  return r;
}
template <int kN>
void vsoftplus_n(Vec (&x)[kN]) {
  for (int i = 0; i < kN; ++i) x[i] = vsoftplus(x[i]);
}
Vec vsilu(const Vec& x) {
  Vec r;
  for (int i = 0; i < Vec::W; ++i) r.v[i] = x.v[i] / (1.0f + std::exp(-x.v[i]));
  return r;
}

#include "selective_scan/cpu_body.h"
#include "selective_scan/cpu_peak.h"

}  // namespace

void run_cpu_scalar(Context& ctx, const Problem& p) { run_any(ctx, p); }
double peak_fma_scalar(Context& ctx) { return peak_fma_any(ctx); }

double peak_fma_rate(Context& ctx, CpuIsa isa) {
  switch (runnable_isa(isa)) {
    case CpuIsa::avx512: return peak_fma_avx512(ctx);
    case CpuIsa::avx2: return peak_fma_avx2(ctx);
    case CpuIsa::scalar: break;
  }
  return peak_fma_scalar(ctx);
}

}  // namespace mcv::kernels::scan
