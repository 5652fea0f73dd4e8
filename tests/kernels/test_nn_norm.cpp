// layer_norm / rms_norm (fused residual add, f32 residual stream, in-place use), layer_norm_2d
// and batch_norm: CPU against double references, validation, CUDA against the CPU.

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

using kernels::BatchNormArgs;
using kernels::LayerNorm2dArgs;
using kernels::NormArgs;

struct NormRef {
  std::vector<double> y, residual;
};

NormRef norm_ref(const NormArgs& a, bool rms) {
  const std::int64_t C = a.x.size(-1), rows = a.x.numel() / C;
  std::vector<double> s = values(a.x);
  if (a.residual.defined()) {
    const std::vector<double> r = values(a.residual);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] += r[i];
  }
  const std::vector<double> w = a.weight.defined() ? values(a.weight) : std::vector<double>(C, 1.0);
  const std::vector<double> b = a.bias.defined() ? values(a.bias) : std::vector<double>(C, 0.0);
  NormRef out{std::vector<double>(s.size()), s};
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* v = s.data() + r * C;
    double mean = 0, m2 = 0;
    if (!rms) {
      for (std::int64_t i = 0; i < C; ++i) mean += v[i];
      mean /= static_cast<double>(C);
    }
    for (std::int64_t i = 0; i < C; ++i) m2 += (v[i] - mean) * (v[i] - mean);
    const double rstd = 1.0 / std::sqrt(m2 / static_cast<double>(C) + a.eps);
    for (std::int64_t i = 0; i < C; ++i) out.y[r * C + i] = (v[i] - mean) * rstd * w[i] + b[i];
  }
  return out;
}

struct NormRun {
  Tensor y, residual;
};

// Runs on ctx's device; out has x's dtype, residual_out the given dtype (or none).
NormRun run_norm(Context& ctx, NormArgs a, bool rms, bool want_residual, DType residual_dtype) {
  if (ctx.is_cuda()) {
    a.x = to_cuda(a.x);
    a.residual = to_cuda(a.residual);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
  }
  a.out = poisoned(a.x.shape(), a.x.dtype(), ctx.device());
  if (want_residual) a.residual_out = poisoned(a.x.shape(), residual_dtype, ctx.device());
  rms ? kernels::rms_norm(ctx, a) : kernels::layer_norm(ctx, a);
  ctx.synchronize();
  return {a.out.to(Device::cpu()), want_residual ? a.residual_out.to(Device::cpu()) : Tensor()};
}

// Case v: 0 plain; 1 residual in x's dtype (out residual in x's dtype); 2 f32 residual stream
// (Vim's residual_in_fp32) with f32 weights; 3 no affine parameters, residual_out without a
// residual (the first layer).
NormArgs norm_case(DType dt, int v, bool rms, std::uint64_t seed, const Shape& shape = {3, 5, 67}) {
  NormArgs a;
  const std::int64_t C = shape.back();
  a.x = rnd(shape, dt, seed, 2.0f, 0.3f);
  if (v != 3) {
    const DType pt = v == 2 ? DType::f32 : dt;
    a.weight = rnd({C}, pt, seed + 1, 0.5f, 1.0f);
    if (!rms || v == 2) a.bias = rnd({C}, pt, seed + 2);
  }
  if (v == 1) a.residual = rnd(shape, dt, seed + 3);
  if (v == 2) a.residual = rnd(shape, DType::f32, seed + 3);
  a.eps = rms ? 1e-5f : 1e-6f;
  return a;
}

TEST(NnNorm, CpuMatchesReference) {
  Context ctx;
  std::uint64_t seed = 1;
  for (bool rms : {false, true})
    for (DType dt : kFloatTypes)
      for (int v = 0; v < 4; ++v) {
        const NormArgs a = norm_case(dt, v, rms, seed += 5);
        const DType rdt = v == 2 ? DType::f32 : dt;
        const NormRun got = run_norm(ctx, a, rms, v != 0, rdt);
        const NormRef want = norm_ref(a, rms);
        const std::string what = std::string(rms ? "rms " : "ln ") + dtype_name(dt) + " case " + std::to_string(v);
        expect_close(got.y, from_doubles(want.y, a.x.shape()), tolerance(dt), what);
        if (v != 0)
          expect_close(got.residual, from_doubles(want.residual, a.x.shape()), tolerance(rdt), what + " residual");
      }
}

