// linear and matmul: CPU against a double reference (all dtypes, activations, bias, residual,
// strided views, in-place residual), argument validation, CUDA against the CPU.

#include <vector>

#include "nn/nn_internal.h"
#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

using kernels::LinearArgs;
using kernels::MatmulArgs;
namespace nn_detail = kernels::nn_detail;

// y[m, n] = act(sum_k x[m, k] w[n, k] + b[n]) + r[m, n], in double.
std::vector<double> linear_ref(const LinearArgs& a) {
  const std::vector<double> x = values(a.x), w = values(a.weight);
  const std::vector<double> b = a.bias.defined() ? values(a.bias) : std::vector<double>();
  const std::vector<double> r = a.residual.defined() ? values(a.residual) : std::vector<double>();
  const std::int64_t K = a.x.size(-1), N = a.weight.size(0), M = a.x.numel() / K;
  std::vector<double> y(static_cast<std::size_t>(M * N));
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n = 0; n < N; ++n) {
      double acc = b.empty() ? 0.0 : b[n];
      for (std::int64_t k = 0; k < K; ++k) acc += x[m * K + k] * w[n * K + k];
      acc = act_ref(a.activation, acc);
      if (!r.empty()) acc += r[m * N + n];
      y[m * N + n] = acc;
    }
  return y;
}

// Runs linear on ctx's device with copies of the CPU arguments; returns out on the CPU.
Tensor run_linear(Context& ctx, LinearArgs a) {
  if (ctx.is_cuda()) {
    a.x = to_cuda(a.x);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
    a.residual = to_cuda(a.residual);
  }
  Shape out_shape = a.x.shape();
  out_shape.back() = a.weight.size(0);
  a.out = poisoned(out_shape, a.x.dtype(), ctx.device());
  kernels::linear(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu());
}

LinearArgs linear_case(DType dt, const Shape& x_shape, std::int64_t n, bool bias, bool residual, Activation act,
                       std::uint64_t seed) {
  LinearArgs a;
  const std::int64_t k = x_shape.back();
  a.x = rnd(x_shape, dt, seed);
  a.weight = rnd({n, k}, dt, seed + 1, 1.0f / std::sqrt(static_cast<float>(k)));
  if (bias) a.bias = rnd({n}, dt, seed + 2);
  if (residual) {
    Shape s = x_shape;
    s.back() = n;
    a.residual = rnd(s, dt, seed + 3);
  }
  a.activation = act;
  return a;
}

const Activation kActs[] = {Activation::none, Activation::relu, Activation::gelu, Activation::gelu_tanh,
                            Activation::silu};

TEST(NnLinear, CpuMatchesReferenceAllDtypesActivations) {
  Context ctx;
  std::uint64_t seed = 10;
  for (DType dt : kFloatTypes)
    for (Activation act : kActs)
      for (int variant = 0; variant < 3; ++variant) {
        const bool bias = variant != 1, residual = variant == 2;
        const LinearArgs a = linear_case(dt, {3, 7, 53}, 29, bias, residual, act, seed += 4);
        const Tensor want = from_doubles(linear_ref(a), {3, 7, 29});
        expect_close(run_linear(ctx, a), want, tolerance(dt),
                     std::string(dtype_name(dt)) + " " + kernels::activation_name(act) + " variant " +
                         std::to_string(variant));
      }
}

TEST(NnLinear, CpuShapesThatSplitColumnsAndRows) {
  Context ctx;
  // Batch-1 projection (column tiles) and a many-row one (row tiles), plus f32 residual on bf16.
  for (const auto& [m, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 64, 1000}, {300, 96, 130},
                                {1, 1, 5}, {5, 1, 1}}) {
    LinearArgs a = linear_case(DType::f32, {m, k}, n, true, false, Activation::none, 77);
    expect_close(run_linear(ctx, a), from_doubles(linear_ref(a), {m, n}), tolerance(DType::f32),
                 "shape " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
  }
  LinearArgs a = linear_case(DType::bf16, {9, 40}, 24, true, false, Activation::gelu, 5);
  a.residual = rnd({9, 24}, DType::f32, 6);
  a.bias = rnd({24}, DType::f32, 7);
  expect_close(run_linear(ctx, a), from_doubles(linear_ref(a), {9, 24}), tolerance(DType::bf16), "f32 params on bf16");
}

