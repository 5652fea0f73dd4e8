// CPU elementwise ops and softmax: a row at a time in f32 on ctx.threads().

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail {

namespace {

using cpu::element_ptr;

std::int64_t row_grain(std::int64_t cols) { return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(cols, 1)); }

}  // namespace

void cpu_elementwise(Context& ctx, const EwParams& p) {
  const std::int64_t C = p.cols;
  std::vector<float> gamma;
  const DType bt = p.b_f32 ? DType::f32 : p.dtype;
  if (p.gamma.data) {
    gamma.resize(static_cast<std::size_t>(C));
    load_vec(p.gamma, C, p.dtype, gamma.data(), 1.0f);
  }
  ctx.threads().parallel_for(p.rows, row_grain(C), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> a(static_cast<std::size_t>(C)), bbuf(p.b ? static_cast<std::size_t>(C) : 0);
    for (std::int64_t r = r0; r < r1; ++r) {
      load_floats(element_ptr(p.a, p.dtype, r * p.lda), p.dtype, C, a.data());
      const float* b = bbuf.data();
      if (p.b) load_floats(element_ptr(p.b, bt, (r % p.b_rows) * p.ldb), bt, C, bbuf.data());
      switch (p.op) {
        case EwOp::activation: apply_activation(p.act, a.data(), C); break;
        case EwOp::add:
          if (p.gamma.data)
            for (std::int64_t i = 0; i < C; ++i) a[i] += b[i] * gamma[i];
          else
            for (std::int64_t i = 0; i < C; ++i) a[i] += b[i];
          break;
        case EwOp::mul:
          for (std::int64_t i = 0; i < C; ++i) a[i] *= b[i];
          break;
        case EwOp::scale:
          for (std::int64_t i = 0; i < C; ++i) a[i] *= p.s;
          break;
        case EwOp::mul_silu:
          for (std::int64_t i = 0; i < C; ++i) a[i] *= b[i] / (1.0f + std::exp(-b[i]));
          break;
      }
      store_floats(a.data(), C, element_ptr(p.out, p.dtype, r * p.ldo), p.dtype);
    }
  });
}

void cpu_softmax(Context& ctx, const SoftmaxParams& p) {
  const std::int64_t C = p.cols;
  ctx.threads().parallel_for(p.rows, row_grain(C), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> v(static_cast<std::size_t>(C));
    for (std::int64_t r = r0; r < r1; ++r) {
      load_floats(element_ptr(p.x, p.dtype, r * p.ldx), p.dtype, C, v.data());
      float mx = -INFINITY;
      for (std::int64_t i = 0; i < C; ++i) mx = std::max(mx, v[i]);
      // A row of -inf gives NaN, as torch.softmax does.
      float sum = 0.0f;
      for (std::int64_t i = 0; i < C; ++i) {
        v[i] = std::exp(v[i] - mx);
        sum += v[i];
      }
      for (std::int64_t i = 0; i < C; ++i) v[i] /= sum;
      store_floats(v.data(), C, element_ptr(p.out, p.dtype, r * p.ldo), p.dtype);
    }
  });
}

}  // namespace mcv::kernels::nn_detail