TEST(NnNorm, CpuInPlaceResidualStreamAndStridedRows) {
  Context ctx;
  // residual_out = residual (in place) and out = x (in place), f32 residual on bf16 x.
  NormArgs a = norm_case(DType::bf16, 2, false, 70);
  const NormRef want = norm_ref(a, false);
  Tensor x = a.x.clone(), stream = a.residual.clone();
  a.x = a.out = x;
  a.residual = a.residual_out = stream;
  kernels::layer_norm(ctx, a);
  expect_close(x, from_doubles(want.y, x.shape()), tolerance(DType::bf16), "in-place y");
  expect_close(stream, from_doubles(want.residual, x.shape()), tolerance(DType::f32), "in-place residual");
  // x is a column slice of a wider tensor.
  const Tensor wide = rnd({4, 50}, DType::f32, 71);
  NormArgs b;
  b.x = wide.slice(1, 10, 42);
  b.weight = rnd({32}, DType::f32, 72);
  b.out = poisoned({4, 32}, DType::f32);
  kernels::rms_norm(ctx, b);
  expect_close(b.out, from_doubles(norm_ref(b, true).y, {4, 32}), tolerance(DType::f32), "strided rows");
}

TEST(NnNorm, RejectsBadArguments) {
  Context ctx;
  NormArgs a = norm_case(DType::f32, 1, false, 3, {4, 8});
  a.out = Tensor::empty({4, 8}, DType::f32);
  NormArgs bad = a;
  bad.weight = rnd({7}, DType::f32, 1);
  expect_error([&] { kernels::layer_norm(ctx, bad); }, "layer_norm: weight: expected shape [8]");
  bad = a;
  bad.residual = rnd({4, 8}, DType::bf16, 1);
  expect_error([&] { kernels::layer_norm(ctx, bad); }, "layer_norm: residual: expected dtype f32 but got bf16");
  bad = a;
  bad.out = Tensor::empty({4, 8}, DType::bf16);
  expect_error([&] { kernels::rms_norm(ctx, bad); }, "rms_norm: out: expected dtype f32");
  bad = a;
  Tensor shared = Tensor::empty({4, 12}, DType::f32);
  bad.out = shared.slice(1, 0, 8);
  bad.residual_out = shared.slice(1, 4, 12);
  expect_error([&] { kernels::layer_norm(ctx, bad); }, "residual_out: must not overlap out");
  bad = a;
  bad.eps = -1.0f;
  expect_error([&] { kernels::layer_norm(ctx, bad); }, "eps");
}

// ---- LayerNorm2d ----

std::vector<double> ln2d_ref(const LayerNorm2dArgs& a) {
  const std::int64_t N = a.x.size(0), C = a.x.size(1), HW = a.x.size(2) * a.x.size(3);
  const std::vector<double> x = values(a.x);
  const std::vector<double> w = a.weight.defined() ? values(a.weight) : std::vector<double>(C, 1.0);
  const std::vector<double> b = a.bias.defined() ? values(a.bias) : std::vector<double>(C, 0.0);
  std::vector<double> y(x.size());
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t q = 0; q < HW; ++q) {
      double mean = 0, m2 = 0;
      for (std::int64_t c = 0; c < C; ++c) mean += x[(n * C + c) * HW + q];
      mean /= static_cast<double>(C);
      for (std::int64_t c = 0; c < C; ++c) m2 += std::pow(x[(n * C + c) * HW + q] - mean, 2);
      const double rstd = 1.0 / std::sqrt(m2 / static_cast<double>(C) + a.eps);
      for (std::int64_t c = 0; c < C; ++c)
        y[(n * C + c) * HW + q] = (x[(n * C + c) * HW + q] - mean) * rstd * w[c] + b[c];
    }
  return y;
}

