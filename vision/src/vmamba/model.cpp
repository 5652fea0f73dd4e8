// VMamba forward pass. Module and parameter names are the official ones
// (patch_embed.0.weight, layers.2.blocks.3.op.x_proj_weight, classifier.head.bias, ...), so
// official state dicts load by name. Activations stay NHWC / token-major (B, H, W, C) from the
// patch embedding to the head; the official channel-first variants ("ln2d": Linear2d,
// LayerNorm2d) compute the same per-position function on NCHW, so one code path serves both.
//
// SS2D runs without cross-scanned copies: x_proj and dt_proj are computed once per grid position
// for all four directions (a projection commutes with the permutation a scan order applies), and
// the fused 2D selective scan reads u, delta, B and C in grid order and writes the cross-merged
// sum back at grid positions.

#include <algorithm>
#include <cmath>

#include "mcv/kernels/nn.h"
#include "mcv/kernels/patch_merge.h"
#include "mcv/kernels/selective_scan.h"
#include "vmamba.h"

namespace mcv::vision {

namespace {

namespace k = mcv::kernels;

using Int = std::int64_t;

// Largest input side accepted: keeps every grid index within the 32-bit reach of the kernels and
// turns absurd sizes into a clear error rather than an allocation failure inside a stage.
constexpr Int kMaxSide = 16384;
constexpr float kNormEps = 1e-5f;  // nn.LayerNorm / LayerNorm2d / nn.BatchNorm2d defaults
constexpr int kDirections = 4;    // SS2D k_group

Tensor new_tensor(const Context& ctx, const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, ctx.device());
}

Tensor host_f32(const Param& p) { return p.value.to(Device::cpu()).to(DType::f32); }

// ---- Layers with the official parameter names --------------------------------------------------

/// nn.LayerNorm / LayerNorm2d (weight, bias) or nn.BatchNorm2d in eval mode (weight, bias,
/// running statistics); both normalise the channel axis, which is the last one here.
class Norm : public Module {
 public:
  Norm(Int channels, VmambaNorm kind)
      : kind_(kind),
        weight_(param("weight", {channels}, ParamKind::f32)),
        bias_(param("bias", {channels}, ParamKind::f32)) {
    if (kind_ == VmambaNorm::batch_norm) {
      mean_ = &param("running_mean", {channels}, ParamKind::f32);
      var_ = &param("running_var", {channels}, ParamKind::f32);
      param("num_batches_tracked", {}, ParamKind::ignored);
    }
  }
  /// x and out: (..., C) rows views; out may be x itself.
  void run(Context& ctx, const Tensor& x, const Tensor& out) const {
    if (kind_ == VmambaNorm::layer_norm) {
      k::NormArgs a;
      a.x = x;
      a.weight = weight_.value;
      a.bias = bias_.value;
      a.eps = kNormEps;
      a.out = out;
      k::layer_norm(ctx, a);
    } else {
      k::BatchNormArgs a;
      a.x = x;
      a.weight = weight_.value;
      a.bias = bias_.value;
      a.running_mean = mean_->value;
      a.running_var = var_->value;
      a.eps = kNormEps;
      a.out = out;
      k::batch_norm(ctx, a);
    }
  }

 private:
  VmambaNorm kind_;
  Param& weight_;
  Param& bias_;
  Param* mean_ = nullptr;
  Param* var_ = nullptr;
};

/// nn.Linear or Linear2d (the channel-first layers). The bias stays in the compute dtype so the
/// GEMM epilogue can fuse it. Linear2d stores an nn.Linear weight (out, in), but its loader also
/// takes a 1x1 conv weight (out, in, 1, 1).
class Linear : public Module {
 public:
  Linear(Int in, Int out, bool bias, bool linear2d = false)
      : weight_(param("weight", {out, in})), bias_(bias ? &param("bias", {out}) : nullptr) {
    if (linear2d) weight_.alt_shapes = {{out, in, 1, 1}};
  }
  /// out = act(x W^T + b) + residual; out allocated when undefined; residual may be out itself.
  Tensor run(Context& ctx, const Tensor& x, Tensor out = Tensor(), const Tensor& residual = Tensor(),
             k::Activation act = k::Activation::none) const {
    return run_rows(ctx, x, weight_.value, bias_ ? bias_->value : Tensor(), out, residual, act);
  }
  const Tensor& weight() const { return weight_.value; }

