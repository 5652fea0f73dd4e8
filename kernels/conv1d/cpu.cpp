// CPU depthwise conv1d. Inputs are converted tile by tile into an f32 buffer that already holds
// the zero padding, so the inner loops are branch-free multiply-adds over contiguous floats that
// the compiler vectorises (over t for channel-major, over d for token-major) in one wrapper per
// ISA, SiLU included (with exp_vec instead of libm's expf the whole op runs 2x faster).

#include <algorithm>
#include <vector>

#include "common/cpu_dtype.h"
#include "common/cpu_math.h"
#include "conv1d/conv1d_params.h"
#include "mcv/context.h"
#include "mcv/kernels/cpu_features.h"
#include "mcv/thread_pool.h"

namespace mcv::kernels::conv1d_detail {

namespace {

using cpu::from_f32;
using cpu::to_f32;

constexpr std::int64_t kSegment = 512;   // channel-major: tokens per buffered row segment
constexpr std::int64_t kTokTile = 16;    // token-major: tokens per tile
constexpr std::int64_t kChanTile = 256;  // token-major: channels per tile
constexpr int kMaxWidth = 4;

// acc[i] = act(bias + sum_k w[k] * buf[i + k]), i < n.
MCV_CPU_ALWAYS_INLINE void row_body(const float* buf, const float* w, int width, float bias, bool silu,
                                    float* acc, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) acc[i] = bias;
  for (int k = 0; k < width; ++k) {
    const float wk = w[k];
    const float* src = buf + k;
    for (std::int64_t i = 0; i < n; ++i) acc[i] += wk * src[i];
  }
  if (silu)
    for (std::int64_t i = 0; i < n; ++i) acc[i] = cpu::silu_vec(acc[i]);
}

// For each of `rows` tokens i: acc[i][d] = act(bias[d] + sum_k w[k][d] * buf[i + k][d]), d < nd;
// rows of buf and acc are `ld` floats apart, rows of w `wld` apart.
MCV_CPU_ALWAYS_INLINE void tile_body(const float* buf, std::int64_t ld, const float* w, std::int64_t wld,
                                     int width, const float* bias, bool silu, float* acc, std::int64_t rows,
                                     std::int64_t nd) {
  for (std::int64_t i = 0; i < rows; ++i) {
    float* a = acc + i * ld;
    for (std::int64_t d = 0; d < nd; ++d) a[d] = bias[d];
    for (int k = 0; k < width; ++k) {
      const float* src = buf + (i + k) * ld;
      const float* wk = w + k * wld;
      for (std::int64_t d = 0; d < nd; ++d) a[d] += wk[d] * src[d];
    }
    if (silu)
      for (std::int64_t d = 0; d < nd; ++d) a[d] = cpu::silu_vec(a[d]);
  }
}

void row_scalar(const float* b, const float* w, int W, float bias, bool silu, float* acc, std::int64_t n) {
  row_body(b, w, W, bias, silu, acc, n);
}
void tile_scalar(const float* b, std::int64_t ld, const float* w, std::int64_t wld, int W, const float* bias,
                 bool silu, float* acc, std::int64_t rows, std::int64_t nd) {
  tile_body(b, ld, w, wld, W, bias, silu, acc, rows, nd);
}
#if MCV_CPU_X86
MCV_CPU_TARGET_AVX2 void row_avx2(const float* b, const float* w, int W, float bias, bool silu,
                                  float* acc, std::int64_t n) {
  row_body(b, w, W, bias, silu, acc, n);
}
MCV_CPU_TARGET_AVX512 void row_avx512(const float* b, const float* w, int W, float bias, bool silu,
                                      float* acc, std::int64_t n) {
  row_body(b, w, W, bias, silu, acc, n);
}
MCV_CPU_TARGET_AVX2 void tile_avx2(const float* b, std::int64_t ld, const float* w, std::int64_t wld, int W,
                                   const float* bias, bool silu, float* acc, std::int64_t rows, std::int64_t nd) {
  tile_body(b, ld, w, wld, W, bias, silu, acc, rows, nd);
}
MCV_CPU_TARGET_AVX512 void tile_avx512(const float* b, std::int64_t ld, const float* w, std::int64_t wld,
                                       int W, const float* bias, bool silu, float* acc, std::int64_t rows,
                                       std::int64_t nd) {
  tile_body(b, ld, w, wld, W, bias, silu, acc, rows, nd);
}
#endif

using RowFn = void (*)(const float*, const float*, int, float, bool, float*, std::int64_t);
using TileFn = void (*)(const float*, std::int64_t, const float*, std::int64_t, int, const float*, bool, float*,
                        std::int64_t, std::int64_t);

RowFn pick_row() {
#if MCV_CPU_X86
  if (cpu_features().avx512f) return row_avx512;
  if (cpu_features().avx2) return row_avx2;
#endif
  return row_scalar;
}
TileFn pick_tile() {
#if MCV_CPU_X86
  if (cpu_features().avx512f) return tile_avx512;
  if (cpu_features().avx2) return tile_avx2;
#endif
  return tile_scalar;
}

// Weights as f32, taps already in the order the formula reads them (reversed for flip).
// Channel-major wants [d][k]; token-major [k][d].
template <typename T>
std::vector<float> weights_f32(const Conv1dParams& p, bool k_major) {
  std::vector<float> w(static_cast<std::size_t>(p.dim * p.width));
  for (std::int64_t d = 0; d < p.dim; ++d)
    for (int k = 0; k < p.width; ++k) {
      const int src_k = p.flip ? p.width - 1 - k : k;
      const float v = cpu::load_param<T>(p.w, p.w_f32, d * p.w_sd + src_k * p.w_sk);
      w[static_cast<std::size_t>(k_major ? k * p.dim + d : d * p.width + k)] = v;
    }
  return w;
}

template <typename T>
std::vector<float> bias_f32(const Conv1dParams& p) {
  std::vector<float> b(static_cast<std::size_t>(p.dim), 0.0f);
  if (p.bias)
    for (std::int64_t d = 0; d < p.dim; ++d) b[d] = cpu::load_param<T>(p.bias, p.bias_f32, d * p.bias_sd);
  return b;
}

template <typename T>
void run_channel_major(Context& ctx, const Conv1dParams& p) {
  const std::vector<float> w = weights_f32<T>(p, false), bias = bias_f32<T>(p);
  const RowFn row = pick_row();
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const std::int64_t rows = p.batch * p.dim;
  const std::int64_t grain = std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(p.len, 1));
  ctx.threads().parallel_for(rows, grain, [&](std::int64_t r0, std::int64_t r1) {
    float buf[kSegment + kMaxWidth], acc[kSegment];
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t b = r / p.dim, d = r % p.dim;
      const T* xr = x + b * p.x_sb + d * p.x_sd;
      T* orow = out + b * p.o_sb + d * p.o_sd;
      for (std::int64_t t0 = 0; t0 < p.len; t0 += kSegment) {
        const std::int64_t n = std::min(kSegment, p.len - t0);
        // buf[j] = x[t0 - left + j], zero outside [0, L).
        for (std::int64_t j = 0; j < n + p.width - 1; ++j) {
          const std::int64_t t = t0 - p.left + j;
          buf[j] = t >= 0 && t < p.len ? to_f32(xr[t]) : 0.0f;
        }
        row(buf, w.data() + d * p.width, p.width, bias[d], p.silu, acc, n);
        for (std::int64_t i = 0; i < n; ++i) orow[t0 + i] = from_f32<T>(acc[i]);
      }
    }
  });
}