Tensor run_ln2d(Context& ctx, LayerNorm2dArgs a) {
  if (ctx.is_cuda()) {
    a.x = to_cuda(a.x);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
  }
  a.out = poisoned(a.x.shape(), a.x.dtype(), ctx.device());
  kernels::layer_norm_2d(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu());
}

LayerNorm2dArgs ln2d_case(DType dt, std::uint64_t seed) {
  LayerNorm2dArgs a;
  a.x = rnd({2, 13, 9, 31}, dt, seed, 1.5f, 0.2f);  // 279 pixels: more than one CPU block of 256
  a.weight = rnd({13}, dt, seed + 1);
  a.bias = rnd({13}, DType::f32, seed + 2);
  return a;
}

TEST(NnLayerNorm2d, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes) {
    const LayerNorm2dArgs a = ln2d_case(dt, 11);
    expect_close(run_ln2d(ctx, a), from_doubles(ln2d_ref(a), a.x.shape()), tolerance(dt), dtype_name(dt));
  }
  LayerNorm2dArgs a = ln2d_case(DType::f32, 12);
  const std::vector<double> want = ln2d_ref(a);
  a.x = a.x.clone();
  a.out = a.x;
  kernels::layer_norm_2d(ctx, a);
  expect_close(a.out, from_doubles(want, a.x.shape()), tolerance(DType::f32), "in place");
}

// ---- batch norm ----

std::vector<double> bn_ref(const BatchNormArgs& a) {
  const std::int64_t C = a.x.size(-1);
  const std::vector<double> x = values(a.x), m = values(a.running_mean), v = values(a.running_var);
  const std::vector<double> w = a.weight.defined() ? values(a.weight) : std::vector<double>(C, 1.0);
  const std::vector<double> b = a.bias.defined() ? values(a.bias) : std::vector<double>(C, 0.0);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = i % static_cast<std::size_t>(C);
    y[i] = act_ref(a.activation, (x[i] - m[c]) / std::sqrt(v[c] + a.eps) * w[c] + b[c]);
  }
  return y;
}

BatchNormArgs bn_case(DType dt, Activation act, std::uint64_t seed) {
  BatchNormArgs a;
  a.x = rnd({2, 5, 7, 19}, dt, seed);
  a.weight = rnd({19}, dt, seed + 1);
  a.bias = rnd({19}, dt, seed + 2);
  a.running_mean = rnd({19}, DType::f32, seed + 3, 0.3f);
  a.running_var = rnd({19}, DType::f32, seed + 4, 0.2f, 1.0f);
  a.activation = act;
  return a;
}

Tensor run_bn(Context& ctx, BatchNormArgs a) {
  if (ctx.is_cuda()) {
    a.x = to_cuda(a.x);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
    a.running_mean = to_cuda(a.running_mean);
    a.running_var = to_cuda(a.running_var);
  }
  a.out = poisoned(a.x.shape(), a.x.dtype(), ctx.device());
  kernels::batch_norm(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu());
}

TEST(NnBatchNorm, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes)
    for (Activation act : {Activation::none, Activation::relu, Activation::gelu}) {
      const BatchNormArgs a = bn_case(dt, act, 20);
      expect_close(run_bn(ctx, a), from_doubles(bn_ref(a), a.x.shape()), tolerance(dt),
                   std::string(dtype_name(dt)) + " " + kernels::activation_name(act));
    }
  BatchNormArgs a = bn_case(DType::f32, Activation::none, 21);
  a.weight = a.bias = Tensor();
  expect_close(run_bn(ctx, a), from_doubles(bn_ref(a), a.x.shape()), tolerance(DType::f32), "no affine");
  a.running_var = Tensor();
  a.out = Tensor::empty(a.x.shape(), DType::f32);
  expect_error([&] { kernels::batch_norm(ctx, a); }, "batch_norm: running_var: is required");
}

// ---- CUDA ----