  static Tensor run_rows(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor out,
                         const Tensor& residual, k::Activation act) {
    if (!out.defined()) {
      Shape s = x.shape();
      s.back() = weight.size(0);
      out = new_tensor(ctx, s, x.dtype());
    }
    k::LinearArgs a;
    a.x = x;
    a.weight = weight;
    a.bias = bias;
    a.residual = residual;
    a.activation = act;
    a.out = out;
    k::linear(ctx, a);
    return out;
  }

 private:
  Param& weight_;
  Param* bias_;
};

/// nn.Conv2d on NHWC activations; the OHWI copy of the weight is made once at load.
class Conv2d : public Module {
 public:
  Conv2d(Int in, Int out, Int kernel, int stride, int pad, int groups, bool bias)
      : kernel_(kernel),
        stride_(stride),
        pad_(pad),
        groups_(groups),
        weight_(param("weight", {out, in / groups, kernel, kernel})),
        bias_(bias ? &param("bias", {out}) : nullptr) {}

  void on_loaded(Context&) override { ohwi_ = k::conv_weight_ohwi(weight_.value); }

  Int out_size(Int in) const { return (in + 2 * pad_ - kernel_) / stride_ + 1; }
  /// Smallest input side the window fits.
  Int min_input() const { return std::max<Int>(1, kernel_ - 2 * pad_); }

  Tensor run(Context& ctx, const Tensor& x, k::Activation act = k::Activation::none) const {
    Tensor out = new_tensor(ctx, {x.size(0), out_size(x.size(1)), out_size(x.size(2)), weight_.shape[0]}, x.dtype());
    k::Conv2dArgs a;
    a.x = x;
    a.weight = ohwi_;
    if (bias_) a.bias = bias_->value;
    a.stride_h = a.stride_w = stride_;
    a.pad_h = a.pad_w = pad_;
    a.groups = groups_;
    a.activation = act;
    a.out = out;
    k::conv2d(ctx, a);
    return out;
  }