template <typename T>
void run_token_major(Context& ctx, const Conv1dParams& p) {
  const std::vector<float> w = weights_f32<T>(p, true), bias = bias_f32<T>(p);
  const TileFn tile = pick_tile();
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const std::int64_t tt = (p.len + kTokTile - 1) / kTokTile, dt = (p.dim + kChanTile - 1) / kChanTile;
  ctx.threads().parallel_for(p.batch * tt * dt, 1, [&](std::int64_t u0, std::int64_t u1) {
    std::vector<float> buf(static_cast<std::size_t>((kTokTile + kMaxWidth) * kChanTile));
    std::vector<float> acc(static_cast<std::size_t>(kTokTile * kChanTile));
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t b = u / (tt * dt), t0 = (u / dt) % tt * kTokTile, d0 = u % dt * kChanTile;
      const std::int64_t rows = std::min(kTokTile, p.len - t0), nd = std::min(kChanTile, p.dim - d0);
      // buf row j = x[b, t0 - left + j, d0 .. d0 + nd), zero rows outside [0, L).
      for (std::int64_t j = 0; j < rows + p.width - 1; ++j) {
        const std::int64_t t = t0 - p.left + j;
        float* dst = buf.data() + j * kChanTile;
        if (t < 0 || t >= p.len) {
          std::fill(dst, dst + nd, 0.0f);
          continue;
        }
        const T* src = x + b * p.x_sb + t * p.x_st + d0;
        for (std::int64_t d = 0; d < nd; ++d) dst[d] = to_f32(src[d]);
      }
      tile(buf.data(), kChanTile, w.data() + d0, p.dim, p.width, bias.data() + d0, p.silu, acc.data(), rows, nd);
      for (std::int64_t i = 0; i < rows; ++i) {
        const float* a = acc.data() + i * kChanTile;
        T* dst = out + b * p.o_sb + (t0 + i) * p.o_st + d0;
        for (std::int64_t d = 0; d < nd; ++d) dst[d] = from_f32<T>(a[d]);
      }
    }
  });
}

