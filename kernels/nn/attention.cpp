// attention entry point and its CPU path.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;

namespace {

void dims4(const Check& c, const char* name, const Tensor& t, const char* layout) {
  if (t.dim() != 4) c.fail(name, std::string("expected ") + layout + " but got shape " + shape_str(t.shape()));
}

void strides4(const Tensor& t, std::int64_t* s) {
  for (int i = 0; i < 4; ++i) s[i] = t.stride(i);
}

}  // namespace

void attention(Context& ctx, const AttentionArgs& a) {
  const Check c("attention", ctx);
  c.present("q", a.q);
  c.io_dtype("q", a.q);
  dims4(c, "q", a.q, "(B, heads, Tq, D)");
  const DType io = a.q.dtype();
  const std::int64_t batch = a.q.size(0), heads = a.q.size(1), tq = a.q.size(2), d = a.q.size(3);
  c.present("k", a.k);
  c.dtype("k", a.k, io);
  dims4(c, "k", a.k, "(B, heads, Tk, D)");
  const std::int64_t tk = a.k.size(2);
  c.shape("k", a.k, {batch, heads, tk, d});
  c.present("v", a.v);
  c.dtype("v", a.v, io);
  dims4(c, "v", a.v, "(B, heads, Tk, Dv)");
  const std::int64_t dv = a.v.size(3);
  c.shape("v", a.v, {batch, heads, tk, dv});
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  c.shape("out", a.out, {batch, heads, tq, dv});
  c.writable("out", a.out);
  c.no_overlap("out", a.out, "q", a.q);
  c.no_overlap("out", a.out, "k", a.k);
  c.no_overlap("out", a.out, "v", a.v);
  if (!std::isfinite(a.scale)) c.fail("scale", "must be finite");
  nn_detail::AttentionParams p;
  p.dtype = io;
  p.batch = batch;
  p.heads = heads;
  p.tq = tq;
  p.tk = tk;
  p.d = d;
  p.dv = dv;
  p.q = a.q.raw_data();
  p.k = a.k.raw_data();
  p.v = a.v.raw_data();
  p.out = a.out.raw_data();
  strides4(a.q, p.qs);
  strides4(a.k, p.ks);
  strides4(a.v, p.vs);
  strides4(a.out, p.os);
  p.scale = a.scale;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    constexpr std::int64_t kMaxCudaFloats = 3072;  // per-warp shared memory: scores + one q row
    if (tk + d > kMaxCudaFloats)
      c.fail("k", "Tk + D = " + std::to_string(tk + d) + " exceeds the CUDA kernel's " +
                      std::to_string(kMaxCudaFloats) + " (window attention sizes are far below)");
    if (tq > 4 * 65535) c.fail("q", "Tq above 262140 is not supported on CUDA");
    if (batch * heads > 0x7fffffff) c.fail("q", "B * heads above 2^31 - 1 is not supported on CUDA");
    nn_detail::cuda_attention(ctx, p);
#else
    nn_detail::no_cuda("attention");
#endif
  } else {
    nn_detail::cpu_attention(ctx, p);
  }
}

namespace nn_detail {

namespace {

// Gathers a strided (rows, cols) matrix of dtype t into f32 row-major dst.
void gather(const void* base, DType t, std::int64_t rows, std::int64_t cols, std::int64_t rs, std::int64_t cs,
            float* dst) {
  const std::int64_t es = static_cast<std::int64_t>(dtype_size(t));
  const char* b = static_cast<const char*>(base);
  for (std::int64_t r = 0; r < rows; ++r) {
    if (cs == 1) {
      load_floats(b + r * rs * es, t, cols, dst + r * cols);
    } else {
      for (std::int64_t c = 0; c < cols; ++c) dst[r * cols + c] = cpu::load_element(b + (r * rs + c * cs) * es, t);
    }
  }
}

}  // namespace

void cpu_attention(Context& ctx, const AttentionParams& p) {
  const std::int64_t es = static_cast<std::int64_t>(dtype_size(p.dtype));
  // One task per (batch, head): pack K and V as f32 row-major once, then every query row is a
  // row of dot products, a softmax and a weighted sum of V rows (all contiguous, vectorisable).
  ctx.threads().parallel_for(p.batch * p.heads, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> k(static_cast<std::size_t>(p.tk * p.d)), v(static_cast<std::size_t>(p.tk * p.dv));
    std::vector<float> q(static_cast<std::size_t>(p.d)), s(static_cast<std::size_t>(p.tk)), o(static_cast<std::size_t>(p.dv));
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t b = t / p.heads, h = t % p.heads;
      const char* qb = static_cast<const char*>(p.q) + (b * p.qs[0] + h * p.qs[1]) * es;
      const char* kb = static_cast<const char*>(p.k) + (b * p.ks[0] + h * p.ks[1]) * es;
      const char* vb = static_cast<const char*>(p.v) + (b * p.vs[0] + h * p.vs[1]) * es;
      char* ob = static_cast<char*>(p.out) + (b * p.os[0] + h * p.os[1]) * es;
      gather(kb, p.dtype, p.tk, p.d, p.ks[2], p.ks[3], k.data());
      gather(vb, p.dtype, p.tk, p.dv, p.vs[2], p.vs[3], v.data());
      for (std::int64_t i = 0; i < p.tq; ++i) {
        gather(qb + i * p.qs[2] * es, p.dtype, 1, p.d, 0, p.qs[3], q.data());
        for (std::int64_t c = 0; c < p.d; ++c) q[c] *= p.scale;
        float mx = -INFINITY;
        for (std::int64_t j = 0; j < p.tk; ++j) {
          const float* kr = k.data() + j * p.d;
          float dot = 0.0f;
          for (std::int64_t c = 0; c < p.d; ++c) dot += q[c] * kr[c];
          s[j] = dot;
          mx = std::max(mx, dot);
        }
        float sum = 0.0f;
        for (std::int64_t j = 0; j < p.tk; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        std::fill(o.begin(), o.end(), 0.0f);
        for (std::int64_t j = 0; j < p.tk; ++j) {
          const float w = s[j];
          const float* vr = v.data() + j * p.dv;
          for (std::int64_t c = 0; c < p.dv; ++c) o[c] += w * vr[c];
        }
        for (std::int64_t c = 0; c < p.dv; ++c) o[c] /= sum;
        char* orow = ob + i * p.os[2] * es;
        if (p.os[3] == 1) {
          store_floats(o.data(), p.dv, orow, p.dtype);
        } else {
          for (std::int64_t c = 0; c < p.dv; ++c) store_floats(&o[c], 1, orow + c * p.os[3] * es, p.dtype);
        }
      }
    }
  });
}

}  // namespace nn_detail
}  // namespace mcv::kernels