 private:
  Int kernel_;
  int stride_, pad_, groups_;
  Param& weight_;
  Param* bias_;
  Tensor ohwi_;
};

// ---- SS2D ------------------------------------------------------------------------------------

/// The 2D selective scan block (SS2Dv0 for forward_type "v0", SS2Dv2 otherwise; same parameters):
///   x [, z] = in_proj(h);  z = act(z)                  (z only without "_noz")
///   x = act(dwconv(x))                                 (no conv when d_conv <= 1)
///   dt_k, B_k, C_k = x_proj_weight[k] x;  delta_k = dt_projs_weight[k] dt_k     (k = 0..3)
///   y = sum_k scan_k(x, delta_k + dt_projs_bias[k], A_k = -exp(A_logs_k), B_k, C_k, Ds_k)
///   y = out_norm(y);  y = gelu(y) ("_oact");  y = y * z;  out = out_proj(y)
class Ss2d : public Module {
 public:
  Ss2d(Int d_model, const VmambaConfig& c, int stage)
      : o_(c.ssm),
        d_model_(d_model),
        d_inner_(c.d_inner(stage)),
        d_state_(c.ssm.d_state),
        dt_rank_(c.dt_rank(stage)),
        in_proj_(make_child<Linear>("in_proj", d_model, o_.z_gate ? 2 * d_inner_ : d_inner_, false, c.channel_first)) {
    if (o_.d_conv > 1)
      conv2d_ = &make_child<Conv2d>("conv2d", d_inner_, d_inner_, o_.d_conv, 1, (o_.d_conv - 1) / 2,
                                    static_cast<int>(d_inner_), o_.conv_bias);
    const Int proj = dt_rank_ + 2 * d_state_;
    x_proj_weight_ = &param("x_proj_weight", {kDirections, proj, d_inner_});
    dt_projs_weight_ = &param("dt_projs_weight", {kDirections, d_inner_, dt_rank_});
    dt_projs_bias_ = &param("dt_projs_bias", {kDirections, d_inner_}, ParamKind::f32);
    A_logs_ = &param("A_logs", {kDirections * d_inner_, d_state_}, ParamKind::f32);
    Ds_ = &param("Ds", {kDirections * d_inner_}, ParamKind::f32);
    // The official get_outnorm module layouts: LayerNorm; Sequential(Permute, Conv2d, Permute);
    // Sequential(LayerNorm, Permute, Conv2d, Permute).
    const int dw = static_cast<int>(d_inner_);
    switch (o_.out_norm) {
      case VmambaOutNorm::layer_norm: out_norm_ = &make_child<Norm>("out_norm", d_inner_, VmambaNorm::layer_norm); break;
      case VmambaOutNorm::none: break;
      case VmambaOutNorm::dwconv3: out_conv_ = &make_child<Conv2d>("out_norm.1", d_inner_, d_inner_, 3, 1, 1, dw, false); break;
      case VmambaOutNorm::cnorm:
        out_norm_ = &make_child<Norm>("out_norm.0", d_inner_, VmambaNorm::layer_norm);
        out_conv_ = &make_child<Conv2d>("out_norm.2", d_inner_, d_inner_, 3, 1, 1, dw, false);
        break;
    }
    out_proj_ = &make_child<Linear>("out_proj", d_inner_, d_model, false, c.channel_first);
  }

  void on_loaded(Context&) override {
    Tensor a = host_f32(*A_logs_);
    float* p = a.data<float>();
    for (Int i = 0; i < a.numel(); ++i) p[i] = -std::exp(p[i]);
    A_ = a.to(A_logs_->value.device());
    const Tensor& w = in_proj_.weight();
    w_x_ = w.slice(0, 0, d_inner_);
    if (o_.z_gate) w_z_ = w.slice(0, d_inner_, 2 * d_inner_);
    x_proj_2d_ = x_proj_weight_->value.view({kDirections * (dt_rank_ + 2 * d_state_), d_inner_});
  }

