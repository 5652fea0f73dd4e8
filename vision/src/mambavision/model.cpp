// MambaVision forward pass. Module and parameter names are the official ones
// (patch_embed.conv_down.0.weight, levels.2.blocks.0.mixer.A_log, ...), so official state dicts
// load by name. Conv stages run NHWC with every BatchNorm (and conv layer scale) folded into the
// preceding conv at load; token stages run on windows (B * nW, ws * ws, C), token-major.

#include <algorithm>
#include <cmath>

#include "mambavision.h"
#include "mcv/kernels/conv1d.h"
#include "mcv/kernels/nn.h"
#include "mcv/kernels/selective_scan.h"

namespace mcv::vision {

namespace {

namespace k = mcv::kernels;

using Int = std::int64_t;

// Largest input side accepted: keeps every index of the stem within 32-bit kernels' reach and
// rejects absurd sizes with a clear error instead of an allocation failure deep in a stage.
constexpr Int kMaxSide = 16384;

Tensor new_tensor(const Context& ctx, const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, ctx.device());
}

// Records a private copy: the tensor is usually a buffer the forward pass keeps overwriting.
void record(Taps* taps, const std::string& name, const Tensor& t) {
  if (taps && !taps->values.count(name)) taps->record(name, t.clone());
}
// NHWC activation recorded as the official NCHW tensor.
void record_nchw(Taps* taps, const std::string& name, const Tensor& nhwc) {
  if (taps && !taps->values.count(name)) taps->record(name, nhwc.permute({0, 3, 1, 2}).clone());
}

// ---- Parameter holders with the official names ------------------------------------------------

/// nn.Conv2d: weight (Cout, Cin, k, k), optional bias.
class Conv2dParams : public Module {
 public:
  Conv2dParams(Int cin, Int cout, Int kernel, bool bias, ParamKind kind)
      : weight(param("weight", {cout, cin, kernel, kernel}, kind)), bias(bias ? &param("bias", {cout}, kind) : nullptr) {}
  Param& weight;
  Param* bias;
};

/// nn.BatchNorm2d (eval mode: running statistics), everything in f32.
class BatchNormParams : public Module {
 public:
  explicit BatchNormParams(Int c, double eps)
      : eps(eps),
        weight(param("weight", {c}, ParamKind::f32)),
        bias(param("bias", {c}, ParamKind::f32)),
        running_mean(param("running_mean", {c}, ParamKind::f32)),
        running_var(param("running_var", {c}, ParamKind::f32)) {
    param("num_batches_tracked", {}, ParamKind::ignored);
  }
  double eps;
  Param& weight;
  Param& bias;
  Param& running_mean;
  Param& running_var;
};

/// nn.LayerNorm over the last dimension (eps 1e-5), f32 parameters.
class LayerNormParams : public Module {
 public:
  explicit LayerNormParams(Int c) : weight(param("weight", {c}, ParamKind::f32)), bias(param("bias", {c}, ParamKind::f32)) {}
  void run(Context& ctx, const Tensor& x, const Tensor& out) const {
    k::NormArgs a;
    a.x = x;
    a.weight = weight.value;
    a.bias = bias.value;
    a.eps = 1e-5f;
    a.out = out;
    k::layer_norm(ctx, a);
  }
  Param& weight;
  Param& bias;
};

/// nn.Linear.
class LinearParams : public Module {
 public:
  LinearParams(Int in, Int out, bool bias, ParamKind bias_kind = ParamKind::weight)
      : out_features(out), weight(param("weight", {out, in})), bias(bias ? &param("bias", {out}, bias_kind) : nullptr) {}
  /// out = act(x W^T + b) + residual; `out` allocated when undefined.
  Tensor run(Context& ctx, const Tensor& x, Tensor out = Tensor(), const Tensor& residual = Tensor(),
             k::Activation act = k::Activation::none) const {
    if (!out.defined()) {
      Shape s = x.shape();
      s.back() = out_features;
      out = new_tensor(ctx, s, x.dtype());
    }
    k::LinearArgs a;
    a.x = x;
    a.weight = weight.value;
    if (bias) a.bias = bias->value;
    a.residual = residual;
    a.activation = act;
    a.out = out;
    k::linear(ctx, a);
    return out;
  }
  Int out_features;
  Param& weight;
  Param* bias;
};

/// A conv ready to run: OHWI weight in the compute dtype, f32 bias, fused activation.
struct ConvOp {
  Tensor weight;  // (Cout, k, k, Cin)
  Tensor bias;    // (Cout) f32 or undefined
  int stride = 1, pad = 1;
  k::Activation act = k::Activation::none;

