// conv2d (NHWC / OHWI): every geometry the models use (stems, patch embeds, pointwise,
// depthwise, grouped, dilated) against a double reference on the CPU, then CUDA (cuDNN and the
// direct kernel) against the CPU; the OHWI re-layout and batch-norm folding helpers.

#include <vector>

#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

using kernels::Conv2dArgs;

struct Geometry {
  const char* name;
  std::int64_t n, h, w, cin, cout;
  int kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

const Geometry kGeometries[] = {
    {"3x3 same", 2, 9, 10, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"stem 3x3/2", 1, 13, 11, 3, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {"patch 4x4/4", 2, 16, 12, 3, 6, 4, 4, 4, 4, 0, 0, 1, 1, 1},
    {"pointwise", 2, 5, 7, 24, 10, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"dilated", 1, 11, 9, 4, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1},
    {"grouped anisotropic", 2, 8, 7, 6, 4, 3, 2, 2, 1, 1, 0, 1, 2, 2},
    {"depthwise 3x3", 2, 9, 8, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 13},
    {"depthwise 7x7/2", 1, 15, 14, 6, 6, 7, 7, 2, 2, 3, 3, 1, 1, 6},
    {"channel multiplier 2", 1, 6, 6, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4},
    // Channels a multiple of 8: the vectorised depthwise kernel on CUDA (widths 3, 5, 7; outputs
    // not a multiple of its 4-pixel strips; padding that changes the output size).
    {"depthwise 3x3 vectorised", 2, 9, 11, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16},
    {"depthwise 5x5 vectorised, narrow pad", 1, 8, 9, 8, 8, 5, 5, 1, 1, 1, 2, 1, 1, 8},
    {"depthwise 7x7 vectorised", 1, 10, 13, 24, 24, 7, 7, 1, 1, 3, 3, 1, 1, 24},
};

std::vector<double> conv_ref(const Conv2dArgs& a) {
  const std::int64_t N = a.x.size(0), H = a.x.size(1), W = a.x.size(2), Cin = a.x.size(3);
  const std::int64_t Cout = a.weight.size(0), KH = a.weight.size(1), KW = a.weight.size(2);
  const std::int64_t cin_g = Cin / a.groups, cout_g = Cout / a.groups;
  const std::int64_t OH = kernels::conv_out_size(H, KH, a.stride_h, a.pad_h, a.dilation_h);
  const std::int64_t OW = kernels::conv_out_size(W, KW, a.stride_w, a.pad_w, a.dilation_w);
  const std::vector<double> x = values(a.x), w = values(a.weight);
  const std::vector<double> b = a.bias.defined() ? values(a.bias) : std::vector<double>(Cout, 0.0);
  const std::vector<double> r = a.residual.defined() ? values(a.residual) : std::vector<double>();
  std::vector<double> y(static_cast<std::size_t>(N * OH * OW * Cout));
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oy = 0; oy < OH; ++oy)
      for (std::int64_t ox = 0; ox < OW; ++ox)
        for (std::int64_t co = 0; co < Cout; ++co) {
          const std::int64_t g = co / cout_g;
          double acc = b[co];
          for (std::int64_t i = 0; i < KH; ++i)
            for (std::int64_t j = 0; j < KW; ++j) {
              const std::int64_t iy = oy * a.stride_h - a.pad_h + i * a.dilation_h;
              const std::int64_t ix = ox * a.stride_w - a.pad_w + j * a.dilation_w;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              for (std::int64_t ci = 0; ci < cin_g; ++ci)
                acc += x[((n * H + iy) * W + ix) * Cin + g * cin_g + ci] * w[((co * KH + i) * KW + j) * cin_g + ci];
            }
          const std::size_t o = static_cast<std::size_t>(((n * OH + oy) * OW + ox) * Cout + co);
          y[o] = act_ref(a.activation, acc) + (r.empty() ? 0.0 : r[o]);
        }
  return y;
}

Shape out_shape(const Conv2dArgs& a) {
  return {a.x.size(0), kernels::conv_out_size(a.x.size(1), a.weight.size(1), a.stride_h, a.pad_h, a.dilation_h),
          kernels::conv_out_size(a.x.size(2), a.weight.size(2), a.stride_w, a.pad_w, a.dilation_w), a.weight.size(0)};
}

// Variant: 0 bias; 1 no bias + GELU; 2 bias + ReLU + residual (f32 residual for 16-bit x); 3 bias +
// SiLU (VMamba's, a compile-time activation in the CUDA depthwise kernel) + residual in x's type.
Conv2dArgs conv_case(const Geometry& g, DType dt, int variant, std::uint64_t seed) {
  Conv2dArgs a;
  a.x = rnd({g.n, g.h, g.w, g.cin}, dt, seed);
  const std::int64_t fan_in = static_cast<std::int64_t>(g.kh) * g.kw * (g.cin / g.groups);
  a.weight = rnd({g.cout, g.kh, g.kw, g.cin / g.groups}, dt, seed + 1, 1.0f / std::sqrt(static_cast<float>(fan_in)));
  if (variant != 1) a.bias = rnd({g.cout}, dt, seed + 2);
  a.stride_h = g.sh;
  a.stride_w = g.sw;
  a.pad_h = g.ph;
  a.pad_w = g.pw;
  a.dilation_h = g.dh;
  a.dilation_w = g.dw;
  a.groups = g.groups;
  a.activation = variant == 1   ? Activation::gelu
                 : variant == 2 ? Activation::relu
                 : variant == 3 ? Activation::silu
                                : Activation::none;
  if (variant == 2) a.residual = rnd(out_shape(a), DType::f32, seed + 3);
  if (variant == 3) a.residual = rnd(out_shape(a), dt, seed + 3);
  return a;
}

Tensor run_conv(Context& ctx, Conv2dArgs a) {
  if (ctx.is_cuda()) {
    a.x = to_cuda(a.x);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
    a.residual = to_cuda(a.residual);
  }
  a.out = poisoned(out_shape(a), a.x.dtype(), ctx.device());
  kernels::conv2d(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu());
}

TEST(NnConv2d, CpuMatchesReference) {
  Context ctx;
  std::uint64_t seed = 1;
  for (const Geometry& g : kGeometries)
    for (DType dt : kFloatTypes)
      for (int variant = 0; variant < 4; ++variant) {
        const Conv2dArgs a = conv_case(g, dt, variant, seed += 4);
        expect_close(run_conv(ctx, a), from_doubles(conv_ref(a), out_shape(a)), tolerance(dt),
                     std::string(g.name) + " " + dtype_name(dt) + " variant " + std::to_string(variant));
      }
}

TEST(NnConv2d, CpuLargerImageAndInPlaceResidual) {
  Context ctx;
  // Enough output pixels for several im2col tiles per thread.
  const Geometry g{"big", 1, 40, 36, 16, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const Conv2dArgs a = conv_case(g, DType::f32, 0, 9);
  expect_close(run_conv(ctx, a), from_doubles(conv_ref(a), out_shape(a)), tolerance(DType::f32), "big");
  Conv2dArgs b = conv_case(kGeometries[0], DType::f32, 2, 10);
  const std::vector<double> want = conv_ref(b);
  Tensor stream = b.residual.clone();
  b.residual = b.out = stream;
  kernels::conv2d(ctx, b);
  expect_close(stream, from_doubles(want, stream.shape()), tolerance(DType::f32), "in-place residual");
}

TEST(NnConv2d, RejectsBadArguments) {
  Context ctx;
  Conv2dArgs a = conv_case(kGeometries[0], DType::f32, 0, 3);
  a.out = Tensor::empty(out_shape(a), DType::f32);
  Conv2dArgs bad = a;
  bad.weight = rnd({7, 5, 3, 3}, DType::f32, 1);  // official OIHW passed as is
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv_weight_ohwi");
  bad = a;
  bad.groups = 2;
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv2d: groups: 2 does not divide");
  bad = a;
  bad.x = rnd({2, 1, 10, 5}, DType::f32, 2);
  bad.pad_h = 0;
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv2d: x: spatial size");
  bad = a;
  bad.stride_w = 0;
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv2d: stride_w");
  bad = a;
  bad.x = rnd({2, 5, 9, 10}, DType::f32, 2).permute({0, 2, 3, 1});
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv2d: x: must be contiguous");
  bad = a;
  bad.out = Tensor::empty({2, 9, 10, 6}, DType::f32);
  expect_error([&] { kernels::conv2d(ctx, bad); }, "conv2d: out: expected shape [2, 9, 10, 7]");
}

TEST(NnConv2d, WeightRelayoutAndBatchNormFolding) {
  Context ctx;
  // OIHW -> OHWI: w_ohwi[o, i, j, c] = w_oihw[o, c, i, j].
  const Tensor oihw = rnd({4, 3, 2, 5}, DType::f32, 1);
  const Tensor ohwi = kernels::conv_weight_ohwi(oihw);
  ASSERT_EQ(ohwi.shape(), (Shape{4, 2, 5, 3}));
  for (std::int64_t o = 0; o < 4; ++o)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t i = 0; i < 2; ++i)
        for (std::int64_t j = 0; j < 5; ++j)
          ASSERT_EQ(ohwi.item(((o * 2 + i) * 5 + j) * 3 + c), oihw.item(((o * 3 + c) * 2 + i) * 5 + j));
  // conv -> BN(eval) equals the folded conv.
  Conv2dArgs a = conv_case(kGeometries[1], DType::f32, 0, 5);
  const Tensor bn_w = rnd({8}, DType::f32, 6, 0.3f, 1.0f), bn_b = rnd({8}, DType::f32, 7);
  const Tensor mean = rnd({8}, DType::f32, 8, 0.2f), var = rnd({8}, DType::f32, 9, 0.1f, 0.8f);
  const double eps = 1e-3;
  std::vector<double> want = conv_ref(a);
  const std::vector<double> w = values(bn_w), b = values(bn_b), m = values(mean), v = values(var);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::size_t c = i % 8;
    want[i] = (want[i] - m[c]) / std::sqrt(v[c] + eps) * w[c] + b[c];
  }
  const kernels::FoldedConv f = kernels::fold_batch_norm(a.weight, a.bias, bn_w, bn_b, mean, var, eps);
  a.weight = f.weight;
  a.bias = f.bias;
  expect_close(run_conv(ctx, a), from_doubles(want, out_shape(a)), tolerance(DType::f32), "folded");
  expect_error([&] { kernels::fold_batch_norm(a.weight, Tensor(), bn_w, bn_b, mean, rnd({7}, DType::f32, 1), eps); },
               "fold_batch_norm: running_var: expected shape [8]");
}