  /// h (B, H, W, C) normalised input -> out = residual + SS2D(h); residual may be out itself or
  /// undefined.
  void run(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const {
    const Int batch = h.size(0), height = h.size(1), width = h.size(2), len = height * width;
    const DType dt = h.dtype();
    const Int proj = dt_rank_ + 2 * d_state_;
    const k::Activation none = k::Activation::none;

    Tensor x = Linear::run_rows(ctx, h, w_x_, Tensor(), Tensor(), Tensor(), none);
    // silu(z) is applied by the gating multiply itself (one pass over z instead of two).
    const bool gate_silu = o_.z_gate && o_.z_act && o_.act == k::Activation::silu;
    Tensor z;
    if (o_.z_gate)
      z = Linear::run_rows(ctx, h, w_z_, Tensor(), Tensor(), Tensor(), (o_.z_act && !gate_silu) ? o_.act : none);
    if (conv2d_) {
      x = conv2d_->run(ctx, x, o_.act);
    } else {
      k::activation(ctx, o_.act, x, x);
    }

    // Per-position projections of every direction: x_dbl (B, L, K, R + 2N), delta (B, L, K, D).
    const Tensor x_dbl = Linear::run_rows(ctx, x, x_proj_2d_, Tensor(), Tensor(), Tensor(), none);
    const Tensor dbl = x_dbl.view({batch * len, kDirections, proj});
    Tensor delta = new_tensor(ctx, {batch * len, kDirections, d_inner_}, dt);
    k::MatmulArgs m;
    m.a = dbl.slice(2, 0, dt_rank_).permute({1, 0, 2});               // (K, B*L, R)
    m.b = dt_projs_weight_->value.transpose(1, 2);                     // (K, R, D)
    m.out = delta.permute({1, 0, 2});                                  // (K, B*L, D)
    k::matmul(ctx, m);

    // Scan operands as (batch, K, ., L) views of the grid-ordered projections.
    const Tensor grid = x_dbl.view({batch, len, kDirections, proj});
    const Tensor delta4 = delta.view({batch, len, kDirections, d_inner_}).permute({0, 2, 3, 1});
    const Tensor b4 = grid.slice(3, dt_rank_, dt_rank_ + d_state_).permute({0, 2, 3, 1});
    const Tensor c4 = grid.slice(3, dt_rank_ + d_state_, proj).permute({0, 2, 3, 1});
    Tensor y = new_tensor(ctx, {batch, height, width, d_inner_}, dt);
    if (o_.scan == VmambaScanMode::cross2d) {
      k::SelectiveScanArgs s;
      s.u = x.permute({0, 3, 1, 2});
      s.delta = delta4;
      s.A = A_;
      s.B = b4;
      s.C = c4;
      s.D = Ds_->value;
      s.delta_bias = dt_projs_bias_->value;
      s.delta_softplus = true;
      s.directions = k::ScanDirections::cross2d;
      s.out = y.permute({0, 3, 1, 2});
      k::selective_scan(ctx, s);
    } else {
      scan_rows(ctx, x, delta4, b4, c4, y);
    }

    if (out_norm_) out_norm_->run(ctx, y, y);
    if (out_conv_) y = out_conv_->run(ctx, y);
    if (o_.out_act) k::activation(ctx, k::Activation::gelu, y, y);
    if (gate_silu)
      k::mul_silu(ctx, y, z, y);
    else if (o_.z_gate)
      k::mul(ctx, y, z, y);
    Linear::run_rows(ctx, y, out_proj_->weight(), Tensor(), out, residual, none);
  }

 private:
  // The ablation scan modes: four row-major scans (unidi), or two forward and two reverse ones
  // (bidi), each with its own parameters, summed at grid positions.
  void scan_rows(Context& ctx, const Tensor& x, const Tensor& delta4, const Tensor& b4, const Tensor& c4,
                 const Tensor& y) const {
    const Int batch = x.size(0), len = x.size(1) * x.size(2);
    const Tensor u = x.view({batch, len, d_inner_}).permute({0, 2, 1});
    Tensor part;
    for (int kk = 0; kk < kDirections; ++kk) {
      const Tensor target = kk == 0 ? y : (part.defined() ? part : (part = new_tensor(ctx, y.shape(), y.dtype())));
      k::SelectiveScanArgs s;
      s.u = u;
      s.delta = delta4.select(1, kk);
      s.A = A_.slice(0, kk * d_inner_, (kk + 1) * d_inner_);
      s.B = b4.select(1, kk);
      s.C = c4.select(1, kk);
      s.D = Ds_->value.slice(0, kk * d_inner_, (kk + 1) * d_inner_);
      s.delta_bias = dt_projs_bias_->value.select(0, kk);
      s.delta_softplus = true;
      s.directions = (o_.scan == VmambaScanMode::bidi && kk >= 2) ? k::ScanDirections::reverse : k::ScanDirections::forward;
      s.out = target.view({batch, len, d_inner_}).permute({0, 2, 1});
      k::selective_scan(ctx, s);
      if (kk > 0) k::add(ctx, y, target, y);
    }
  }

  Ss2dOptions o_;
  Int d_model_, d_inner_, d_state_, dt_rank_;
  Linear& in_proj_;
  Conv2d* conv2d_ = nullptr;
  Param* x_proj_weight_ = nullptr;
  Param* dt_projs_weight_ = nullptr;
  Param* dt_projs_bias_ = nullptr;
  Param* A_logs_ = nullptr;
  Param* Ds_ = nullptr;
  Norm* out_norm_ = nullptr;
  Conv2d* out_conv_ = nullptr;
  Linear* out_proj_ = nullptr;
  Tensor A_, w_x_, w_z_, x_proj_2d_;
};

// ---- Blocks, stages, stem ---------------------------------------------------------------------

/// Mlp (fc1 -> act -> fc2) or gMlp (fc1 to 2*hidden, x * act(z), fc2).
class Mlp : public Module {
 public:
  Mlp(Int dim, Int hidden, k::Activation act, bool gated, bool linear2d)
      : hidden_(hidden),
        act_(act),
        gated_(gated),
        fc1_(make_child<Linear>("fc1", dim, gated ? 2 * hidden : hidden, true, linear2d)),
        fc2_(make_child<Linear>("fc2", hidden, dim, true, linear2d)) {}
  /// out = residual + mlp(h); residual may be out itself.
  void run(Context& ctx, const Tensor& h, const Tensor& out, const Tensor& residual) const {
    if (!gated_) {
      fc2_.run(ctx, fc1_.run(ctx, h, Tensor(), Tensor(), act_), out, residual);
      return;
    }
    const Tensor xz = fc1_.run(ctx, h);
    const Tensor x = xz.slice(-1, 0, hidden_), zz = xz.slice(-1, hidden_, 2 * hidden_);
    Shape s = xz.shape();
    s.back() = hidden_;
    Tensor g = new_tensor(ctx, s, h.dtype());
    if (act_ == k::Activation::silu) {
      k::mul_silu(ctx, x, zz, g);
    } else {
      k::activation(ctx, act_, zz, g);
      k::mul(ctx, x, g, g);
    }
    fc2_.run(ctx, g, out, residual);
  }