  Tensor run(Context& ctx, const Tensor& x, const Tensor& residual = Tensor(), Tensor out = Tensor()) const {
    const Int kk = weight.size(1);
    const Int oh = k::conv_out_size(x.size(1), kk, stride, pad, 1);
    const Int ow = k::conv_out_size(x.size(2), kk, stride, pad, 1);
    if (!out.defined()) out = new_tensor(ctx, {x.size(0), oh, ow, weight.size(0)}, x.dtype());
    k::Conv2dArgs a;
    a.x = x;
    a.weight = weight;
    a.bias = bias;
    a.residual = residual;
    a.stride_h = a.stride_w = stride;
    a.pad_h = a.pad_w = pad;
    a.activation = act;
    a.out = out;
    k::conv2d(ctx, a);
    return out;
  }
};

Tensor host_f32(const Param& p) { return p.value.to(Device::cpu()).to(DType::f32); }

/// Conv (+ BatchNorm folded in double) (+ layer scale), moved to `device` in `dtype`.
ConvOp make_conv(const Conv2dParams& conv, const BatchNormParams* bn, const Param* gamma, int stride,
                 k::Activation act, DType dtype, Device device) {
  Tensor w = host_f32(conv.weight);
  Tensor b = conv.bias ? host_f32(*conv.bias) : Tensor();
  if (bn) {
    k::FoldedConv f = k::fold_batch_norm(w, b, host_f32(bn->weight), host_f32(bn->bias), host_f32(bn->running_mean),
                                          host_f32(bn->running_var), bn->eps);
    w = f.weight;
    b = f.bias;
  }
  if (gamma) {
    // x * gamma after the norm is a per-output-channel scale of the folded conv.
    const Tensor g = host_f32(*gamma);
    if (!b.defined()) b = Tensor::zeros({w.size(0)}, DType::f32);
    const Int per_out = w.numel() / w.size(0);
    float* wp = w.data<float>();
    float* bp = b.data<float>();
    for (Int o = 0; o < w.size(0); ++o) {
      const double s = g.data<float>()[o];
      for (Int i = 0; i < per_out; ++i) wp[o * per_out + i] = static_cast<float>(wp[o * per_out + i] * s);
      bp[o] = static_cast<float>(bp[o] * s);
    }
  }
  ConvOp op;
  op.weight = k::conv_weight_ohwi(w).to(dtype).to(device);
  if (b.defined()) op.bias = b.to(device);
  op.stride = stride;
  op.pad = static_cast<int>(conv.weight.shape[2] / 2);
  op.act = act;
  return op;
}

// ---- Conv stages ------------------------------------------------------------------------------

/// PatchEmbed: conv s2 + BN(1e-4) + ReLU, twice (conv_down.0/1 and conv_down.3/4).
class PatchEmbed : public Module {
 public:
  PatchEmbed(Int in_chans, Int in_dim, Int dim)
      : conv0(make_child<Conv2dParams>("conv_down.0", in_chans, in_dim, 3, false, ParamKind::f32)),
        bn0(make_child<BatchNormParams>("conv_down.1", in_dim, 1e-4)),
        conv1(make_child<Conv2dParams>("conv_down.3", in_dim, dim, 3, false, ParamKind::f32)),
        bn1(make_child<BatchNormParams>("conv_down.4", dim, 1e-4)) {}
  void prepare(DType dtype, Device device) {
    op0 = make_conv(conv0, &bn0, nullptr, 2, k::Activation::relu, dtype, device);
    op1 = make_conv(conv1, &bn1, nullptr, 2, k::Activation::relu, dtype, device);
  }
  Tensor forward(Context& ctx, const Tensor& x) const { return op1.run(ctx, op0.run(ctx, x)); }