TEST(NnLinear, CpuStridedViewsAndInPlaceResidual) {
  Context ctx;
  // x is the first half of a wider projection output; out is a slice of a wider buffer.
  const Tensor wide = rnd({2, 5, 2 * 24}, DType::f32, 31);
  LinearArgs a;
  a.x = wide.slice(-1, 0, 24);
  a.weight = rnd({16, 24}, DType::f32, 32, 0.2f);
  a.bias = rnd({16}, DType::f32, 33);
  Tensor out_wide = poisoned({2, 5, 20}, DType::f32);
  a.out = out_wide.slice(-1, 2, 18);
  kernels::linear(ctx, a);
  expect_close(a.out, from_doubles(linear_ref(a), {2, 5, 16}), tolerance(DType::f32), "strided x/out");
  // Accumulate into the residual stream in place: out = residual = r.
  LinearArgs b = linear_case(DType::f32, {4, 12}, 8, true, false, Activation::gelu, 40);
  Tensor stream = rnd({4, 8}, DType::f32, 41);
  b.residual = stream.clone();
  const std::vector<double> want = linear_ref(b);
  b.residual = stream;
  b.out = stream;
  kernels::linear(ctx, b);
  expect_close(stream, from_doubles(want, {4, 8}), tolerance(DType::f32), "in-place residual");
}

// Every CPU GEMM path (Eigen, AVX2, AVX-512 where the CPU has them) on shapes that hit the
// micro-kernel edges: rows and columns that are not multiples of the register blocks, K across
// several k-blocks, the dot-product path for a few rows; linear and conv2d (packed weights).
TEST(NnLinear, CpuEveryGemmPath) {
  using nn_detail::CpuGemmPath;
  Context ctx;
  struct Restore {
    ~Restore() { nn_detail::set_cpu_gemm_path(CpuGemmPath::automatic); }
  } restore;
  for (CpuGemmPath path : {CpuGemmPath::eigen, CpuGemmPath::avx2, CpuGemmPath::avx512}) {
    nn_detail::set_cpu_gemm_path(path);
    const std::string name = "path " + std::to_string(static_cast<int>(nn_detail::cpu_gemm_path()));
    for (const auto& [m, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 37, 70}, {3, 600, 45},
                                  {4, 16, 33}, {5, 7, 1}, {13, 531, 97}, {70, 64, 300}, {300, 23, 31}}) {
      LinearArgs a = linear_case(DType::f32, {m, k}, n, true, false, Activation::none, 1000 + m + n);
      expect_close(run_linear(ctx, a), from_doubles(linear_ref(a), {m, n}), 1e-5,
                   name + " shape " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
    }
    kernels::Conv2dArgs c;
    c.x = rnd({1, 9, 7, 10}, DType::f32, 5);
    c.weight = rnd({20, 3, 3, 5}, DType::f32, 6, 0.2f);
    c.groups = 2;
    c.pad_h = c.pad_w = 1;
    c.out = poisoned({1, 9, 7, 20}, DType::f32);
    kernels::conv2d(ctx, c);
    // The same conv through linear on explicit im2col rows, as the reference.
    std::vector<double> want(9 * 7 * 20);
    const std::vector<double> xv = values(c.x), wv = values(c.weight);
    for (int y = 0; y < 9; ++y)
      for (int x = 0; x < 7; ++x)
        for (int co = 0; co < 20; ++co) {
          double acc = 0;
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
              for (int ci = 0; ci < 5; ++ci) {
                const int iy = y - 1 + i, ix = x - 1 + j;
                if (iy < 0 || iy >= 9 || ix < 0 || ix >= 7) continue;
                acc += xv[(iy * 7 + ix) * 10 + (co / 10) * 5 + ci] * wv[((co * 3 + i) * 3 + j) * 5 + ci];
              }
          want[(y * 7 + x) * 20 + co] = acc;
        }
    expect_close(c.out, from_doubles(want, {1, 9, 7, 20}), 1e-5, name + " grouped conv");
  }
}