 private:
  Int hidden_;
  k::Activation act_;
  bool gated_;
  Linear& fc1_;
  Linear& fc2_;
};

/// VSSBlock: x = x + op(norm(x)); x = x + mlp(norm2(x)).
class VssBlock : public Module {
 public:
  VssBlock(Int dim, const VmambaConfig& c, int stage) {
    if (c.ssm_branch()) {
      norm_ = &make_child<Norm>("norm", dim, c.norm);
      op_ = &make_child<Ss2d>("op", dim, c, stage);
    }
    if (c.mlp_branch()) {
      norm2_ = &make_child<Norm>("norm2", dim, c.norm);
      mlp_ = &make_child<Mlp>("mlp", dim, static_cast<Int>(dim * c.mlp_ratio), c.mlp_act, c.gmlp, c.channel_first);
    }
  }

  /// In place on x (B, H, W, C). `ss2d_out`: also return the SS2D output (before the residual
  /// add) in a tensor of its own.
  void run(Context& ctx, const Tensor& x, Tensor* ss2d_out = nullptr) const {
    if (!norm_ && !mlp_) return;
    Tensor h = new_tensor(ctx, x.shape(), x.dtype());
    if (op_) {
      norm_->run(ctx, x, h);
      if (ss2d_out) {
        *ss2d_out = new_tensor(ctx, x.shape(), x.dtype());
        op_->run(ctx, h, *ss2d_out, Tensor());
        k::add(ctx, x, *ss2d_out, x);
      } else {
        op_->run(ctx, h, x, x);
      }
    }
    if (mlp_) {
      norm2_->run(ctx, x, h);
      mlp_->run(ctx, h, x, x);
    }
  }

