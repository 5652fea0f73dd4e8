// CPU layer / RMS / batch norm: a row at a time in f32 on ctx.threads().

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail {

namespace {

using cpu::element_ptr;

// Rows per task: about 16K elements, so small tensors stay on one thread.
std::int64_t row_grain(std::int64_t cols) { return std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(cols, 1)); }

}  // namespace

void cpu_norm(Context& ctx, const NormParams& p) {
  const std::int64_t C = p.cols;
  std::vector<float> weight(static_cast<std::size_t>(C)), bias(static_cast<std::size_t>(C));
  load_vec(p.weight, C, p.dtype, weight.data(), 1.0f);
  load_vec(p.bias, C, p.dtype, bias.data(), 0.0f);
  ctx.threads().parallel_for(p.rows, row_grain(C), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> s(static_cast<std::size_t>(C)), tmp(p.residual ? static_cast<std::size_t>(C) : 0);
    for (std::int64_t r = r0; r < r1; ++r) {
      load_floats(element_ptr(p.x, p.dtype, r * p.ldx), p.dtype, C, s.data());
      if (p.residual) {
        load_floats(element_ptr(p.residual, p.residual_dtype, r * p.ldr), p.residual_dtype, C, tmp.data());
        for (std::int64_t i = 0; i < C; ++i) s[i] += tmp[i];
      }
      float mean = 0.0f, rstd;
      if (p.rms) {
        float ss = 0.0f;
        for (std::int64_t i = 0; i < C; ++i) ss += s[i] * s[i];
        rstd = 1.0f / std::sqrt(ss / static_cast<float>(C) + p.eps);
      } else {
        float sum = 0.0f;
        for (std::int64_t i = 0; i < C; ++i) sum += s[i];
        mean = sum / static_cast<float>(C);
        float var = 0.0f;
        for (std::int64_t i = 0; i < C; ++i) var += (s[i] - mean) * (s[i] - mean);
        rstd = 1.0f / std::sqrt(var / static_cast<float>(C) + p.eps);
      }
      if (p.residual_out) store_floats(s.data(), C, element_ptr(p.residual_out, p.residual_out_dtype, r * p.ldro), p.residual_out_dtype);
      for (std::int64_t i = 0; i < C; ++i) s[i] = (s[i] - mean) * rstd * weight[i] + bias[i];
      store_floats(s.data(), C, element_ptr(p.out, p.out_dtype, r * p.ldo), p.out_dtype);
    }
  });
}

void cpu_layer_norm_2d(Context& ctx, const LayerNorm2dParams& p) {
  std::vector<float> weight(static_cast<std::size_t>(p.c)), bias(static_cast<std::size_t>(p.c));
  load_vec(p.weight, p.c, p.dtype, weight.data(), 1.0f);
  load_vec(p.bias, p.c, p.dtype, bias.data(), 0.0f);
  // Tasks are (image, block of pixels); inside, loops run over channels with the pixel block as
  // the contiguous inner dimension.
  constexpr std::int64_t kBlock = 256;
  const std::int64_t blocks = (p.hw + kBlock - 1) / kBlock;
  ctx.threads().parallel_for(p.n * blocks, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> v(static_cast<std::size_t>(kBlock)), mean(kBlock), m2(kBlock);
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t n = t / blocks, q0 = (t % blocks) * kBlock, len = std::min(kBlock, p.hw - q0);
      const std::int64_t base = n * p.c * p.hw + q0;
      std::fill(mean.begin(), mean.end(), 0.0f);
      std::fill(m2.begin(), m2.end(), 0.0f);
      for (std::int64_t ch = 0; ch < p.c; ++ch) {
        load_floats(element_ptr(p.x, p.dtype, base + ch * p.hw), p.dtype, len, v.data());
        for (std::int64_t i = 0; i < len; ++i) mean[i] += v[i];
      }
      for (std::int64_t i = 0; i < len; ++i) mean[i] /= static_cast<float>(p.c);
      for (std::int64_t ch = 0; ch < p.c; ++ch) {
        load_floats(element_ptr(p.x, p.dtype, base + ch * p.hw), p.dtype, len, v.data());
        for (std::int64_t i = 0; i < len; ++i) m2[i] += (v[i] - mean[i]) * (v[i] - mean[i]);
      }
      for (std::int64_t i = 0; i < len; ++i) m2[i] = 1.0f / std::sqrt(m2[i] / static_cast<float>(p.c) + p.eps);
      for (std::int64_t ch = 0; ch < p.c; ++ch) {
        load_floats(element_ptr(p.x, p.dtype, base + ch * p.hw), p.dtype, len, v.data());
        for (std::int64_t i = 0; i < len; ++i) v[i] = (v[i] - mean[i]) * m2[i] * weight[ch] + bias[ch];
        store_floats(v.data(), len, element_ptr(p.out, p.dtype, base + ch * p.hw), p.dtype);
      }
    }
  });
}

void cpu_batch_norm(Context& ctx, const BatchNormParams& p) {
  const std::int64_t C = p.cols;
  std::vector<float> w(static_cast<std::size_t>(C)), b(static_cast<std::size_t>(C)), mean(static_cast<std::size_t>(C)),
      var(static_cast<std::size_t>(C)), scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
  load_vec(p.weight, C, p.dtype, w.data(), 1.0f);
  load_vec(p.bias, C, p.dtype, b.data(), 0.0f);
  load_vec(p.mean, C, p.dtype, mean.data(), 0.0f);
  load_vec(p.var, C, p.dtype, var.data(), 1.0f);
  for (std::int64_t i = 0; i < C; ++i) {
    scale[i] = w[i] * (1.0f / std::sqrt(var[i] + p.eps));
    shift[i] = b[i] - mean[i] * scale[i];
  }
  ctx.threads().parallel_for(p.rows, row_grain(C), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> v(static_cast<std::size_t>(C));
    for (std::int64_t r = r0; r < r1; ++r) {
      load_floats(element_ptr(p.x, p.dtype, r * p.ldx), p.dtype, C, v.data());
      for (std::int64_t i = 0; i < C; ++i) v[i] = v[i] * scale[i] + shift[i];
      apply_activation(p.act, v.data(), C);
      store_floats(v.data(), C, element_ptr(p.out, p.dtype, r * p.ldo), p.dtype);
    }
  });
}

}  // namespace mcv::kernels::nn_detail