template <typename T>
void write_final_state(const Conv1dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* state = static_cast<T*>(p.state);
  for (std::int64_t b = 0; b < p.batch; ++b)
    for (std::int64_t d = 0; d < p.dim; ++d)
      for (std::int64_t s = 0; s < p.state_len; ++s) {
        const std::int64_t t = p.len - p.state_len + s;
        state[b * p.s_sb + d * p.s_sd + s * p.s_ss] =
            t >= 0 ? x[b * p.x_sb + d * p.x_sd + t * p.x_st] : from_f32<T>(0.0f);
      }
}

}  // namespace

void conv1d_cpu(Context& ctx, const Conv1dParams& p) {
  cpu::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    if (p.token_major)
      run_token_major<T>(ctx, p);
    else
      run_channel_major<T>(ctx, p);
    if (p.state) write_final_state<T>(p);
  });
}

void conv1d_update_cpu(Context& ctx, const Conv1dUpdateParams& p) {
  cpu::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(p.x);
    T* state = static_cast<T*>(p.state);
    T* out = static_cast<T*>(p.out);
    const std::int64_t grain = std::max<std::int64_t>(1, 4096 / (p.state_len + 1));
    ctx.threads().parallel_for(p.batch * p.dim, grain, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const std::int64_t b = r / p.dim, d = r % p.dim;
        T* s = state + b * p.s_sb + d * p.s_sd;
        const T xv = x[b * p.x_sb + d * p.x_sd];
        // window[j], j in [0, S]: the state then x; the filter reads its last W entries.
        auto window = [&](std::int64_t j) { return j == p.state_len ? to_f32(xv) : to_f32(s[j * p.s_ss]); };
        float acc = p.bias ? cpu::load_param<T>(p.bias, p.bias_f32, d * p.bias_sd) : 0.0f;
        for (int k = 0; k < p.width; ++k)
          acc += cpu::load_param<T>(p.w, p.w_f32, d * p.w_sd + k * p.w_sk) * window(p.state_len + 1 - p.width + k);
        for (std::int64_t j = 0; j + 1 < p.state_len; ++j) s[j * p.s_ss] = s[(j + 1) * p.s_ss];
        s[(p.state_len - 1) * p.s_ss] = xv;
        out[b * p.o_sb + d * p.o_sd] = from_f32<T>(p.silu ? cpu::silu(acc) : acc);
      }
    });
  });
}

}  // namespace mcv::kernels::conv1d_detail