 private:
  Norm* norm_ = nullptr;
  Ss2d* op_ = nullptr;
  Norm* norm2_ = nullptr;
  Mlp* mlp_ = nullptr;
};

/// patch_embed: v1 = Conv(k=p, s=p) [Permute] Norm; v2 = Conv(k=p/2+1, s=p/2, pad 1) [Permute]
/// Norm [Permute] GELU Conv [Permute] Norm. Norms only with patch_norm. Indices are the
/// official Sequential positions (Permute/Identity slots hold no parameters).
class PatchEmbed : public Module {
 public:
  explicit PatchEmbed(const VmambaConfig& c) : v2_(c.patchembed_version == "v2") {
    const Int dim = c.dims[0];
    if (!v2_) {
      conv0_ = &make_child<Conv2d>("0", c.in_chans, dim, c.patch_size, c.patch_size, 0, 1, true);
      if (c.patch_norm) norm0_ = &make_child<Norm>("2", dim, c.norm);
      return;
    }
    const int stride = c.patch_size / 2;
    const Int kernel = stride + 1;
    conv0_ = &make_child<Conv2d>("0", c.in_chans, dim / 2, kernel, stride, 1, 1, true);
    if (c.patch_norm) norm0_ = &make_child<Norm>("2", dim / 2, c.norm);
    conv1_ = &make_child<Conv2d>("5", dim / 2, dim, kernel, stride, 1, 1, true);
    if (c.patch_norm) norm1_ = &make_child<Norm>("7", dim, c.norm);
  }

  /// Output grid side for an input side, or 0 when a conv window does not fit.
  Int out_side(Int in) const {
    if (in < conv0_->min_input()) return 0;
    Int s = conv0_->out_size(in);
    if (!conv1_) return s;
    if (s < conv1_->min_input()) return 0;
    return conv1_->out_size(s);
  }

  Tensor run(Context& ctx, const Tensor& x) const {
    if (!conv1_) {
      Tensor h = conv0_->run(ctx, x);
      if (norm0_) norm0_->run(ctx, h, h);
      return h;
    }
    Tensor h;
    if (norm0_) {
      h = conv0_->run(ctx, x);
      norm0_->run(ctx, h, h);
      k::activation(ctx, k::Activation::gelu, h, h);
    } else {
      h = conv0_->run(ctx, x, k::Activation::gelu);
    }
    h = conv1_->run(ctx, h);
    if (norm1_) norm1_->run(ctx, h, h);
    return h;
  }

 private:
  bool v2_;
  Conv2d* conv0_ = nullptr;
  Norm* norm0_ = nullptr;
  Conv2d* conv1_ = nullptr;
  Norm* norm1_ = nullptr;
};

/// layers.i.downsample: v1 PatchMerging2D (2x2 gather with zero padding, norm(4C), reduction);
/// v2 [Permute] Conv(k2, s2) [Permute] Norm; v3 [Permute] Conv(k3, s2, pad 1) [Permute] Norm.
class Downsample : public Module {
 public:
  Downsample(Int dim, Int out_dim, const VmambaConfig& c) {
    if (c.downsample_version == "v1") {
      reduction_ = &make_child<Linear>("reduction", 4 * dim, out_dim, false, c.channel_first);
      norm_ = &make_child<Norm>("norm", 4 * dim, c.norm);
      return;
    }
    const bool v3 = c.downsample_version == "v3";
    conv_ = &make_child<Conv2d>("1", dim, out_dim, v3 ? 3 : 2, 2, v3 ? 1 : 0, 1, true);
    norm_ = &make_child<Norm>("3", out_dim, c.norm);
  }

  Int out_side(Int in) const {
    if (!conv_) return (in + 1) / 2;
    return in < conv_->min_input() ? 0 : conv_->out_size(in);
  }

