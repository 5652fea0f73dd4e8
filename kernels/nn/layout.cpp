// Layout helpers: window partition / reverse, token mean, bicubic resize (entry points and CPU).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;

namespace {

void route_window(Context& ctx, const nn_detail::WindowParams& p, const char* op) {
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    (void)op;
    nn_detail::cuda_window(ctx, p);
#else
    nn_detail::no_cuda(op);
#endif
  } else {
    nn_detail::cpu_window(ctx, p);
  }
}

nn_detail::WindowParams window_geometry(const Check& c, const Tensor& image, int window) {
  if (window < 1 || window > (1 << 16)) c.fail("window", "must be in [1, 65536] (got " + std::to_string(window) + ")");
  nn_detail::WindowParams p;
  p.dtype = image.dtype();
  p.batch = image.size(0);
  p.h = image.size(1);
  p.w = image.size(2);
  p.c = image.size(3);
  p.window = window;
  p.nh = (p.h + window - 1) / window;
  p.nw = (p.w + window - 1) / window;
  return p;
}

}  // namespace

void window_partition(Context& ctx, const Tensor& x, int window, const Tensor& out) {
  const Check c("window_partition", ctx);
  c.present("x", x);
  c.io_dtype("x", x);
  if (x.dim() != 4) c.fail("x", "expected (B, H, W, C) but got shape " + shape_str(x.shape()));
  c.contiguous("x", x);
  nn_detail::WindowParams p = window_geometry(c, x, window);
  c.present("out", out);
  c.dtype("out", out, x.dtype());
  c.shape("out", out, {p.batch * p.nh * p.nw, p.window * p.window, p.c});
  c.contiguous("out", out);
  c.no_overlap("out", out, "x", x);
  p.src = x.raw_data();
  p.dst = out.raw_data();
  route_window(ctx, p, "window_partition");
}

void window_reverse(Context& ctx, const Tensor& windows, int window, const Tensor& out) {
  const Check c("window_reverse", ctx);
  c.present("out", out);
  c.io_dtype("out", out);
  if (out.dim() != 4) c.fail("out", "expected (B, H, W, C) but got shape " + shape_str(out.shape()));
  c.contiguous("out", out);
  nn_detail::WindowParams p = window_geometry(c, out, window);
  c.present("windows", windows);
  c.dtype("windows", windows, out.dtype());
  c.shape("windows", windows, {p.batch * p.nh * p.nw, p.window * p.window, p.c});
  c.contiguous("windows", windows);
  c.no_overlap("out", out, "windows", windows);
  p.src = windows.raw_data();
  p.dst = out.raw_data();
  p.reverse = true;
  route_window(ctx, p, "window_reverse");
}

void mean_tokens(Context& ctx, const Tensor& x, const Tensor& out) {
  const Check c("mean_tokens", ctx);
  c.present("x", x);
  c.io_dtype("x", x);
  if (x.dim() != 3) c.fail("x", "expected (B, L, C) but got shape " + shape_str(x.shape()));
  if (x.size(2) > 1 && x.stride(2) != 1)
    c.fail("x", "the last dimension must have stride 1 (got strides " + shape_str(x.strides()) + ")");
  c.present("out", out);
  c.dtype("out", out, x.dtype());
  c.shape("out", out, {x.size(0), x.size(2)});
  const nn_detail::Rows o = c.rows("out", out);
  c.no_overlap("out", out, "x", x);
  nn_detail::MeanTokensParams p;
  p.dtype = x.dtype();
  p.batch = x.size(0);
  p.len = x.size(1);
  p.c = x.size(2);
  p.x = x.raw_data();
  p.sb = x.stride(0);
  p.sl = x.stride(1);
  p.out = o.data;
  p.ldo = o.ld;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    if (p.batch > 65535) c.fail("x", "batch above 65535 is not supported on CUDA");
    nn_detail::cuda_mean_tokens(ctx, p);
#else
    nn_detail::no_cuda("mean_tokens");
#endif
  } else {
    nn_detail::cpu_mean_tokens(ctx, p);
  }
}

namespace {

// Keys' cubic convolution kernel with A = -0.75 (PyTorch's choice), for |t| <= 1 and 1 < |t| < 2.
constexpr float kCubicA = -0.75f;
float cubic_near(float t) { return ((kCubicA + 2.0f) * t - (kCubicA + 3.0f)) * t * t + 1.0f; }
float cubic_far(float t) { return ((kCubicA * t - 5.0f * kCubicA) * t + 8.0f * kCubicA) * t - 4.0f * kCubicA; }

// For every output index along one axis: the 4 clamped source indices and their weights.
struct AxisTaps {
  std::vector<std::int64_t> index;  // 4 per output
  std::vector<float> weight;        // 4 per output
};

AxisTaps axis_taps(std::int64_t in, std::int64_t out, bool align_corners, double scale_factor) {
  float scale;
  if (align_corners)
    scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  else
    scale = scale_factor > 0 ? static_cast<float>(1.0 / scale_factor) : static_cast<float>(in) / static_cast<float>(out);
  AxisTaps a;
  a.index.resize(static_cast<std::size_t>(4 * out));
  a.weight.resize(static_cast<std::size_t>(4 * out));
  for (std::int64_t o = 0; o < out; ++o) {
    // Cubic sampling keeps negative source positions (no clamp to 0), unlike linear modes.
    const float real = align_corners ? scale * static_cast<float>(o) : scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    const float fl = std::floor(real);
    const float t = real - fl;
    const std::int64_t i0 = static_cast<std::int64_t>(fl);
    const float w[4] = {cubic_far(t + 1.0f), cubic_near(t), cubic_near(1.0f - t), cubic_far(2.0f - t)};
    for (int k = 0; k < 4; ++k) {
      a.index[4 * o + k] = std::clamp<std::int64_t>(i0 - 1 + k, 0, in - 1);
      a.weight[4 * o + k] = w[k];
    }
  }
  return a;
}

}  // namespace

