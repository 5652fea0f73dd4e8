// The embedded default models: small Vim, VMamba and MambaVision variants trained on
// Fashion-MNIST by tools/training/train_fashion_mnist.py (module names identical to the official
// ones, so the same loaders read their weights, shipped under vision/weights/). Their registered
// preprocessing maps a 28x28 gray image to the model input: gray replicated to RGB, resized, and
// normalised with the Fashion-MNIST statistics.
//
// The constructor arguments and input mapping here must equal tools/training/fmnist_configs.py:
// the training script writes both into each weights file's metadata and
// tests/vision/test_embedded_models.cpp compares them.

#include "model.h"

namespace mcv::vision {

namespace {

// Fashion-MNIST training-set mean and standard deviation of the pixel values in [0, 1].
constexpr float kMean = 0.2860f;
constexpr float kStd = 0.3530f;

ModelSpec embedded_spec(const std::string& family, int input_size, double test_top1, Json args) {
  ModelSpec s;
  s.info.name = "fmnist-" + family;
  s.info.aliases = {"fmnist_" + family};
  s.info.family = family;
  s.info.num_classes = 10;
  s.info.labels = "fashion-mnist";
  // The project's own measurement: top-1 (%) on the 10,000 Fashion-MNIST test images (there is
  // no published ImageNet number for these models); docs/notes/embedded_models.md has the run.
  s.info.published_top1 = test_top1;
  s.info.checkpoint = "fmnist_" + family + ".safetensors";
  Preprocess& p = s.info.preprocess;
  p.input_height = p.input_width = input_size;
  p.crop_pct = 1.0;  // shorter side -> input_size, then a no-op centre crop: 28 px is the identity
  p.interpolation = "bicubic";
  p.mean = {kMean, kMean, kMean};
  p.std = {kStd, kStd, kStd};
  s.args = std::move(args);
  return s;
}

// VisionMamba: 7x7 patches of 4x4 pixels plus a middle class token, 6 bidirectional layers.
ModelSpec fmnist_vim() {
  return embedded_spec("vim", 28, 91.90,
                       Json{{"img_size", 28},
                            {"patch_size", 4},
                            {"stride", 4},
                            {"depth", 6},
                            {"embed_dim", 112},
                            {"d_state", 16},
                            {"channels", 3},
                            {"num_classes", 10},
                            {"drop_path_rate", 0.05},
                            {"rms_norm", true},
                            {"residual_in_fp32", true},
                            {"fused_add_norm", true},
                            {"final_pool_type", "mean"},
                            {"if_abs_pos_embed", true},
                            {"if_rope", false},
                            {"if_rope_residual", false},
                            {"bimamba_type", "v2"},
                            {"if_cls_token", true},
                            {"if_divide_out", true},
                            {"use_middle_cls_token", true}});
}

// VSSM with the VMamba-T[s1l8] recipe (v05_noz, d_state 1, ssm_ratio 1, ln2d, stem v2,
// downsample v3), 4 stages at 16, 8, 4 and 2 pixels of a 64-pixel input.
ModelSpec fmnist_vmamba() {
  return embedded_spec("vmamba", 64, 91.71,
                       Json{{"patch_size", 4},
                            {"in_chans", 3},
                            {"num_classes", 10},
                            {"depths", {2, 2, 3, 1}},
                            {"dims", 24},
                            {"ssm_d_state", 1},
                            {"ssm_ratio", 1.0},
                            {"ssm_dt_rank", "auto"},
                            {"ssm_act_layer", "silu"},
                            {"ssm_conv", 3},
                            {"ssm_conv_bias", false},
                            {"ssm_drop_rate", 0.0},
                            {"ssm_init", "v0"},
                            {"forward_type", "v05_noz"},
                            {"mlp_ratio", 2.0},
                            {"mlp_act_layer", "gelu"},
                            {"mlp_drop_rate", 0.0},
                            {"gmlp", false},
                            {"drop_path_rate", 0.05},
                            {"patch_norm", true},
                            {"norm_layer", "ln2d"},
                            {"downsample_version", "v3"},
                            {"patchembed_version", "v2"},
                            {"use_checkpoint", false},
                            {"posembed", false},
                            {"imgsize", 64}});
}

// MambaVision: conv stages at 16 and 8 pixels, then one 4x4 and one 2x2 window of
// MambaVisionMixer + attention blocks.
ModelSpec fmnist_mambavision() {
  return embedded_spec("mambavision", 64, 93.76,
                       Json{{"dim", 16},
                            {"in_dim", 16},
                            {"depths", {1, 2, 4, 2}},
                            {"window_size", {8, 8, 4, 2}},
                            {"mlp_ratio", 4},
                            {"num_heads", {2, 2, 4, 4}},
                            {"drop_path_rate", 0.05},
                            {"num_classes", 10}});
}

}  // namespace

std::vector<ModelSpec> embedded_variants(const std::string& family) {
  if (family == "vim") return {fmnist_vim()};
  if (family == "vmamba") return {fmnist_vmamba()};
  if (family == "mambavision") return {fmnist_mambavision()};
  return {};
}

}  // namespace mcv::vision