  Tensor run(Context& ctx, const Tensor& x) const {
    if (conv_) {
      Tensor h = conv_->run(ctx, x);
      norm_->run(ctx, h, h);
      return h;
    }
    Tensor merged = new_tensor(ctx, {x.size(0), (x.size(1) + 1) / 2, (x.size(2) + 1) / 2, 4 * x.size(3)}, x.dtype());
    k::PatchMergeArgs a;
    a.x = x;
    a.out = merged;
    k::patch_merge(ctx, a);
    norm_->run(ctx, merged, merged);
    return reduction_->run(ctx, merged);
  }

 private:
  Linear* reduction_ = nullptr;
  Conv2d* conv_ = nullptr;
  Norm* norm_ = nullptr;
};

/// layers.i: blocks.0..n-1, then downsample (all stages but the last).
class Stage : public Module {
 public:
  Stage(int index, const VmambaConfig& c) {
    const Int dim = c.dims[index];
    for (int j = 0; j < c.depths[index]; ++j)
      blocks_.push_back(&make_child<VssBlock>("blocks." + std::to_string(j), dim, c, index));
    if (index + 1 < c.num_stages()) downsample_ = &make_child<Downsample>("downsample", dim, c.dims[index + 1], c);
  }
  const std::vector<VssBlock*>& blocks() const { return blocks_; }
  const Downsample* downsample() const { return downsample_; }

 private:
  std::vector<VssBlock*> blocks_;
  Downsample* downsample_ = nullptr;
};

// ---- VSSM -------------------------------------------------------------------------------------

class Vssm : public VisionModel {
 public:
  explicit Vssm(VmambaConfig c) : c_(std::move(c)) {
    patch_embed_ = &make_child<PatchEmbed>("patch_embed", c_);
    if (c_.posembed) {
      pos_side_ = c_.imgsize / c_.patch_size;
      pos_embed_ = &param("pos_embed", {1, c_.dims[0], pos_side_, pos_side_});
    }
    for (int i = 0; i < c_.num_stages(); ++i) stages_.push_back(&make_child<Stage>("layers." + std::to_string(i), i, c_));
    const Int features = c_.dims.back();
    norm_ = &make_child<Norm>("classifier.norm", features, c_.norm);
    head_ = &make_child<Linear>("classifier.head", features, c_.num_classes, true);
  }

  int num_classes() const override { return c_.num_classes; }

  void on_loaded(Context&) override {
    dtype_ = head_->weight().dtype();
    if (pos_embed_)  // (1, C, g, g) -> (g*g, C), the NHWC rows the embedding is added to
      pos_rows_ = pos_embed_->value.permute({0, 2, 3, 1}).contiguous().view({pos_side_ * pos_side_, c_.dims[0]});
  }

  void check_input(const Shape& s) const override {
    const std::string subject = "input " + shape_str(s);
    if (s.size() != 4) throw Error(subject, "expected images (batch, " + std::to_string(c_.in_chans) + ", H, W)");
    if (s[0] < 1) throw Error(subject, "empty batch");
    if (s[1] != c_.in_chans)
      throw Error(subject, "expected " + std::to_string(c_.in_chans) + " channels, got " + std::to_string(s[1]));
    for (int axis : {2, 3}) {
      const Int side = s[axis];
      const char* name = axis == 2 ? "height" : "width";
      if (side > kMaxSide)
        throw Error(subject, std::string(name) + " " + std::to_string(side) + " is above the supported " +
                                 std::to_string(kMaxSide));
      Int g = patch_embed_->out_side(side);
      if (g < 1) throw Error(subject, std::string(name) + " " + std::to_string(side) + " is smaller than the patch embedding window");
      if (pos_embed_ && g != pos_side_)
        throw Error(subject, std::string(name) + " " + std::to_string(side) + " gives a " + std::to_string(g) +
                                 "-patch grid, but the position embedding (posembed, imgsize " +
                                 std::to_string(c_.imgsize) + ") needs " + std::to_string(pos_side_));
      for (const Stage* st : stages_)
        if (st->downsample()) {
          g = st->downsample()->out_side(g);
          if (g < 1)
            throw Error(subject, std::string(name) + " " + std::to_string(side) + " is too small: a downsampling layer gets an empty grid");
        }
    }
  }