void interpolate_bicubic(Context& ctx, const BicubicArgs& a) {
  const Check c("interpolate_bicubic", ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  if (a.x.dim() < 2) c.fail("x", "expected (..., H, W) but got shape " + shape_str(a.x.shape()));
  c.present("out", a.out);
  c.dtype("out", a.out, a.x.dtype());
  if (a.out.dim() != a.x.dim() || !std::equal(a.x.shape().begin(), a.x.shape().end() - 2, a.out.shape().begin()))
    c.fail("out", "expected shape (..., OH, OW) with the leading dimensions of x " + shape_str(a.x.shape()) +
                      " but got " + shape_str(a.out.shape()));
  c.contiguous("out", a.out);
  c.no_overlap("out", a.out, "x", a.x);
  if (!(a.scale_factor_h >= 0) || !(a.scale_factor_w >= 0) || !std::isfinite(a.scale_factor_h) ||
      !std::isfinite(a.scale_factor_w))
    c.fail("scale_factor", "must be finite and >= 0 (0: derive from the sizes)");
  const std::int64_t ih = a.x.size(-2), iw = a.x.size(-1), oh = a.out.size(-2), ow = a.out.size(-1);
  const std::int64_t planes = a.x.numel() / (ih * iw);

  // Load-time op: run on host f32 copies, move the result back.
  const Tensor src = (a.x.device().is_cpu() && a.x.dtype() == DType::f32 && a.x.is_contiguous())
                         ? a.x
                         : a.x.to(Device::cpu()).to(DType::f32);
  Tensor dst = (a.out.device().is_cpu() && a.out.dtype() == DType::f32) ? a.out : Tensor::empty(a.out.shape(), DType::f32);
  const AxisTaps ty = axis_taps(ih, oh, a.align_corners, a.scale_factor_h);
  const AxisTaps tx = axis_taps(iw, ow, a.align_corners, a.scale_factor_w);
  const float* in = src.data<float>();
  float* outp = dst.data<float>();
  ctx.threads().parallel_for(planes * oh, std::max<std::int64_t>(1, 4096 / ow), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t plane = r / oh, y = r % oh;
      const float* base = in + plane * ih * iw;
      for (std::int64_t x = 0; x < ow; ++x) {
        float acc = 0.0f;
        for (int ky = 0; ky < 4; ++ky) {
          const float* row = base + ty.index[4 * y + ky] * iw;
          float h = 0.0f;
          for (int kx = 0; kx < 4; ++kx) h += tx.weight[4 * x + kx] * row[tx.index[4 * x + kx]];
          acc += ty.weight[4 * y + ky] * h;
        }
        outp[(plane * oh + y) * ow + x] = acc;
      }
    }
  });
  if (dst.raw_data() != a.out.raw_data()) {
    Tensor target = a.out;
    target.copy_from(dst);
  }
}

namespace nn_detail {

void cpu_window(Context& ctx, const WindowParams& p) {
  const std::size_t row_bytes = static_cast<std::size_t>(p.c) * dtype_size(p.dtype);
  const std::int64_t ws = p.window;
  // One task row = one window row (ws tokens of C channels) on both sides of the mapping.
  const std::int64_t rows = p.batch * p.nh * p.nw * ws;
  ctx.threads().parallel_for(rows, std::max<std::int64_t>(1, 65536 / static_cast<std::int64_t>(row_bytes * ws + 1)),
                             [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t wr = r % ws, win = r / ws;
      const std::int64_t j = win % p.nw, i = win / p.nw % p.nh, b = win / (p.nw * p.nh);
      const std::int64_t y = i * ws + wr;
      for (std::int64_t s = 0; s < ws; ++s) {
        const std::int64_t x = j * ws + s;
        char* wptr = static_cast<char*>(p.reverse ? const_cast<void*>(p.src) : p.dst) +
                     static_cast<std::size_t>(win * ws * ws + wr * ws + s) * row_bytes;
        const bool inside = y < p.h && x < p.w;
        if (p.reverse) {
          if (inside)
            std::memcpy(static_cast<char*>(p.dst) + static_cast<std::size_t>((b * p.h + y) * p.w + x) * row_bytes, wptr,
                        row_bytes);
        } else if (inside) {
          std::memcpy(wptr, static_cast<const char*>(p.src) + static_cast<std::size_t>((b * p.h + y) * p.w + x) * row_bytes,
                      row_bytes);
        } else {
          std::memset(wptr, 0, row_bytes);  // zero bits are 0.0 in every float dtype
        }
      }
    }
  });
}

void cpu_mean_tokens(Context& ctx, const MeanTokensParams& p) {
  const std::int64_t es = static_cast<std::int64_t>(dtype_size(p.dtype));
  ctx.threads().parallel_for(p.batch, 1, [&](std::int64_t b0, std::int64_t b1) {
    std::vector<float> acc(static_cast<std::size_t>(p.c)), row(static_cast<std::size_t>(p.c));
    for (std::int64_t b = b0; b < b1; ++b) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (std::int64_t l = 0; l < p.len; ++l) {
        load_floats(static_cast<const char*>(p.x) + (b * p.sb + l * p.sl) * es, p.dtype, p.c, row.data());
        for (std::int64_t i = 0; i < p.c; ++i) acc[i] += row[i];
      }
      for (std::int64_t i = 0; i < p.c; ++i) acc[i] /= static_cast<float>(p.len);
      store_floats(acc.data(), p.c, static_cast<char*>(p.out) + b * p.ldo * es, p.dtype);
    }
  });
}

}  // namespace nn_detail
}  // namespace mcv::kernels