TEST(NnConv2dCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 300;
  for (const Geometry& g : kGeometries)
    for (DType dt : kFloatTypes)
      for (int variant = 0; variant < 4; ++variant) {
        Conv2dArgs a = conv_case(g, dt, variant, seed += 4);
        const Tensor want = run_conv(cpu, a);
        const std::string what = std::string(g.name) + " " + dtype_name(dt) + " variant " + std::to_string(variant);
        expect_close(run_conv(gpu, a), want, cuda_tolerance(dt), what);
        a.force_direct = true;
        expect_close(run_conv(gpu, a), want, cuda_tolerance(dt), what + " direct");
      }
  // A VMamba-sized depthwise conv and a downsample conv, f32 and TF32.
  for (const Geometry& g : {Geometry{"dw 56x56x192", 1, 56, 56, 192, 192, 3, 3, 1, 1, 1, 1, 1, 1, 192},
                            Geometry{"down 56->28", 1, 56, 56, 96, 192, 3, 3, 2, 2, 1, 1, 1, 1, 1}}) {
    Conv2dArgs a = conv_case(g, DType::f32, 0, 7);
    const Tensor want = run_conv(cpu, a);
    expect_close(run_conv(gpu, a), want, cuda_tolerance(DType::f32), g.name);
    a.allow_tf32 = true;
    expect_close(run_conv(gpu, a), want, 5e-3, std::string(g.name) + " tf32");
  }
}