TEST(NnLinear, RejectsBadArguments) {
  Context ctx;
  LinearArgs a = linear_case(DType::f32, {4, 12}, 8, true, false, Activation::none, 1);
  a.out = Tensor::empty({4, 8}, DType::f32);
  LinearArgs bad = a;
  bad.weight = rnd({8, 11}, DType::f32, 2);
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: weight: has K = 11");
  bad = a;
  bad.weight = rnd({8, 12}, DType::bf16, 2);
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: weight: expected dtype f32");
  bad = a;
  bad.x = rnd({12, 4}, DType::f32, 3).transpose(0, 1);
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: x: the last dimension must have stride 1");
  bad = a;
  bad.x = rnd({3, 4, 12}, DType::f32, 3).permute({1, 0, 2});
  expect_error([&] { kernels::linear(ctx, bad); }, "do not collapse");
  bad = a;
  bad.out = Tensor::empty({4, 9}, DType::f32);
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: out: expected shape [4, 8]");
  bad = a;
  bad.bias = rnd({7}, DType::f32, 4);
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: bias");
  bad = a;
  Tensor shared = Tensor::empty({4, 16}, DType::f32);
  bad.out = shared.slice(1, 0, 8);
  bad.residual = shared.slice(1, 4, 12);
  expect_error([&] { kernels::linear(ctx, bad); }, "overlaps residual");
  bad = a;
  bad.x = Tensor();
  expect_error([&] { kernels::linear(ctx, bad); }, "linear: x: is required");
  bad = a;
  bad.x = Tensor::empty({0, 12}, DType::f32);
  expect_error([&] { kernels::linear(ctx, bad); }, "is empty");
  bad = a;
  bad.x = Tensor::empty({4, 12}, DType::i32);
  expect_error([&] { kernels::linear(ctx, bad); }, "dtype i32 is not supported");
  bad = a;
  bad.allow_tf32 = true;
  bad.x = a.x.to(DType::bf16);
  bad.weight = a.weight.to(DType::bf16);
  bad.bias = Tensor();
  bad.out = Tensor::empty({4, 8}, DType::bf16);
  expect_error([&] { kernels::linear(ctx, bad); }, "allow_tf32");
}

// ---- matmul ----

std::vector<double> matmul_ref(const MatmulArgs& a, const std::vector<double>& prev) {
  const bool a3 = a.a.dim() == 3, b3 = a.b.dim() == 3;
  const std::int64_t M = a.a.size(-2), K = a.a.size(-1), N = a.b.size(-1);
  const std::int64_t batch = std::max(a3 ? a.a.size(0) : 1, b3 ? a.b.size(0) : 1);
  const std::vector<double> av = values(a.a), bv = values(a.b);
  std::vector<double> y(static_cast<std::size_t>(batch * M * N));
  for (std::int64_t bi = 0; bi < batch; ++bi) {
    const std::int64_t ab = a3 && a.a.size(0) > 1 ? bi : 0, bb = b3 && a.b.size(0) > 1 ? bi : 0;
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc += av[(ab * M + m) * K + k] * bv[(bb * K + k) * N + n];
        const std::size_t o = static_cast<std::size_t>((bi * M + m) * N + n);
        y[o] = a.alpha * acc + (a.accumulate ? prev[o] : 0.0);
      }
  }
  return y;
}