TEST(NnNormCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 100;
  for (bool rms : {false, true})
    for (DType dt : kFloatTypes)
      for (int v = 0; v < 4; ++v) {
        const NormArgs a = norm_case(dt, v, rms, seed += 5, {3, 5, 1031});
        const DType rdt = v == 2 ? DType::f32 : dt;
        const NormRun g = run_norm(gpu, a, rms, v != 0, rdt), c = run_norm(cpu, a, rms, v != 0, rdt);
        const std::string what = std::string(rms ? "rms " : "ln ") + dtype_name(dt) + " case " + std::to_string(v);
        expect_close(g.y, c.y, cuda_tolerance(dt), what);
        if (v != 0) expect_close(g.residual, c.residual, cuda_tolerance(rdt), what + " residual");
      }
  // In place on the GPU.
  NormArgs a = norm_case(DType::bf16, 2, false, 70);
  const NormRun want = run_norm(cpu, a, false, true, DType::f32);
  Tensor x = a.x.to(Device::cuda()), stream = a.residual.to(Device::cuda());
  a.weight = to_cuda(a.weight);
  a.bias = to_cuda(a.bias);
  a.x = a.out = x;
  a.residual = a.residual_out = stream;
  kernels::layer_norm(gpu, a);
  gpu.synchronize();
  expect_close(x, want.y, cuda_tolerance(DType::bf16), "in-place y");
  expect_close(stream, want.residual, cuda_tolerance(DType::f32), "in-place residual");
}

// ---- CUDA: the register-row kernels' vector and scalar paths ----


Operand operand(std::int64_t rows, std::int64_t C, DType dt, std::uint64_t seed, bool misaligned, float scale = 1.0f,
                float offset = 0.0f) {
  const Shape shape = rows > 0 ? Shape{rows, C + (misaligned ? 3 : 0)} : Shape{C + (misaligned ? 1 : 0)};
  return {rnd(shape, dt, seed, scale, offset), misaligned ? 1 : 0, C};
}


struct NormCase {
  std::int64_t rows = 1, C = 1;
  DType dt = DType::f32;
  bool rms = false;
  int residual = 0;  // 0 none, 1 x's dtype, 2 f32 stream
  bool out_f32 = false, residual_out = false, params_f32 = false, affine = true, misaligned = false;
  std::string name() const {
    return std::string(rms ? "rms " : "ln ") + dtype_name(dt) + " rows " + std::to_string(rows) + " C " +
           std::to_string(C) + " res " + std::to_string(residual) + (out_f32 ? " out f32" : "") +
           (residual_out ? " res_out" : "") + (params_f32 ? " params f32" : "") + (affine ? "" : " no affine") +
           (misaligned ? " misaligned" : "");
  }
};

struct NormInputs {
  Operand x, residual, weight, bias;
};
NormInputs norm_inputs(const NormCase& k, std::uint64_t seed) {
  NormInputs in;
  in.x = operand(k.rows, k.C, k.dt, seed, k.misaligned, 2.0f, 0.3f);
  if (k.residual) in.residual = operand(k.rows, k.C, k.residual == 2 ? DType::f32 : k.dt, seed + 1, k.misaligned);
  if (k.affine) {
    const DType pt = k.params_f32 ? DType::f32 : k.dt;
    in.weight = operand(0, k.C, pt, seed + 2, k.misaligned, 0.5f, 1.0f);
    in.bias = operand(0, k.C, pt, seed + 3, k.misaligned);
  }
  return in;
}

// y and residual_out on the CPU of one run on ctx's device (outputs poisoned, possibly strided).
NormRun run_norm_case(Context& ctx, const NormCase& k, const NormInputs& in) {
  const Device d = ctx.device();
  NormArgs a;
  a.x = in.x.on(d);
  a.residual = in.residual.on(d);
  a.weight = in.weight.on(d);
  a.bias = in.bias.on(d);
  a.eps = k.rms ? 1e-5f : 1e-6f;
  const DType res_dt = k.residual == 2 ? DType::f32 : k.dt;
  Output out({k.rows}, k.C, k.out_f32 ? DType::f32 : k.dt, d, k.misaligned);
  Output ro({k.rows}, k.C, res_dt, d, k.misaligned);
  a.out = out.view;
  if (k.residual_out) a.residual_out = ro.view;
  k.rms ? kernels::rms_norm(ctx, a) : kernels::layer_norm(ctx, a);
  ctx.synchronize();
  out.expect_pads_untouched(k.name());
  if (k.residual_out) ro.expect_pads_untouched(k.name() + " residual_out");
  return {out.view.to(Device::cpu()), k.residual_out ? ro.view.to(Device::cpu()) : Tensor()};
}

