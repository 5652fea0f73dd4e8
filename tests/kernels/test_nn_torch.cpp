// Parity with PyTorch itself: tests/fixtures/nn/torch_reference.json holds small inputs and the
// outputs PyTorch computed for them (make_torch_reference.py). Each op runs on the CPU, and on
// CUDA when a GPU is present, in f32.

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

using nlohmann::json;

const json& cases() {
  static const json j = [] {
    std::ifstream f(test::fixture_dir() / "nn" / "torch_reference.json");
    if (!f) throw std::runtime_error("missing fixture nn/torch_reference.json");
    return json::parse(f);
  }();
  return j.at("cases");
}

Tensor tensor(const json& c, const char* key) {
  const json& t = c.at(key);
  const std::vector<float> data = t.at("data").get<std::vector<float>>();
  return Tensor::from_vector(data, t.at("shape").get<Shape>());
}

Tensor nhwc(const Tensor& nchw) { return nchw.permute({0, 2, 3, 1}).contiguous(); }

// PyTorch's f32 (CPU) result against ours: same math, different summation order; the GPU's
// libraries (cuDNN algorithms, erff/expf) add a little more.
void expect_torch(const Tensor& got, const Tensor& want, const std::string& what, bool cuda) {
  const test::Diff d = test::compare(got, want);
  EXPECT_EQ(d.non_finite, 0) << what;
  EXPECT_LE(d.rel_l2, cuda ? 2e-5 : 2e-6) << what << " max_abs " << d.max_abs;
  EXPECT_LE(d.max_abs, cuda ? 1e-4 : 2e-5) << what;
}

class NnTorchParity : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) MCV_REQUIRE_CUDA();
    ctx_ = std::make_unique<Context>(GetParam() ? Device::cuda() : Device::cpu());
  }
  Device dev() const { return ctx_->device(); }
  Tensor on(const Tensor& t) const { return t.defined() ? t.to(dev()) : t; }
  Tensor empty(const Shape& s) const { return poisoned(s, DType::f32, dev()); }
  Context& ctx() { return *ctx_; }
  void expect(const Tensor& got, const Tensor& want, const std::string& what) const {
    expect_torch(got, want, what, GetParam());
  }
  std::unique_ptr<Context> ctx_;
};

TEST_P(NnTorchParity, Conv2d) {
  for (const char* name : {"conv_plain", "conv_depthwise", "conv_grouped"}) {
    const json& c = cases().at(name);
    kernels::Conv2dArgs a;
    a.x = on(nhwc(tensor(c, "x")));
    a.weight = on(kernels::conv_weight_ohwi(tensor(c, "weight")));
    a.bias = on(tensor(c, "bias"));
    a.stride_h = c["stride"][0];
    a.stride_w = c["stride"][1];
    a.pad_h = c["padding"][0];
    a.pad_w = c["padding"][1];
    a.dilation_h = c["dilation"][0];
    a.dilation_w = c["dilation"][1];
    a.groups = c["groups"];
    const Tensor y = tensor(c, "y");
    a.out = empty({y.size(0), y.size(2), y.size(3), y.size(1)});
    kernels::conv2d(ctx(), a);
    ctx().synchronize();
    expect(a.out.to(Device::cpu()).permute({0, 3, 1, 2}), y, name);
  }
}

TEST_P(NnTorchParity, ConvFoldedBatchNorm) {
  const json& c = cases().at("conv_bn");
  const kernels::FoldedConv f =
      kernels::fold_batch_norm(tensor(c, "weight"), Tensor(), tensor(c, "bn_weight"), tensor(c, "bn_bias"),
                               tensor(c, "running_mean"), tensor(c, "running_var"), c["eps"].get<double>());
  kernels::Conv2dArgs a;
  a.x = on(nhwc(tensor(c, "x")));
  a.weight = on(kernels::conv_weight_ohwi(f.weight));
  a.bias = on(f.bias);
  a.pad_h = a.pad_w = 1;
  const Tensor y = tensor(c, "y");
  a.out = empty({y.size(0), y.size(2), y.size(3), y.size(1)});
  kernels::conv2d(ctx(), a);
  ctx().synchronize();
  expect(a.out.to(Device::cpu()).permute({0, 3, 1, 2}), y, "conv_bn");
}

