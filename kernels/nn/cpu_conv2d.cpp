// CPU conv2d on NHWC: a direct loop for depthwise convs (vectorised over channels), the GEMM core
// for everything else (x itself for 1x1 stride-1 convs, im2col tiles otherwise).

#include <algorithm>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail {

namespace {

using cpu::element_ptr;

// Applies bias, activation and residual to v = the conv sums of output pixel `pixel`, channels
// [c0, c0 + len), and stores them.
struct Finisher {
  const ConvParams& p;
  const std::vector<float>& bias;
  void operator()(std::int64_t pixel, std::int64_t c0, float* v, std::int64_t len, float* scratch) const {
    for (std::int64_t i = 0; i < len; ++i) v[i] += bias[c0 + i];
    apply_activation(p.act, v, len);
    const std::int64_t off = pixel * p.cout + c0;
    if (p.residual) {
      const DType rt = p.residual_f32 ? DType::f32 : p.dtype;
      load_floats(element_ptr(p.residual, rt, off), rt, len, scratch);
      for (std::int64_t i = 0; i < len; ++i) v[i] += scratch[i];
    }
    store_floats(v, len, element_ptr(p.out, p.dtype, off), p.dtype);
  }
};

void depthwise(Context& ctx, const ConvParams& p, const Finisher& finish) {
  const std::int64_t C = p.cout, taps = static_cast<std::int64_t>(p.kh) * p.kw;
  // Weights as (tap, C) so the inner loop runs over contiguous channels.
  std::vector<float> w(static_cast<std::size_t>(taps * C)), wrow(static_cast<std::size_t>(taps));
  for (std::int64_t c = 0; c < C; ++c) {
    load_floats(element_ptr(p.weight, p.dtype, c * taps), p.dtype, taps, wrow.data());
    for (std::int64_t t = 0; t < taps; ++t) w[t * C + c] = wrow[t];
  }
  const std::int64_t grain = std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(p.ow * C * taps / 64, 1));
  ctx.threads().parallel_for(p.n * p.oh, grain, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> acc(static_cast<std::size_t>(C)), xin(static_cast<std::size_t>(C)), scratch(static_cast<std::size_t>(C));
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t n = r / p.oh, oy = r % p.oh;
      for (std::int64_t ox = 0; ox < p.ow; ++ox) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int i = 0; i < p.kh; ++i) {
          const std::int64_t iy = oy * p.sh - p.ph + static_cast<std::int64_t>(i) * p.dh;
          if (iy < 0 || iy >= p.h) continue;
          for (int j = 0; j < p.kw; ++j) {
            const std::int64_t ix = ox * p.sw - p.pw + static_cast<std::int64_t>(j) * p.dw;
            if (ix < 0 || ix >= p.w) continue;
            const void* src = element_ptr(p.x, p.dtype, ((n * p.h + iy) * p.w + ix) * C);
            const float* xv = p.dtype == DType::f32 ? static_cast<const float*>(src) : xin.data();
            if (p.dtype != DType::f32) load_floats(src, p.dtype, C, xin.data());
            const float* wt = w.data() + (static_cast<std::int64_t>(i) * p.kw + j) * C;
            for (std::int64_t c = 0; c < C; ++c) acc[c] += xv[c] * wt[c];
          }
        }
        finish((n * p.oh + oy) * p.ow + ox, 0, acc.data(), C, scratch.data());
      }
    }
  });
}

}  // namespace

void cpu_conv2d(Context& ctx, const ConvParams& p) {
  std::vector<float> bias(static_cast<std::size_t>(p.cout));
  load_vec(p.bias, p.cout, p.dtype, bias.data(), 0.0f);
  const Finisher finish{p, bias};
  if (p.depthwise()) {
    depthwise(ctx, p, finish);
    return;
  }
  const std::int64_t cin_g = p.cin / p.groups, cout_g = p.cout / p.groups;
  const std::int64_t kc = static_cast<std::int64_t>(p.kh) * p.kw * cin_g;  // GEMM K
  const std::int64_t pixels = p.n * p.oh * p.ow;                         // GEMM M
  std::vector<float> w_buf;
  const float* W = static_cast<const float*>(p.weight);
  if (p.dtype != DType::f32) {
    w_buf.resize(static_cast<std::size_t>(p.cout * kc));
    load_floats(p.weight, p.dtype, p.cout * kc, w_buf.data());
    W = w_buf.data();
  }
  auto tile_epilogue = [&](std::int64_t pixel0, std::int64_t col0) {
    return [&, pixel0, col0](const GemmTile& t) {
      std::vector<float> row(static_cast<std::size_t>(t.c1 - t.c0)), scratch(row.size());
      for (std::int64_t r = t.r0; r < t.r1; ++r) {
        std::copy(t.data + (r - t.r0) * t.ld, t.data + (r - t.r0) * t.ld + (t.c1 - t.c0), row.begin());
        finish(pixel0 + r, col0 + t.c0, row.data(), t.c1 - t.c0, scratch.data());
      }
    };
  };
  const bool pointwise = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  if (pointwise && p.groups == 1 && p.dtype == DType::f32) {
    cpu_gemm_tiles(ctx, pixels, p.cout, kc, static_cast<const float*>(p.x), p.cin, W, kc, tile_epilogue(0, 0));
    return;
  }
  // im2col over tiles of output pixels: each task gathers its rows (kh, kw, ci order, matching
  // OHWI) and runs the GEMM of each group on them (nested, so serially on this thread).
  // One packed weight per group, shared by every pixel tile.
  std::vector<PackedWeight> packed(static_cast<std::size_t>(p.groups));
  for (int g = 0; g < p.groups; ++g) packed[g] = pack_weight(ctx, W + g * cout_g * kc, cout_g, kc, kc);
  const std::int64_t threads = ctx.threads().size();
  const std::int64_t tile = std::clamp<std::int64_t>((pixels + 4 * threads - 1) / (4 * threads), 8,
                                                     std::max<std::int64_t>(8, (1 << 20) / std::max<std::int64_t>(kc, 1)));
  const std::int64_t tiles = (pixels + tile - 1) / tile;
  ctx.threads().parallel_for(tiles, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> cols(static_cast<std::size_t>(tile * kc));
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t q0 = t * tile, rows = std::min(tile, pixels - q0);
      for (int g = 0; g < p.groups; ++g) {
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t q = q0 + r, ox = q % p.ow, oy = q / p.ow % p.oh, n = q / (p.ow * p.oh);
          float* dst = cols.data() + r * kc;
          for (int i = 0; i < p.kh; ++i) {
            const std::int64_t iy = oy * p.sh - p.ph + static_cast<std::int64_t>(i) * p.dh;
            for (int j = 0; j < p.kw; ++j, dst += cin_g) {
              const std::int64_t ix = ox * p.sw - p.pw + static_cast<std::int64_t>(j) * p.dw;
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w)
                std::fill(dst, dst + cin_g, 0.0f);
              else
                load_floats(element_ptr(p.x, p.dtype, ((n * p.h + iy) * p.w + ix) * p.cin + g * cin_g), p.dtype, cin_g, dst);
            }
          }
        }
        cpu_gemm_tiles(ctx, rows, cout_g, kc, cols.data(), kc, W + g * cout_g * kc, kc, tile_epilogue(q0, g * cout_g),
                       &packed[g]);
      }
    }
  });
}

}  // namespace mcv::kernels::nn_detail