 private:
  Conv2dParams& conv0;
  BatchNormParams& bn0;
  Conv2dParams& conv1;
  BatchNormParams& bn1;
  ConvOp op0, op1;
};

/// ConvBlock: x + [gamma *] BN(conv2(GELU_tanh(BN(conv1(x))))).
class ConvBlock : public Module {
 public:
  ConvBlock(Int dim, bool layer_scale)
      : conv1(make_child<Conv2dParams>("conv1", dim, dim, 3, true, ParamKind::f32)),
        norm1(make_child<BatchNormParams>("norm1", dim, 1e-5)),
        conv2(make_child<Conv2dParams>("conv2", dim, dim, 3, true, ParamKind::f32)),
        norm2(make_child<BatchNormParams>("norm2", dim, 1e-5)),
        gamma(layer_scale ? &param("gamma", {dim}, ParamKind::f32) : nullptr) {}
  void prepare(DType dtype, Device device) {
    op1 = make_conv(conv1, &norm1, nullptr, 1, k::Activation::gelu_tanh, dtype, device);
    op2 = make_conv(conv2, &norm2, gamma, 1, k::Activation::none, dtype, device);
  }
  /// In place on x (B, H, W, C).
  void forward(Context& ctx, const Tensor& x) const { op2.run(ctx, op1.run(ctx, x), /*residual=*/x, /*out=*/x); }

 private:
  Conv2dParams& conv1;
  BatchNormParams& norm1;
  Conv2dParams& conv2;
  BatchNormParams& norm2;
  Param* gamma;
  ConvOp op1, op2;
};

/// Downsample: conv 3x3 stride 2, no bias (reduction.0), doubling the width.
class Downsample : public Module {
 public:
  explicit Downsample(Int dim) : conv(make_child<Conv2dParams>("reduction.0", dim, 2 * dim, 3, false, ParamKind::f32)) {}
  void prepare(DType dtype, Device device) { op = make_conv(conv, nullptr, nullptr, 2, k::Activation::none, dtype, device); }
  Tensor forward(Context& ctx, const Tensor& x) const { return op.run(ctx, x); }

 private:
  Conv2dParams& conv;
  ConvOp op;
};

// ---- Token mixers -----------------------------------------------------------------------------

class TokenMixer : public Module {
 public:
  /// h (Bw, L, C) -> out (Bw, L, C) [+ residual, which may be out itself].
  virtual void forward(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const = 0;
};

/// MambaVisionMixer (d_state 8, d_conv 3, expand 1):
///   x, z = split(in_proj(h));  x = silu(conv1d_x(x));  z = silu(conv1d_z(z))   ('same' padding)
///   dt, B, C = split(x_proj(x));  delta = dt_proj(dt)            (dt_proj's bias included here,
///   y = selective_scan(x, delta, A, B, C, D, delta_bias = dt_proj.bias, softplus)   and again
///   out = out_proj(concat(y, z))                                                    as delta_bias)
/// The official code adds dt_proj.bias twice (once in the Linear, once as the scan's delta_bias);
/// this port does the same.
class MambaMixer : public TokenMixer {
 public:
  static constexpr Int kState = 8, kConv = 3;
  explicit MambaMixer(Int d_model)
      : d_inner(d_model),
        half(d_model / 2),
        dt_rank((d_model + 15) / 16),
        in_proj(make_child<LinearParams>("in_proj", d_model, d_inner, false)),
        x_proj(make_child<LinearParams>("x_proj", half, dt_rank + 2 * kState, false)),
        dt_proj(make_child<LinearParams>("dt_proj", dt_rank, half, true, ParamKind::f32)),
        A_log(param("A_log", {half, kState}, ParamKind::f32)),
        D(param("D", {half}, ParamKind::f32)),
        out_proj(make_child<LinearParams>("out_proj", d_inner, d_model, false)),
        conv_x(make_child<ConvWeight>("conv1d_x", half)),
        conv_z(make_child<ConvWeight>("conv1d_z", half)) {}

