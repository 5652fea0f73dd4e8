#pragma once
// Vision Mamba (hustvl/Vim, vim/models_mamba.py `VisionMamba`, with the bidirectional "v2" Mamba
// mixer of its vendored mamba-1p1p1/mamba_ssm/modules/mamba_simple.py). Internal to mcv::vision.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "model.h"

namespace mcv::vision::vim {

/// What forward_features returns at the end of the trunk (`final_pool_type`).
enum class FinalPool { none, mean, max, all };

/// The official constructor arguments after validation, plus the values derived from them.
struct VimConfig {
  std::int64_t img_h = 224, img_w = 224;
  std::int64_t patch_h = 16, patch_w = 16;
  std::int64_t stride = 16;
  std::int64_t depth = 24, embed_dim = 192, d_state = 16, channels = 3, num_classes = 1000;
  // Mamba mixer (ssm_cfg).
  std::int64_t d_conv = 4, d_inner = 384, dt_rank = 12;
  bool conv_bias = true, bias = false;
  bool use_fast_path = true;  ///< false: mamba_simple's slow path, which scans forward only
  bool bimamba_v2 = true;     ///< "v2" (two directions) or "none" (forward Mamba)
  bool divide_out = true;
  bool has_layer_scale = false;  ///< init_layer_scale given: mixer output * gamma
  // Blocks and trunk.
  double norm_eps = 1e-5;
  bool rms_norm = true, fused_add_norm = true, residual_in_fp32 = true;
  bool bidirectional = false;  ///< if_bidirectional: layers in (forward, flipped) pairs
  FinalPool final_pool = FinalPool::none;
  bool abs_pos_embed = true;
  bool cls_token = true, middle_cls_token = true, double_cls_token = false;

  // Derived.
  std::int64_t grid_h = 14, grid_w = 14;  ///< patch grid at img_size
  std::int64_t num_tokens = 1;            ///< class tokens (0, 1 or 2)

  std::int64_t num_patches() const { return grid_h * grid_w; }
  /// Patch grid of an input: ((H - patch_h) / stride + 1, (W - patch_w) / stride + 1), as
  /// PatchEmbed and nn.Conv2d compute it.
  std::pair<std::int64_t, std::int64_t> grid_for(std::int64_t h, std::int64_t w) const {
    return {(h - patch_h) / stride + 1, (w - patch_w) / stride + 1};
  }
  /// Where the class tokens sit in a sequence of `num_patches` patch tokens (forward_features:
  /// middle token at M // 2, head/tail pair at 0 and M + 1, a leading token at 0).
  std::vector<std::int64_t> token_positions(std::int64_t num_patches) const;
};

/// Reads `VisionMamba(**args)`: every argument is understood or rejected by name.
VimConfig parse_config(const Json& args);

class Linear : public Module {
 public:
  Linear(std::int64_t in, std::int64_t out, bool bias);
  Param* weight = nullptr;
  Param* bias = nullptr;  ///< null when the layer has none
};

/// RMSNorm (weight) or LayerNorm (weight, bias), with mamba_ssm's fused residual add.
class Norm : public Module {
 public:
  Norm(std::int64_t dim, bool rms, double eps);
  /// out = norm(x + residual) (residual optional), residual_out = x + residual (optional).
  void run(Context& ctx, const Tensor& x, const Tensor& residual, const Tensor& out, const Tensor& residual_out) const;
  Param* weight = nullptr;
  Param* bias = nullptr;

 private:
  bool rms_;
  float eps_;
};

class DepthwiseConv1d : public Module {
 public:
  DepthwiseConv1d(std::int64_t channels, std::int64_t width, bool bias);
  Param* weight = nullptr;
  Param* bias = nullptr;
};

/// Scratch of one mixer call, shared by every layer of a forward pass.
struct MixerBuffers {
  Tensor xz;       ///< (B, L, 2 * d_inner)  in_proj output: x | z
  // Per direction slot (0 forward, 1 reverse), as views of one (2, B, L, .) tensor each, so the
  // bidirectional scan reads both directions' inputs through one direction stride.
  Tensor xc[2];    ///< (B, L, d_inner)      conv + SiLU output
  Tensor xdbl[2];  ///< (B, L, dt_rank + 2N) x_proj output: dt | B | C
  Tensor dt[2];    ///< (B, L, d_inner)      dt_proj output (bias added in the scan)
  Tensor xc_all, xdbl_all, dt_all;  ///< the (2, B, L, .) tensors behind them
  Tensor y;        ///< (B, L, d_inner)      gated scan output (both directions summed)
};

/// mamba_simple.Mamba with bimamba_type "v2" (or "none"), as its fused path computes it:
///   xz = in_proj(x); per branch: u = silu(conv(x)), (dt, B, C) = x_proj(u), delta = dt_proj(dt),
///   y = scan(u, delta, A, B, C, D, z, delta_bias) ; out = out_proj((y_f + y_b) [/ 2]) [* gamma]
/// with the backward branch (conv1d_b, x_proj_b, ...) running the anti-causal conv and the
/// reverse scan in place of the official flip -> causal -> flip.
class Mixer : public Module {
 public:
  explicit Mixer(const VimConfig& c);
  MixerBuffers make_buffers(std::int64_t batch, std::int64_t len, DType dtype, Device device) const;
  /// out (B, L, D) = mixer(x (B, L, D)). `reversed` runs the module on the flipped sequence and
  /// flips the result back (the second layer of an if_bidirectional pair) without any flip.
  void forward(Context& ctx, const Tensor& x, const Tensor& out, MixerBuffers& buf, bool reversed) const;