void check_norm_case(Context& cpu, Context& gpu, const NormCase& k, std::uint64_t seed) {
  const NormInputs in = norm_inputs(k, seed);
  const NormRun g = run_norm_case(gpu, k, in), c = run_norm_case(cpu, k, in);
  expect_close_max(g.y, c.y, k.out_f32 ? DType::f32 : k.dt, k.name());
  if (k.residual_out)
    expect_close_max(g.residual, c.residual, k.residual == 2 ? DType::f32 : k.dt, k.name() + " residual_out");
}

// Every row-group shape (C = 1 and 7: one-thread and sub-warp groups; 80 / 96 / 192: VMamba and
// MambaVision widths, several rows a warp; 768: four vectors a lane; 3000 / 5000: one row a
// block, and the scalar 5000 beyond the registers), aligned and misaligned, every dtype, with the
// residual, output and parameter dtypes rotated through the cases.
TEST(NnNormCuda, RowShapesAlignmentAndDtypes) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  int i = 0;
  for (std::int64_t C : {1, 7, 80, 96, 192, 768, 3000, 5000})
    for (std::int64_t rows : {1, 5, 300})
      for (DType dt : kFloatTypes)
        for (bool misaligned : {false, true}) {
          ++i;
          NormCase k;
          k.rows = rows;
          k.C = C;
          k.dt = dt;
          k.misaligned = misaligned;
          k.rms = i % 2 == 1;
          k.residual = i % 3;
          k.out_f32 = (i / 3) % 2 == 1;
          k.residual_out = i % 5 != 0;
          k.params_f32 = (i / 2) % 2 == 1;
          k.affine = i % 7 != 0;
          check_norm_case(cpu, gpu, k, 1000 + 10 * i);
        }
}

// More rows than one grid covers (the grid-stride loops): 8-lane groups (C = 96 f16), one row a
// block (C = 1088 f16: 64 threads), a C = 1 column, and Vim's f32-residual RMSNorm shape.
TEST(NnNormCuda, ManyRows) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  NormCase k;
  k.rows = 70000, k.C = 96, k.dt = DType::f16, k.residual = 1, k.residual_out = true, k.params_f32 = true;
  check_norm_case(cpu, gpu, k, 1);
  k = NormCase{};
  k.rows = 8500, k.C = 1088, k.dt = DType::f16, k.params_f32 = true;
  check_norm_case(cpu, gpu, k, 2);
  k = NormCase{};
  k.rows = 600000, k.C = 1, k.dt = DType::bf16, k.residual = 2, k.residual_out = true;
  check_norm_case(cpu, gpu, k, 3);
  k = NormCase{};
  k.rows = 16 * 197, k.C = 192, k.dt = DType::f16, k.rms = true, k.residual = 2, k.residual_out = true;
  k.params_f32 = true;
  check_norm_case(cpu, gpu, k, 4);
}