  void on_loaded(Context&) override {
    // A = -exp(A_log), once, in f32 on the host (load time).
    Tensor a = host_f32(A_log);
    float* p = a.data<float>();
    for (Int i = 0; i < a.numel(); ++i) p[i] = -std::exp(p[i]);
    A = a.to(A_log.value.device());
  }

  void forward(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const override {
    const Int bw = h.size(0), L = h.size(1);
    const DType dt = h.dtype();
    const Tensor xz = in_proj.run(ctx, h);  // (Bw, L, C): x | z
    Tensor xc = new_tensor(ctx, {bw, L, half}, dt);
    Tensor ycat = new_tensor(ctx, {bw, L, d_inner}, dt);  // scan output | gated z
    conv(ctx, xz.slice(2, 0, half), conv_x, xc);
    conv(ctx, xz.slice(2, half, d_inner), conv_z, ycat.slice(2, half, d_inner));
    const Tensor x_dbl = x_proj.run(ctx, xc);  // (Bw, L, R + 2N)
    const Tensor delta = dt_proj.run(ctx, x_dbl.slice(2, 0, dt_rank));
    k::SelectiveScanArgs s;
    s.u = xc.transpose(1, 2);
    s.delta = delta.transpose(1, 2);
    s.A = A;
    s.B = x_dbl.slice(2, dt_rank, dt_rank + kState).transpose(1, 2);
    s.C = x_dbl.slice(2, dt_rank + kState, dt_rank + 2 * kState).transpose(1, 2);
    s.D = D.value;
    s.delta_bias = dt_proj.bias->value;
    s.delta_softplus = true;
    s.out = ycat.slice(2, 0, half).transpose(1, 2);
    k::selective_scan(ctx, s);
    out_proj.run(ctx, ycat, out, residual);
  }

 private:
  class ConvWeight : public Module {
   public:
    explicit ConvWeight(Int channels) : weight(param("weight", {channels, 1, kConv})) {}
    Param& weight;
  };
  static void conv(Context& ctx, const Tensor& x, const ConvWeight& w, const Tensor& out) {
    k::Conv1dArgs a;
    a.x = x;
    a.weight = w.weight.value;
    a.out = out;
    a.layout = k::Conv1dLayout::token_major;
    a.padding = k::Conv1dPadding::same;
    a.silu = true;
    k::conv1d(ctx, a);
  }

  Int d_inner, half, dt_rank;
  LinearParams& in_proj;
  LinearParams& x_proj;
  LinearParams& dt_proj;
  Param& A_log;
  Param& D;
  LinearParams& out_proj;
  ConvWeight& conv_x;
  ConvWeight& conv_z;
  Tensor A;
};

/// Window self-attention (timm-style Attention, scaled_dot_product_attention with the default
/// scale head_dim^-0.5), optional LayerNorm on q and k.
class WindowAttention : public TokenMixer {
 public:
  WindowAttention(Int dim, Int heads, bool qkv_bias, bool qk_norm)
      : dim(dim),
        heads(heads),
        head_dim(dim / heads),
        qkv(make_child<LinearParams>("qkv", dim, 3 * dim, qkv_bias)),
        q_norm(qk_norm ? &make_child<LayerNormParams>("q_norm", dim / heads) : nullptr),
        k_norm(qk_norm ? &make_child<LayerNormParams>("k_norm", dim / heads) : nullptr),
        proj(make_child<LinearParams>("proj", dim, dim, true)) {}