struct MatmulCase {
  const char* name;
  MatmulArgs args;
  Shape out_shape;
};

std::vector<MatmulCase> matmul_cases(DType dt) {
  std::vector<MatmulCase> cs;
  MatmulArgs a;
  a.a = rnd({5, 17, 11}, dt, 1);
  a.b = rnd({5, 11, 13}, dt, 2);
  cs.push_back({"batched", a, {5, 17, 13}});
  a.b = rnd({11, 13}, dt, 3);  // broadcast b
  a.alpha = 0.5f;
  cs.push_back({"broadcast b, alpha", a, {5, 17, 13}});
  MatmulArgs t;  // q @ k^T with k a transposed view; a single-row a
  t.a = rnd({3, 1, 8}, dt, 4);
  t.b = rnd({3, 9, 8}, dt, 5).transpose(1, 2);
  cs.push_back({"transposed b view", t, {3, 1, 9}});
  MatmulArgs u;  // column-major a, 2-D
  u.a = rnd({6, 7}, dt, 6).transpose(0, 1);
  u.b = rnd({6, 4}, dt, 7);
  u.accumulate = true;
  cs.push_back({"column-major a, accumulate", u, {7, 4}});
  return cs;
}

Tensor run_matmul(Context& ctx, MatmulArgs a, const Tensor& prev) {
  if (ctx.is_cuda()) {
    // Keep the strides of views: copy the underlying contiguous tensor and re-apply the view.
    auto move = [](const Tensor& t) {
      if (t.is_contiguous()) return t.to(Device::cuda());
      Tensor c = t.transpose(-1, -2).contiguous().to(Device::cuda());
      return c.transpose(-1, -2);
    };
    a.a = move(a.a);
    a.b = move(a.b);
  }
  a.out = a.accumulate ? prev.to(ctx.device()) : poisoned(prev.shape(), prev.dtype(), ctx.device());
  kernels::matmul(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu());
}

TEST(NnMatmul, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes)
    for (const MatmulCase& mc : matmul_cases(dt)) {
      const Tensor prev = rnd(mc.out_shape, dt, 99);
      const Tensor got = run_matmul(ctx, mc.args, prev);
      expect_close(got, from_doubles(matmul_ref(mc.args, values(prev)), mc.out_shape), tolerance(dt),
                   std::string(dtype_name(dt)) + " " + mc.name);
    }
}

TEST(NnMatmul, RejectsBadArguments) {
  Context ctx;
  MatmulArgs a;
  a.a = rnd({2, 3, 4}, DType::f32, 1);
  a.b = rnd({2, 5, 6}, DType::f32, 2);
  a.out = Tensor::empty({2, 3, 6}, DType::f32);
  expect_error([&] { kernels::matmul(ctx, a); }, "matmul: b: has 5 rows but a has K = 4");
  a.b = rnd({3, 4, 6}, DType::f32, 2);
  expect_error([&] { kernels::matmul(ctx, a); }, "batch extent");
  a.b = Tensor::empty({2, 4, 6, 2}, DType::f32).select(3, 0);  // no unit stride
  expect_error([&] { kernels::matmul(ctx, a); }, "needs stride 1");
}

// ---- CUDA against CPU ----

TEST(NnLinearCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 500;
  for (DType dt : kFloatTypes)
    for (Activation act : kActs)
      for (int variant = 0; variant < 4; ++variant) {
        // 0: plain, 1: bias (cuBLASLt epilogue), 2: bias + residual, 3: f32 bias and residual.
        LinearArgs a = linear_case(dt, {3, 7, 53}, 29, variant >= 1, variant >= 2, act, seed += 4);
        if (variant == 3) {
          a.bias = rnd({29}, DType::f32, seed + 1);
          a.residual = rnd({3, 7, 29}, DType::f32, seed + 2);
        }
        expect_close(run_linear(gpu, a), run_linear(cpu, a), cuda_tolerance(dt),
                     std::string(dtype_name(dt)) + " " + kernels::activation_name(act) + " variant " +
                         std::to_string(variant));
      }
  for (const auto& [m, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 64, 1000}, {300, 96, 130},
                                {1, 1, 5}, {5, 1, 1}, {197, 192, 768}}) {
    LinearArgs a = linear_case(DType::f32, {m, k}, n, true, false, Activation::none, 77);
    expect_close(run_linear(gpu, a), run_linear(cpu, a), cuda_tolerance(DType::f32),
                 "shape " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
  }
}