TEST_P(NnTorchParity, Bicubic) {
  for (const char* name : {"bicubic_up", "bicubic_down", "bicubic_align", "bicubic_scale"}) {
    const json& c = cases().at(name);
    kernels::BicubicArgs a;
    a.x = on(tensor(c, "x"));
    const Tensor y = tensor(c, "y");
    a.out = empty(y.shape());
    a.align_corners = c["align_corners"];
    if (c.contains("scale_factor")) a.scale_factor_h = a.scale_factor_w = c["scale_factor"].get<double>();
    kernels::interpolate_bicubic(ctx(), a);
    ctx().synchronize();
    expect(a.out, y, name);
  }
}

TEST_P(NnTorchParity, Activations) {
  for (const auto& [name, act] : {std::pair<const char*, Activation>{"gelu", Activation::gelu},
                                  {"gelu_tanh", Activation::gelu_tanh}, {"silu", Activation::silu},
                                  {"relu", Activation::relu}}) {
    const json& c = cases().at(name);
    const Tensor x = on(tensor(c, "x"));
    Tensor out = empty(x.shape());
    kernels::activation(ctx(), act, x, out);
    ctx().synchronize();
    expect(out, tensor(c, "y"), name);
  }
}

TEST_P(NnTorchParity, Norms) {
  for (const char* name : {"layer_norm", "rms_norm"}) {
    const json& c = cases().at(name);
    kernels::NormArgs a;
    a.x = on(tensor(c, "x"));
    a.weight = on(tensor(c, "weight"));
    if (c.contains("bias")) a.bias = on(tensor(c, "bias"));
    a.eps = c["eps"].get<float>();
    a.out = empty(a.x.shape());
    std::string(name) == "rms_norm" ? kernels::rms_norm(ctx(), a) : kernels::layer_norm(ctx(), a);
    ctx().synchronize();
    expect(a.out, tensor(c, "y"), name);
  }
  const json& c = cases().at("batch_norm");
  kernels::BatchNormArgs b;
  b.x = on(nhwc(tensor(c, "x")));
  b.weight = on(tensor(c, "weight"));
  b.bias = on(tensor(c, "bias"));
  b.running_mean = on(tensor(c, "running_mean"));
  b.running_var = on(tensor(c, "running_var"));
  b.eps = c["eps"].get<float>();
  b.out = empty(b.x.shape());
  kernels::batch_norm(ctx(), b);
  ctx().synchronize();
  expect(b.out.to(Device::cpu()).permute({0, 3, 1, 2}), tensor(c, "y"), "batch_norm");
}

TEST_P(NnTorchParity, SoftmaxAndAttention) {
  const json& s = cases().at("softmax");
  const Tensor x = on(tensor(s, "x"));
  Tensor out = empty(x.shape());
  kernels::softmax(ctx(), x, out);
  ctx().synchronize();
  expect(out, tensor(s, "y"), "softmax");
  const json& c = cases().at("attention");
  kernels::AttentionArgs a;
  a.q = on(tensor(c, "q"));
  a.k = on(tensor(c, "k"));
  a.v = on(tensor(c, "v"));
  a.scale = c["scale"].get<float>();
  a.out = empty(a.q.shape());
  kernels::attention(ctx(), a);
  ctx().synchronize();
  expect(a.out, tensor(c, "y"), "attention");
}

INSTANTIATE_TEST_SUITE_P(Devices, NnTorchParity, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Cuda" : "Cpu"; });

}  // namespace
}  // namespace mcv::nn_test