  void forward(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const override {
    const Int bw = h.size(0), L = h.size(1);
    const DType dt = h.dtype();
    const Tensor t = qkv.run(ctx, h).view({bw, L, 3, heads, head_dim});
    // (Bw, heads, L, hd) views into the projection output.
    Tensor q = t.select(2, 0).permute({0, 2, 1, 3});
    Tensor kk = t.select(2, 1).permute({0, 2, 1, 3});
    const Tensor v = t.select(2, 2).permute({0, 2, 1, 3});
    if (q_norm) {
      q = normed(ctx, t.select(2, 0), *q_norm);
      kk = normed(ctx, t.select(2, 1), *k_norm);
    }
    Tensor o = new_tensor(ctx, {bw, L, heads, head_dim}, dt);
    k::AttentionArgs a;
    a.q = q;
    a.k = kk;
    a.v = v;
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    a.out = o.permute({0, 2, 1, 3});
    k::attention(ctx, a);
    proj.run(ctx, o.view({bw, L, dim}), out, residual);
  }

 private:
  // LayerNorm(head_dim) of a (Bw, L, heads, hd) view, into a contiguous copy, as (Bw, heads, L, hd).
  Tensor normed(Context& ctx, const Tensor& part, const LayerNormParams& norm) const {
    Tensor c = new_tensor(ctx, part.shape(), part.dtype());
    c.copy_from(part);
    const Tensor rows = c.view({-1, head_dim});
    norm.run(ctx, rows, rows);
    return c.permute({0, 2, 1, 3});
  }

  Int dim, heads, head_dim;
  LinearParams& qkv;
  LayerNormParams* q_norm;
  LayerNormParams* k_norm;
  LinearParams& proj;
};

/// timm Mlp: fc1 -> GELU (exact) -> fc2.
class Mlp : public Module {
 public:
  Mlp(Int dim, Int hidden)
      : fc1(make_child<LinearParams>("fc1", dim, hidden, true)), fc2(make_child<LinearParams>("fc2", hidden, dim, true)) {}
  void forward(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const {
    fc2.run(ctx, fc1.run(ctx, h, Tensor(), Tensor(), k::Activation::gelu), out, residual);
  }
  LinearParams& fc1;
  LinearParams& fc2;
};

/// Block: x + gamma_1 * mixer(norm1(x)); x + gamma_2 * mlp(norm2(x)).
class Block : public Module {
 public:
  Block(Int dim, Int heads, bool attention, const MambaVisionConfig& c, Int mlp_hidden)
      : norm1(make_child<LayerNormParams>("norm1", dim)),
        mixer(attention ? static_cast<TokenMixer&>(make_child<WindowAttention>("mixer", dim, heads, c.qkv_bias, c.qk_norm))
                        : static_cast<TokenMixer&>(make_child<MambaMixer>("mixer", dim))),
        norm2(make_child<LayerNormParams>("norm2", dim)),
        mlp(make_child<Mlp>("mlp", dim, mlp_hidden)),
        gamma_1(c.layer_scale ? &param("gamma_1", {dim}, ParamKind::f32) : nullptr),
        gamma_2(c.layer_scale ? &param("gamma_2", {dim}, ParamKind::f32) : nullptr) {}

  /// In place on the windows x (Bw, L, C).
  void forward(Context& ctx, const Tensor& x, Taps* taps, const std::string& name) const {
    Tensor h = new_tensor(ctx, x.shape(), x.dtype());
    norm1.run(ctx, x, h);
    if (gamma_1 || taps) {
      Tensor m = new_tensor(ctx, x.shape(), x.dtype());
      mixer.forward(ctx, h, m, Tensor());
      record(taps, name + ".mixer", m);
      k::add(ctx, x, m, x, gamma_1 ? gamma_1->value : Tensor());
    } else {
      mixer.forward(ctx, h, x, x);  // residual fused into the output projection
    }
    norm2.run(ctx, x, h);
    if (gamma_2) {
      Tensor m = new_tensor(ctx, x.shape(), x.dtype());
      mlp.forward(ctx, h, m, Tensor());
      k::add(ctx, x, m, x, gamma_2->value);
    } else {
      mlp.forward(ctx, h, x, x);
    }
    record(taps, name, x);
  }