 protected:
  void on_loaded(Context& ctx) override;

 private:
  struct Branch {
    DepthwiseConv1d* conv = nullptr;
    Linear* x_proj = nullptr;
    Linear* dt_proj = nullptr;
    Param* A_log = nullptr;
    Param* D = nullptr;
    Tensor A;  ///< -exp(A_log), f32, on the device
  };
  /// A, D and delta_bias of both branches stacked as the bidirectional scan takes them ((K, D, N)
  /// and (K, D), direction 0 = forward): [order] 0 = (branch 0, branch 1), 1 = (branch 1, branch 0)
  /// for a reversed module, whose branch 1 is the one scanning forward.
  struct Stacked {
    Tensor A, D, delta_bias;
    Tensor x_proj_w;   ///< (2, dt_rank + 2N, d_inner): both slots' x_proj in one batched matmul
    Tensor dt_proj_w;  ///< (2, d_inner, dt_rank)
  };
  /// u = silu(conv(x)) into direction slot `slot` (reverse_conv: the anti-causal conv of a
  /// reverse-scanning branch).
  void conv_branch(Context& ctx, const Branch& br, const Tensor& x, int slot, bool reverse_conv,
                   MixerBuffers& buf) const;

  std::int64_t d_inner_, dt_rank_, d_state_;
  bool two_branches_;  ///< v2 on the fast path
  bool divide_out_;
  Linear* in_proj_ = nullptr;
  Linear* out_proj_ = nullptr;
  Param* gamma_ = nullptr;
  Branch branch_[2];
  Stacked stacked_[2];
};

class Block : public Module {
 public:
  explicit Block(const VimConfig& c);
  Mixer* mixer = nullptr;
  Norm* norm = nullptr;
};

class VisionMamba : public VisionModel {
 public:
  explicit VisionMamba(const VimConfig& config);

  Tensor forward(Context& ctx, const Tensor& images) override;
  std::vector<Tensor> forward_features(Context& ctx, const Tensor& images) override;
  int num_classes() const override { return static_cast<int>(config_.num_classes > 0 ? config_.num_classes : config_.embed_dim); }
  void check_input(const Shape& images_shape) const override;

  const VimConfig& config() const { return config_; }

 protected:
  void on_loaded(Context& ctx) override;

 private:
  /// The residual stream after the last block: hidden (mixer output) and residual, both
  /// (B, L, D); `residual` is undefined when no block ran.
  struct Trunk {
    std::int64_t batch = 0, grid_h = 0, grid_w = 0, len = 0;
    std::vector<std::int64_t> positions;
    Tensor hidden, residual;
  };
  Trunk run_trunk(Context& ctx, const Tensor& images);
  /// norm_f(hidden + residual) at sequence position `row` into out (B, D).
  void final_norm_rows(Context& ctx, const Trunk& t, std::int64_t row, const Tensor& out) const;
  /// The position embedding for a patch grid, (L, D) f32 on the device: the parameter itself
  /// at the trained grid, else resized once (bicubic, like Vim's fine-tuning code) and cached.
  Tensor pos_embed_for(Context& ctx, std::int64_t grid_h, std::int64_t grid_w);
  void check_images(const Tensor& images) const;
  DType compute_dtype() const;
  Device device() const;

  VimConfig config_;
  Param* proj_weight_ = nullptr;
  Param* proj_bias_ = nullptr;
  Tensor proj_weight_ohwi_;
  Param* cls_token_ = nullptr;
  Param* cls_token_head_ = nullptr;
  Param* cls_token_tail_ = nullptr;
  Tensor cls_tokens_;  ///< (T, D) f32: the class tokens in sequence order
  Param* pos_embed_ = nullptr;
  std::vector<Block*> layers_;
  Norm* norm_f_ = nullptr;
  Linear* head_ = nullptr;

  std::mutex pos_mutex_;
  std::map<std::pair<std::int64_t, std::int64_t>, Tensor> resized_pos_;
};

}  // namespace mcv::vision::vim

namespace mcv::vision {
/// The Vim family: builder from official constructor arguments and the released variants.
Family vim_family();
}  // namespace mcv::vision
