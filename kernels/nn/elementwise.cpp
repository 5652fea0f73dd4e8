// Activation / add / mul / scale / mul_silu / softmax entry points.

#include <algorithm>
#include <string>

#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;
using nn_detail::EwOp;

namespace {

void run(Context& ctx, const char* op, nn_detail::EwParams& p) {
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    (void)op;
    nn_detail::cuda_elementwise(ctx, p);
#else
    nn_detail::no_cuda(op);
#endif
  } else {
    nn_detail::cpu_elementwise(ctx, p);
  }
}

// Validates the first input and the output; fills the shared fields of p.
nn_detail::EwParams prepare(const Check& c, const char* a_name, const Tensor& a, const Tensor& out, EwOp op) {
  c.present(a_name, a);
  c.io_dtype(a_name, a);
  const nn_detail::Rows ra = c.rows(a_name, a);
  c.present("out", out);
  c.dtype("out", out, a.dtype());
  c.shape("out", out, a.shape());
  const nn_detail::Rows ro = c.rows("out", out);
  c.alias_or_disjoint("out", out, a_name, a);
  nn_detail::EwParams p;
  p.dtype = a.dtype();
  p.op = op;
  p.rows = ra.rows;
  p.cols = ra.cols;
  p.a = ra.data;
  p.lda = ra.ld;
  p.out = ro.data;
  p.ldo = ro.ld;
  return p;
}

// b: a's shape, or (with allow_broadcast) a shape that equals a's trailing dimensions once its
// leading 1s are dropped: (C), (L, C), (1, L, C) against (B, L, C). a's dtype or f32.
void second(const Check& c, const char* name, const Tensor& a, const Tensor& b, const Tensor& out,
            bool allow_broadcast, nn_detail::EwParams& p) {
  c.present(name, b);
  c.dtype_f32_or(name, b, a.dtype());
  int lead = 0;
  while (lead < b.dim() - 1 && b.size(lead) == 1) ++lead;
  const int kept = b.dim() - lead;
  bool ok = b.shape() == a.shape();
  if (!ok && allow_broadcast && kept >= 1 && kept <= a.dim())
    ok = std::equal(b.shape().begin() + lead, b.shape().end(), a.shape().end() - kept);
  if (!ok)
    c.fail(name, "expected shape " + shape_str(a.shape()) +
                     (allow_broadcast ? " or trailing dimensions of it such as (" + std::to_string(a.size(-1)) + ")"
                                      : std::string()) +
                     " but got " + shape_str(b.shape()));
  const nn_detail::Rows rb = c.rows(name, b);
  c.alias_or_disjoint("out", out, name, b);
  p.b = rb.data;
  p.ldb = rb.ld;
  p.b_rows = rb.rows;
  p.b_f32 = b.dtype() == DType::f32 && a.dtype() != DType::f32;
}

}  // namespace

void activation(Context& ctx, Activation act, const Tensor& x, const Tensor& out) {
  const Check c("activation", ctx);
  nn_detail::EwParams p = prepare(c, "x", x, out, EwOp::activation);
  p.act = act;
  run(ctx, "activation", p);
}

void add(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, const Tensor& gamma) {
  const Check c("add", ctx);
  nn_detail::EwParams p = prepare(c, "a", a, out, EwOp::add);
  second(c, "b", a, b, out, true, p);
  if (gamma.defined()) {
    p.gamma = c.vec("gamma", gamma, a.size(-1), a.dtype());
    c.no_overlap("out", out, "gamma", gamma);
  }
  run(ctx, "add", p);
}

void mul(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  const Check c("mul", ctx);
  nn_detail::EwParams p = prepare(c, "a", a, out, EwOp::mul);
  second(c, "b", a, b, out, true, p);
  run(ctx, "mul", p);
}

void scale(Context& ctx, const Tensor& x, float s, const Tensor& out) {
  const Check c("scale", ctx);
  nn_detail::EwParams p = prepare(c, "x", x, out, EwOp::scale);
  p.s = s;
  run(ctx, "scale", p);
}

void mul_silu(Context& ctx, const Tensor& x, const Tensor& z, const Tensor& out) {
  const Check c("mul_silu", ctx);
  nn_detail::EwParams p = prepare(c, "x", x, out, EwOp::mul_silu);
  second(c, "z", x, z, out, false, p);
  run(ctx, "mul_silu", p);
}

void softmax(Context& ctx, const Tensor& x, const Tensor& out) {
  const Check c("softmax", ctx);
  c.present("x", x);
  c.io_dtype("x", x);
  const nn_detail::Rows rx = c.rows("x", x);
  c.present("out", out);
  c.dtype("out", out, x.dtype());
  c.shape("out", out, x.shape());
  const nn_detail::Rows ro = c.rows("out", out);
  c.alias_or_disjoint("out", out, "x", x);
  nn_detail::SoftmaxParams p;
  p.dtype = x.dtype();
  p.rows = rx.rows;
  p.cols = rx.cols;
  p.x = rx.data;
  p.ldx = rx.ld;
  p.out = ro.data;
  p.ldo = ro.ld;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_softmax(ctx, p);
#else
    nn_detail::no_cuda("softmax");
#endif
  } else {
    nn_detail::cpu_softmax(ctx, p);
  }
}

}  // namespace mcv::kernels