// cuDNN's workspace is sized by the conv (conv2d.cu: cudnn_workspace_cap) and goes back to the
// context's arena once the conv is queued: MambaVision-T's stage-0 conv at batch 32 in f32 (its
// precomputed-index GEMM wants more than the former fixed 32 MB) is right, and three of them in a
// row leave the arena's high-water mark where one left it.
TEST(NnConv2dCuda, ConvsShareTheWorkspace) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  const Geometry g{"80 -> 80 3x3 at 56 x 56, batch 32", 32, 56, 56, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const Conv2dArgs a = conv_case(g, DType::f32, 0, 11);
  expect_close(run_conv(gpu, a), run_conv(cpu, a), cuda_tolerance(DType::f32), g.name);
  const std::size_t after_one = gpu.workspace().high_water();
  run_conv(gpu, a);
  run_conv(gpu, a);
  EXPECT_EQ(gpu.workspace().high_water(), after_one);
  RecordProperty("workspace_bytes", std::to_string(after_one));
}

TEST(NnConv2dCuda, InPlaceResidual) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (int g = 0; g < 2; ++g) {  // cuDNN geometry, then depthwise (direct kernel)
    Conv2dArgs a = conv_case(kGeometries[g == 0 ? 0 : 6], DType::f32, 2, 20);
    const Tensor want = run_conv(cpu, a);
    a.x = to_cuda(a.x);
    a.weight = to_cuda(a.weight);
    a.bias = to_cuda(a.bias);
    Tensor stream = a.residual.to(Device::cuda());
    a.residual = a.out = stream;
    kernels::conv2d(gpu, a);
    gpu.synchronize();
    expect_close(stream, want, cuda_tolerance(DType::f32), g == 0 ? "cudnn" : "depthwise");
  }
}

TEST(NnCudaSanitizer, Conv2d) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda());
  for (const Geometry& g : {kGeometries[1], kGeometries[5], kGeometries[7]}) {
    Conv2dArgs a = conv_case(g, DType::bf16, 2, 3);
    EXPECT_EQ(test::compare(run_conv(gpu, a), run_conv(gpu, a)).non_finite, 0) << g.name;
    a.force_direct = true;
    EXPECT_EQ(test::compare(run_conv(gpu, a), run_conv(gpu, a)).non_finite, 0) << g.name;
  }
}

}  // namespace
}  // namespace mcv::nn_test