 private:
  LayerNormParams& norm1;
  TokenMixer& mixer;
  LayerNormParams& norm2;
  Mlp& mlp;
  Param* gamma_1;
  Param* gamma_2;
};

/// MambaVisionLayer: conv blocks (stages 0, 1) or windowed token blocks (stages 2, 3), then the
/// optional Downsample.
class Level : public Module {
 public:
  Level(int index, const MambaVisionConfig& c) : index(index), conv(index < 2), window(c.window_size[index]) {
    const Int dim = c.stage_dim(index);
    const std::vector<int> attn = MambaVisionConfig::attention_blocks(c.depths[index]);
    const Int hidden = static_cast<Int>(std::floor(dim * c.mlp_ratio));
    for (int j = 0; j < c.depths[index]; ++j) {
      const std::string name = "blocks." + std::to_string(j);
      if (conv) {
        conv_blocks.push_back(&make_child<ConvBlock>(name, dim, c.layer_scale_conv));
      } else {
        const bool is_attention = std::find(attn.begin(), attn.end(), j) != attn.end();
        blocks.push_back(&make_child<Block>(name, dim, c.num_heads[index], is_attention, c, hidden));
      }
    }
    if (index < 3) downsample = &make_child<Downsample>("downsample", dim);
  }

  void prepare(DType dtype, Device device) {
    for (ConvBlock* b : conv_blocks) b->prepare(dtype, device);
    if (downsample) downsample->prepare(dtype, device);
  }

  /// x (B, H, W, C) -> the stage output before downsampling (written into x for conv stages).
  Tensor forward_blocks(Context& ctx, const Tensor& x, Taps* taps) const {
    if (conv) {
      for (const ConvBlock* b : conv_blocks) b->forward(ctx, x);
      return x;
    }
    if (blocks.empty()) return x;
    // Zero-pad to whole windows (the pad takes part in the scan and the attention, as in the
    // official code), run every block on the windows, then reverse and crop.
    const Int B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
    const Int nh = (H + window - 1) / window, nw = (W + window - 1) / window;
    Tensor windows = new_tensor(ctx, {B * nh * nw, window * window, C}, x.dtype());
    k::window_partition(ctx, x, static_cast<int>(window), windows);
    for (std::size_t j = 0; j < blocks.size(); ++j)
      blocks[j]->forward(ctx, windows, taps, "level" + std::to_string(index) + ".block" + std::to_string(j));
    Tensor out = new_tensor(ctx, x.shape(), x.dtype());
    k::window_reverse(ctx, windows, static_cast<int>(window), out);
    return out;
  }

  Tensor forward_downsample(Context& ctx, const Tensor& x) const { return downsample ? downsample->forward(ctx, x) : x; }

 private:
  int index;
  bool conv;
  Int window;
  std::vector<ConvBlock*> conv_blocks;
  std::vector<Block*> blocks;
  Downsample* downsample = nullptr;
};

// ---- The model --------------------------------------------------------------------------------

class MambaVision : public VisionModel {
 public:
  explicit MambaVision(const MambaVisionConfig& c)
      : config_(c),
        patch_embed_(make_child<PatchEmbed>("patch_embed", c.in_chans, c.in_dim, c.dim)),
        levels_{&make_child<Level>("levels.0", 0, c), &make_child<Level>("levels.1", 1, c),
                &make_child<Level>("levels.2", 2, c), &make_child<Level>("levels.3", 3, c)},
        norm_(make_child<BatchNormParams>("norm", c.num_features(), 1e-5)),
        head_(make_child<LinearParams>("head", c.num_features(), c.num_classes, true)) {}

  int num_classes() const override { return config_.num_classes; }