TEST(NnLinearCuda, StridedViewsInPlaceResidualAndTf32) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  const Tensor wide = rnd({2, 5, 48}, DType::f32, 31);
  const Tensor weight = rnd({16, 24}, DType::f32, 32, 0.2f), bias = rnd({16}, DType::f32, 33);
  LinearArgs c;
  c.x = wide.slice(-1, 1, 25);
  c.weight = weight;
  c.bias = bias;
  c.out = Tensor::empty({2, 5, 16}, DType::f32);
  kernels::linear(cpu, c);
  LinearArgs g;
  const Tensor wide_gpu = wide.to(Device::cuda());
  g.x = wide_gpu.slice(-1, 1, 25);  // misaligned by one element: cuBLASLt must be told
  g.weight = weight.to(Device::cuda());
  g.bias = bias.to(Device::cuda());
  Tensor out_wide = poisoned({2, 5, 20}, DType::f32, Device::cuda());
  g.out = out_wide.slice(-1, 3, 19);
  kernels::linear(gpu, g);
  gpu.synchronize();
  expect_close(g.out, c.out, cuda_tolerance(DType::f32), "strided");

  for (Activation act : {Activation::none, Activation::gelu}) {
    LinearArgs b = linear_case(DType::f32, {4, 12}, 8, true, false, act, 40);
    const Tensor stream = rnd({4, 8}, DType::f32, 41);
    Tensor s_cpu = stream.clone(), s_gpu = stream.to(Device::cuda());
    b.residual = b.out = s_cpu;
    kernels::linear(cpu, b);
    LinearArgs bg = b;
    bg.x = to_cuda(b.x);
    bg.weight = to_cuda(b.weight);
    bg.bias = to_cuda(b.bias);
    bg.residual = bg.out = s_gpu;
    kernels::linear(gpu, bg);
    gpu.synchronize();
    expect_close(s_gpu, s_cpu, cuda_tolerance(DType::f32), std::string("in-place residual ") + kernels::activation_name(act));
  }

  LinearArgs t = linear_case(DType::f32, {64, 256}, 128, true, false, Activation::none, 60);
  t.allow_tf32 = true;
  expect_close(run_linear(gpu, t), run_linear(cpu, t), 5e-3, "tf32");
}

TEST(NnMatmulCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes)
    for (const MatmulCase& mc : matmul_cases(dt)) {
      const Tensor prev = rnd(mc.out_shape, dt, 99);
      expect_close(run_matmul(gpu, mc.args, prev), run_matmul(cpu, mc.args, prev), cuda_tolerance(dt),
                   std::string(dtype_name(dt)) + " " + mc.name);
    }
}

TEST(NnCudaSanitizer, LinearAndMatmul) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda());
  for (DType dt : {DType::f32, DType::bf16}) {
    LinearArgs a = linear_case(dt, {5, 19}, 7, true, true, Activation::gelu, 3);
    EXPECT_EQ(test::compare(run_linear(gpu, a), run_linear(gpu, a)).non_finite, 0);
    const MatmulCase mc = matmul_cases(dt)[2];
    EXPECT_EQ(test::compare(run_matmul(gpu, mc.args, rnd(mc.out_shape, dt, 1)), rnd(mc.out_shape, dt, 1)).non_finite, 0);
  }
}

}  // namespace
}  // namespace mcv::nn_test
