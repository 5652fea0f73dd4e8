// linear / matmul entry points: validate, reduce to plain params, route by device.

#include <string>

#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;

void linear(Context& ctx, const LinearArgs& a) {
  const Check c("linear", ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  const nn_detail::Rows x = c.rows("x", a.x);
  c.present("weight", a.weight);
  if (a.weight.dim() != 2) c.fail("weight", "expected (N, K) but got shape " + shape_str(a.weight.shape()));
  c.dtype("weight", a.weight, io);
  if (a.weight.size(1) != x.cols)
    c.fail("weight", "has K = " + std::to_string(a.weight.size(1)) + " but x has " + std::to_string(x.cols) +
                         " features (shape " + shape_str(a.x.shape()) + ")");
  const nn_detail::Rows w = c.rows("weight", a.weight);
  const std::int64_t n = w.rows;
  const nn_detail::Vec bias = c.vec("bias", a.bias, n, io);
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  Shape out_shape = a.x.shape();
  out_shape.back() = n;
  c.shape("out", a.out, out_shape);
  const nn_detail::Rows o = c.rows("out", a.out);
  c.no_overlap("out", a.out, "x", a.x);
  c.no_overlap("out", a.out, "weight", a.weight);
  c.no_overlap("out", a.out, "bias", a.bias);

  nn_detail::LinearParams p;
  if (a.residual.defined()) {
    c.present("residual", a.residual);
    c.dtype_f32_or("residual", a.residual, io);
    c.shape("residual", a.residual, out_shape);
    const nn_detail::Rows r = c.rows("residual", a.residual);
    p.residual_is_out = c.alias_or_disjoint("out", a.out, "residual", a.residual);
    p.residual = r.data;
    p.residual_f32 = r.dtype == DType::f32;
    p.ldr = r.ld;
  }
  if (a.allow_tf32 && io != DType::f32) c.fail("allow_tf32", "applies to f32 only");
  p.dtype = io;
  p.M = x.rows;
  p.N = n;
  p.K = x.cols;
  p.x = x.data;
  p.ldx = x.ld;
  p.w = w.data;
  p.ldw = w.ld;
  p.bias = bias;
  p.out = o.data;
  p.ldo = o.ld;
  p.act = a.activation;
  p.allow_tf32 = a.allow_tf32;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_linear(ctx, p);
#else
    nn_detail::no_cuda("linear");
#endif
  } else {
    nn_detail::cpu_linear(ctx, p);
  }
}

namespace {

// (batch?, rows, cols) operand of matmul -> MatOperand; batch extent 1 or absent broadcasts.
nn_detail::MatOperand operand(const Check& c, const char* name, const Tensor& t, std::int64_t batch) {
  nn_detail::MatOperand m;
  m.data = t.raw_data();
  const std::int64_t rows = t.size(-2), cols = t.size(-1);
  m.rs = t.stride(-2);
  m.cs = t.stride(-1);
  m.bs = t.dim() == 3 && t.size(0) > 1 ? t.stride(0) : 0;
  if (t.dim() == 3 && t.size(0) != 1 && t.size(0) != batch)
    c.fail(name, "batch extent " + std::to_string(t.size(0)) + " does not match " + std::to_string(batch));
  // One unit stride (a size-1 dimension takes any stride).
  const bool row_major = cols == 1 || m.cs == 1;
  const bool col_major = rows == 1 || m.rs == 1;
  if (!row_major && !col_major)
    c.fail(name, "needs stride 1 in one of its last two dimensions (got strides " + shape_str(t.strides()) +
                     "; use .contiguous())");
  // Normalise the stride of a size-1 dimension so the backends see a plain row/column-major matrix.
  if (row_major) {
    m.cs = 1;
    if (rows == 1) m.rs = cols;
    if (m.rs < cols) c.fail(name, "rows overlap (strides " + shape_str(t.strides()) + ")");
  } else {
    m.rs = 1;
    if (cols == 1) m.cs = rows;
    if (m.cs < rows) c.fail(name, "columns overlap (strides " + shape_str(t.strides()) + ")");
  }
  return m;
}

}  // namespace

void matmul(Context& ctx, const MatmulArgs& a) {
  const Check c("matmul", ctx);
  c.present("a", a.a);
  c.present("b", a.b);
  c.io_dtype("a", a.a);
  const DType io = a.a.dtype();
  c.dtype("b", a.b, io);
  if (a.a.dim() != 2 && a.a.dim() != 3) c.fail("a", "expected (M, K) or (batch, M, K) but got " + shape_str(a.a.shape()));
  if (a.b.dim() != 2 && a.b.dim() != 3) c.fail("b", "expected (K, N) or (batch, K, N) but got " + shape_str(a.b.shape()));
  const std::int64_t m = a.a.size(-2), k = a.a.size(-1), n = a.b.size(-1);
  if (a.b.size(-2) != k)
    c.fail("b", "has " + std::to_string(a.b.size(-2)) + " rows but a has K = " + std::to_string(k));
  std::int64_t batch = 1;
  if (a.a.dim() == 3) batch = std::max(batch, a.a.size(0));
  if (a.b.dim() == 3) batch = std::max(batch, a.b.size(0));
  const bool batched = a.a.dim() == 3 || a.b.dim() == 3;
  const nn_detail::MatOperand op_a = operand(c, "a", a.a, batch), op_b = operand(c, "b", a.b, batch);
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  c.shape("out", a.out, batched ? Shape{batch, m, n} : Shape{m, n});
  c.unit_inner_stride("out", a.out);
  c.writable("out", a.out);
  c.no_overlap("out", a.out, "a", a.a);
  c.no_overlap("out", a.out, "b", a.b);
  if (a.allow_tf32 && io != DType::f32) c.fail("allow_tf32", "applies to f32 only");

  nn_detail::MatmulParams p;
  p.dtype = io;
  p.batch = batch;
  p.M = m;
  p.N = n;
  p.K = k;
  p.a = op_a;
  p.b = op_b;
  p.out = a.out.raw_data();
  p.o_bs = batched ? a.out.stride(0) : 0;
  p.o_rs = m == 1 ? n : a.out.stride(-2);
  p.alpha = a.alpha;
  p.accumulate = a.accumulate;
  p.allow_tf32 = a.allow_tf32;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_matmul(ctx, p);
#else
    nn_detail::no_cuda("matmul");
#endif
  } else {
    nn_detail::cpu_matmul(ctx, p);
  }
}

}  // namespace mcv::kernels