  void check_input(const Shape& s) const override {
    if (s.size() != 4) throw Error("images", "expected (batch, channels, H, W), got " + shape_str(s));
    if (s[1] != config_.in_chans)
      throw Error("images", "expected " + std::to_string(config_.in_chans) + " channels, got " + shape_str(s));
    if (s[0] < 1 || s[2] < 1 || s[3] < 1) throw Error("images", "empty batch or image: " + shape_str(s));
    if (s[2] > kMaxSide || s[3] > kMaxSide)
      throw Error("images", "image side above " + std::to_string(kMaxSide) + " pixels: " + shape_str(s));
  }

  Tensor forward(Context& ctx, const Tensor& images) override {
    Tensor x = run_stages(ctx, images, nullptr);
    // BatchNorm is per channel and affine, so it commutes with the average pool: pool first
    // (f32 accumulation), then normalise the (B, C) vector.
    const Int B = x.size(0), C = x.size(3);
    Tensor pooled = new_tensor(ctx, {B, C}, x.dtype());
    k::mean_tokens(ctx, x.view({B, -1, C}), pooled);
    k::BatchNormArgs bn;
    bn.x = pooled;
    bn.weight = norm_.weight.value;
    bn.bias = norm_.bias.value;
    bn.running_mean = norm_.running_mean.value;
    bn.running_var = norm_.running_var.value;
    bn.eps = static_cast<float>(norm_.eps);
    bn.out = pooled;
    k::batch_norm(ctx, bn);
    record(taps, "pooled", pooled);
    Tensor logits = head_.run(ctx, pooled);
    return logits.dtype() == DType::f32 ? logits : logits.to(DType::f32);
  }

  std::vector<Tensor> forward_features(Context& ctx, const Tensor& images) override {
    std::vector<Tensor> features;
    run_stages(ctx, images, &features);
    return features;
  }

 protected:
  void on_loaded(Context& ctx) override {
    // Children are finalised first; the conv folds need the compute dtype, which the loader
    // gave every ParamKind::weight tensor (the head's weight is one).
    dtype_ = head_.weight.value.dtype();
    const Device device = ctx.device();
    patch_embed_.prepare(dtype_, device);
    for (Level* l : levels_) l->prepare(dtype_, device);
  }

 private:
  // Stem and the four stages; returns the last stage output (B, H/32, W/32, 8 dim) NHWC.
  // `features` (optional) collects each stage's output before downsampling, NCHW f32.
  Tensor run_stages(Context& ctx, const Tensor& images, std::vector<Tensor>* features) {
    check_input(images.shape());
    if (images.device() != ctx.device()) throw Error("images", "not on the model's device (" + images.describe() + ")");
    if (!dtype_known())
      throw Error("mambavision", "weights are not loaded");
    Tensor nhwc = new_tensor(ctx, {images.size(0), images.size(2), images.size(3), images.size(1)}, dtype_);
    nhwc.copy_from(images.permute({0, 2, 3, 1}));
    Tensor x = patch_embed_.forward(ctx, nhwc);
    record_nchw(taps, "patch_embed", x);
    for (int i = 0; i < 4; ++i) {
      x = levels_[i]->forward_blocks(ctx, x, taps);
      if (features) features->push_back(x.permute({0, 3, 1, 2}).to(DType::f32));
      x = levels_[i]->forward_downsample(ctx, x);
      record_nchw(taps, "level" + std::to_string(i), x);
    }
    return x;
  }
  bool dtype_known() const { return head_.weight.value.defined(); }

  MambaVisionConfig config_;
  PatchEmbed& patch_embed_;
  std::array<Level*, 4> levels_;
  BatchNormParams& norm_;
  LinearParams& head_;
  DType dtype_ = DType::f32;
};

}  // namespace

std::unique_ptr<VisionModel> build_mambavision(const Json& args) {
  return std::make_unique<MambaVision>(parse_mambavision_args(args));
}

}  // namespace mcv::vision