// In place on every path: out = x with residual_out = residual (Vim's f32 stream), and the
// crossed form out = residual, residual_out = x; aligned and strided views.
TEST(NnNormCuda, InPlaceOnEveryPath) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 500;
  for (std::int64_t C : {7, 96, 768, 3000, 5000})
    for (DType dt : kFloatTypes)
      for (bool misaligned : {false, true})
        for (bool crossed : {false, true}) {
          NormCase k;
          k.rows = 37, k.C = C, k.dt = dt, k.misaligned = misaligned, k.rms = crossed;
          k.residual = crossed ? 1 : 2;  // out = residual needs the residual in out's dtype
          k.residual_out = true;
          k.params_f32 = true;
          const NormInputs in = norm_inputs(k, seed += 7);
          const NormRun want = run_norm_case(cpu, k, in);
          const Tensor x_wide = in.x.wide.to(Device::cuda()), r_wide = in.residual.wide.to(Device::cuda());
          const Tensor x = x_wide.slice(-1, in.x.c0, in.x.c0 + C), r = r_wide.slice(-1, in.x.c0, in.x.c0 + C);
          NormArgs a;
          a.x = x;
          a.residual = r;
          a.weight = in.weight.on(Device::cuda());
          a.bias = in.bias.on(Device::cuda());
          a.eps = k.rms ? 1e-5f : 1e-6f;
          a.out = crossed ? r : x;
          a.residual_out = crossed ? x : r;
          k.rms ? kernels::rms_norm(gpu, a) : kernels::layer_norm(gpu, a);
          gpu.synchronize();
          const std::string what = "in place " + k.name() + (crossed ? " crossed" : "");
          expect_close_max(a.out.to(Device::cpu()), want.y, dt, what);
          expect_close_max(a.residual_out.to(Device::cpu()), want.residual, k.residual == 2 ? DType::f32 : dt,
                           what + " residual_out");
        }
}

TEST(NnBatchNormCuda, VectorAndScalarPaths) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 900;
  for (std::int64_t C : {1, 7, 80, 96, 768, 3000})
    for (DType dt : kFloatTypes)
      for (bool misaligned : {false, true}) {
        const std::int64_t rows = C > 1000 ? 40 : 300;
        const Operand x = operand(rows, C, dt, seed += 9, misaligned), w = operand(0, C, dt, seed + 1, misaligned),
                      b = operand(0, C, DType::f32, seed + 2, misaligned),
                      m = operand(0, C, DType::f32, seed + 3, misaligned, 0.3f),
                      v = operand(0, C, dt, seed + 4, misaligned, 0.2f, 1.0f);
        const std::string what = std::string("batch norm ") + dtype_name(dt) + " C " + std::to_string(C) +
                                 (misaligned ? " misaligned" : "");
        Tensor got, want;
        for (Context* ctx : {&cpu, &gpu}) {
          const Device d = ctx->device();
          BatchNormArgs a;
          a.x = x.on(d);
          a.weight = w.on(d);
          a.bias = b.on(d);
          a.running_mean = m.on(d);
          a.running_var = v.on(d);
          a.activation = Activation::gelu;
          Output out({rows}, C, dt, d, misaligned);
          a.out = out.view;
          kernels::batch_norm(*ctx, a);
          ctx->synchronize();
          out.expect_pads_untouched(what);
          (ctx == &cpu ? want : got) = out.view.to(Device::cpu());
        }
        expect_close_max(got, want, dt, what);
      }
}

TEST(NnLayerNorm2dCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes) {
    const LayerNorm2dArgs a = ln2d_case(dt, 31);
    expect_close(run_ln2d(gpu, a), run_ln2d(cpu, a), cuda_tolerance(dt), dtype_name(dt));
  }
}

TEST(NnBatchNormCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes)
    for (Activation act : {Activation::none, Activation::relu, Activation::silu}) {
      const BatchNormArgs a = bn_case(dt, act, 40);
      expect_close(run_bn(gpu, a), run_bn(cpu, a), cuda_tolerance(dt),
                   std::string(dtype_name(dt)) + " " + kernels::activation_name(act));
    }
}

TEST(NnCudaSanitizer, Norms) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda());
  const NormArgs a = norm_case(DType::bf16, 2, true, 5, {3, 37});
  EXPECT_EQ(test::compare(run_norm(gpu, a, true, true, DType::f32).y, a.x).non_finite, 0);
  const LayerNorm2dArgs b = ln2d_case(DType::f32, 6);
  EXPECT_EQ(test::compare(run_ln2d(gpu, b), b.x).non_finite, 0);
  const BatchNormArgs c = bn_case(DType::f16, Activation::gelu, 7);
  EXPECT_EQ(test::compare(run_bn(gpu, c), c.x).non_finite, 0);
}

}  // namespace
}  // namespace mcv::nn_test
