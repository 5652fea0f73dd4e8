// CPU SSD scan: the recurrence itself, one (batch, head, head-dim block) per task. The state of a
// task is kept transposed, [n][p], so the per-step update
//   s[n][p] = dA * s[n][p] + B[n] * (dt x)[p];   y[p] += C[n] * s[n][p]
// is a multiply-add over contiguous p for each n: it vectorises without reassociating the
// y reduction (each y[p] still sums over n in order) and touches the state once per step.
// Head-dim rows are independent, so splitting P across tasks keeps both cores busy at batch 1.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/cpu_dtype.h"
#include "common/cpu_math.h"
#include "mcv/context.h"
#include "mcv/kernels/cpu_features.h"
#include "mcv/thread_pool.h"
#include "ssd/ssd_params.h"

namespace mcv::kernels::ssd_detail {

namespace {

constexpr std::int64_t kMaxRows = 64;  // head-dim rows per task

// Head-dim rows go through GCC vectors of the ISA's width (16 bytes baseline, 32 AVX2, 64
// AVX-512; a vector wider than the ISA's is split badly through the stack), kVecs vectors per
// block so kVecs independent y accumulation chains hide the FMA latency. y and dt*x stay in
// registers for the whole pass over n: a state element costs one load and one store. (Plain
// loops were vectorised with y in memory, or across n, and ran 2-5x slower.)
// (The vector types must be named at namespace scope: GCC drops vector_size on a dependent alias.)
typedef float Vec16B __attribute__((vector_size(16)));
typedef float Vec32B __attribute__((vector_size(32)));
typedef float Vec64B __attribute__((vector_size(64)));
template <int kBytes>
struct VecOf;
template <>
struct VecOf<16> {
  using type = Vec16B;
};
template <>
struct VecOf<32> {
  using type = Vec32B;
};
template <>
struct VecOf<64> {
  using type = Vec64B;
};

template <int kBytes, int kVecs>
MCV_CPU_ALWAYS_INLINE void step_block(float* s, std::int64_t n_state, std::int64_t rows, float dA, const float* b,
                                      const float* c, const float* xdt, float* y) {
  using V = typename VecOf<kBytes>::type;
  static_assert(sizeof(V) == kBytes);
  V yv[kVecs] = {}, xv[kVecs];
  for (int k = 0; k < kVecs; ++k) std::memcpy(&xv[k], xdt + k * (kBytes / 4), kBytes);
  for (std::int64_t n = 0; n < n_state; ++n) {
    float* sn = s + n * rows;
    const float bn = b[n], cn = c[n];
    for (int k = 0; k < kVecs; ++k) {
      V v;
      std::memcpy(&v, sn + k * (kBytes / 4), kBytes);
      v = dA * v + bn * xv[k];
      std::memcpy(sn + k * (kBytes / 4), &v, kBytes);
      yv[k] += cn * v;
    }
  }
  for (int k = 0; k < kVecs; ++k) std::memcpy(y + k * (kBytes / 4), &yv[k], kBytes);
}

template <int kBytes>
MCV_CPU_ALWAYS_INLINE void step_body(float* s, std::int64_t n_state, std::int64_t rows, float dA, const float* b,
                                     const float* c, const float* xdt, float* y) {
  constexpr std::int64_t kLanes = kBytes / 4;
  std::int64_t i0 = 0;
  for (; i0 + 4 * kLanes <= rows; i0 += 4 * kLanes) step_block<kBytes, 4>(s + i0, n_state, rows, dA, b, c, xdt + i0, y + i0);
  for (; i0 + kLanes <= rows; i0 += kLanes) step_block<kBytes, 1>(s + i0, n_state, rows, dA, b, c, xdt + i0, y + i0);
  if (i0 == rows) return;
  for (std::int64_t i = i0; i < rows; ++i) y[i] = 0.0f;
  for (std::int64_t n = 0; n < n_state; ++n) {
    float* sn = s + n * rows;
    const float bn = b[n], cn = c[n];
    for (std::int64_t i = i0; i < rows; ++i) {
      const float v = dA * sn[i] + bn * xdt[i];
      sn[i] = v;
      y[i] += cn * v;
    }
  }
}

using StepFn = void (*)(float*, std::int64_t, std::int64_t, float, const float*, const float*, const float*,
                        float*);

void step_scalar(float* s, std::int64_t N, std::int64_t R, float dA, const float* b, const float* c,
                 const float* xdt, float* y) {
  step_body<16>(s, N, R, dA, b, c, xdt, y);
}
#if MCV_CPU_X86
MCV_CPU_TARGET_AVX2 void step_avx2(float* s, std::int64_t N, std::int64_t R, float dA, const float* b,
                                   const float* c, const float* xdt, float* y) {
  step_body<32>(s, N, R, dA, b, c, xdt, y);
}
MCV_CPU_TARGET_AVX512 void step_avx512(float* s, std::int64_t N, std::int64_t R, float dA, const float* b,
                                       const float* c, const float* xdt, float* y) {
  step_body<64>(s, N, R, dA, b, c, xdt, y);
}
#endif

StepFn pick_step() {
#if MCV_CPU_X86
  if (cpu_features().avx512f) return step_avx512;
  if (cpu_features().avx2) return step_avx2;
#endif
  return step_scalar;
}

template <typename T>
void run(Context& ctx, const SsdParams& p) {
  const StepFn step = pick_step();
  const T* x = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  const T* B = static_cast<const T*>(p.B);
  const T* C = static_cast<const T*>(p.C);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  const std::int64_t P = p.headdim, N = p.dstate;
  const std::int64_t row_block = std::min(P, kMaxRows);
  const std::int64_t blocks_per_head = (P + row_block - 1) / row_block;
  const std::int64_t heads_per_group = p.heads / p.ngroups;
  ctx.threads().parallel_for(p.batch * p.heads * blocks_per_head, 1, [&](std::int64_t u0, std::int64_t u1) {
    std::vector<float> s(static_cast<std::size_t>(N * row_block)), bv(N), cv(N), xv(row_block), xdt(row_block),
        y(row_block);
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t b = u / (p.heads * blocks_per_head), h = u / blocks_per_head % p.heads;
      const std::int64_t p0 = u % blocks_per_head * row_block, rows = std::min(row_block, P - p0);
      const std::int64_t g = h / heads_per_group;
      const std::int64_t state_base = ((b * p.heads + h) * P + p0) * N;  // (batch, H, P, N) contiguous
      for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t n = 0; n < N; ++n)
          s[n * rows + i] = p.initial_states ? p.initial_states[state_base + i * N + n] : 0.0f;
      const float a = p.A[h * p.A_h];
      const float bias = p.dt_bias ? p.dt_bias[h * p.db_h] : 0.0f;
      for (std::int64_t t = 0; t < p.len; ++t) {
        float dt = cpu::to_f32(dt_in[b * p.dt_b + t * p.dt_t + h * p.dt_h]) + bias;
        if (p.softplus) dt = cpu::softplus(dt);
        if (p.clamp) dt = std::min(std::max(dt, p.dt_min), p.dt_max);
        const float dA = std::exp(dt * a);
        const T* bt = B + b * p.B_b + t * p.B_t + g * p.B_g;
        const T* ct = C + b * p.C_b + t * p.C_t + g * p.C_g;
        for (std::int64_t n = 0; n < N; ++n) {
          bv[n] = cpu::to_f32(bt[n]);
          cv[n] = cpu::to_f32(ct[n]);
        }
        const T* xt = x + b * p.x_b + t * p.x_t + h * p.x_h + p0;
        for (std::int64_t i = 0; i < rows; ++i) {
          xv[i] = cpu::to_f32(xt[i]);
          xdt[i] = dt * xv[i];
        }
        step(s.data(), N, rows, dA, bv.data(), cv.data(), xdt.data(), y.data());
        if (p.D)
          for (std::int64_t i = 0; i < rows; ++i) y[i] += p.D[h * p.D_h + (p0 + i) * p.D_p] * xv[i];
        if (p.z) {
          const T* zt = z + b * p.z_b + t * p.z_t + h * p.z_h + p0;
          for (std::int64_t i = 0; i < rows; ++i) y[i] *= cpu::silu(cpu::to_f32(zt[i]));
        }
        T* ot = out + b * p.o_b + t * p.o_t + h * p.o_h + p0;
        for (std::int64_t i = 0; i < rows; ++i) ot[i] = cpu::from_f32<T>(y[i]);
      }
      if (p.final_states)
        for (std::int64_t i = 0; i < rows; ++i)
          for (std::int64_t n = 0; n < N; ++n) p.final_states[state_base + i * N + n] = s[n * rows + i];
    }
  });
}

}  // namespace

void ssd_cpu(Context& ctx, const SsdParams& p) {
  cpu::dispatch_io(p.io, [&](auto tag) { run<decltype(tag)>(ctx, p); });
}

}  // namespace mcv::kernels::ssd_detail