  Tensor forward(Context& ctx, const Tensor& images) override {
    const Tensor pooled = run(ctx, images, nullptr);
    Tensor logits = head_->run(ctx, pooled);
    return logits.dtype() == DType::f32 ? logits : logits.to(DType::f32);
  }

  std::vector<Tensor> forward_features(Context& ctx, const Tensor& images) override {
    std::vector<Tensor> features;
    run(ctx, images, &features);
    return features;
  }

 private:
  // Records a private copy in the official layout: NHWC, or NCHW for the channel-first variants.
  void tap_grid(const std::string& name, const Tensor& nhwc) {
    if (!taps || taps->values.count(name)) return;
    taps->record(name, c_.channel_first ? nhwc.permute({0, 3, 1, 2}).contiguous() : nhwc.clone());
  }

  /// Patch embedding and stages; returns the pooled features (B, C) (norm + average pool), or
  /// fills `features` with every stage output (B, C_i, H_i, W_i) f32 instead.
  Tensor run(Context& ctx, const Tensor& images, std::vector<Tensor>* features) {
    check_input(images.shape());
    if (images.device() != ctx.device()) throw Error("images", "are on " + images.device().str() + ", the model on " + ctx.device().str());
    if (images.dtype() != DType::f32) throw Error("images", std::string("expected f32, got ") + dtype_name(images.dtype()));
    Tensor x = images.permute({0, 2, 3, 1}).contiguous();
    if (dtype_ != DType::f32) x = x.to(dtype_);
    Tensor h = patch_embed_->run(ctx, x);
    if (pos_embed_)
      for (Int b = 0; b < h.size(0); ++b) {
        const Tensor rows = h.select(0, b).view({pos_side_ * pos_side_, c_.dims[0]});
        k::add(ctx, rows, pos_rows_, rows);
      }
    tap_grid("patch_embed", h);
    for (std::size_t i = 0; i < stages_.size(); ++i) {
      const Stage& st = *stages_[i];
      for (std::size_t j = 0; j < st.blocks().size(); ++j) {
        if (taps && i == 0 && j == 0) {
          Tensor y;
          st.blocks()[j]->run(ctx, h, &y);
          if (y.defined()) tap_grid("block0.ss2d", y);
        } else {
          st.blocks()[j]->run(ctx, h);
        }
      }
      tap_grid("stage" + std::to_string(i), h);
      if (features) {
        Tensor f = h.permute({0, 3, 1, 2}).contiguous();
        features->push_back(f.dtype() == DType::f32 ? f : f.to(DType::f32));
      }
      if (st.downsample()) h = st.downsample()->run(ctx, h);
    }
    if (features) return Tensor();
    const Int batch = h.size(0), len = h.size(1) * h.size(2), ch = h.size(3);
    Tensor normed = new_tensor(ctx, h.shape(), h.dtype());
    norm_->run(ctx, h, normed);
    Tensor pooled = new_tensor(ctx, {batch, ch}, h.dtype());
    k::mean_tokens(ctx, normed.view({batch, len, ch}), pooled);
    if (taps && !taps->values.count("pooled")) taps->record("pooled", pooled);
    return pooled;
  }

  VmambaConfig c_;
  DType dtype_ = DType::f32;
  PatchEmbed* patch_embed_ = nullptr;
  Param* pos_embed_ = nullptr;
  Int pos_side_ = 0;
  Tensor pos_rows_;
  std::vector<Stage*> stages_;
  Norm* norm_ = nullptr;
  Linear* head_ = nullptr;
};

}  // namespace

std::unique_ptr<VisionModel> build_vmamba(const Json& args) { return std::make_unique<Vssm>(parse_vmamba_args(args)); }

}  // namespace mcv::vision
