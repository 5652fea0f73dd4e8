// The released VMamba ImageNet-1k classifiers: constructor arguments exactly as the official
// build_model makes them from classification/configs/vssm/*.yaml (config.py defaults plus the
// yaml's overrides), the checkpoint file of each release, the published top-1 (README) and the
// eval transform of classification/data/build.py (Resize(int(256 / 224 * 224)), bicubic,
// CenterCrop(224), ImageNet mean/std).

#include "vmamba.h"

namespace mcv::vision {

namespace {

enum class Generation {
  v0,   ///< vanilla VMamba (arXiv v1): SS2Dv0, d_state 16, no MLP, PatchMerging2D
  v2,   ///< vmambav2_*: v05_noz, d_state 1, ssm_ratio 2, MLP, conv stem/downsample, ln
  v2v,  ///< vmambav2v_*: as v2 with ssm_ratio 1 and channel-first ln2d
};

struct Release {
  const char* name;
  const char* aliases[3];
  const char* checkpoint;
  double top1;
  Generation generation;
  int depths[4];
  int dims;
  double drop_path_rate;
};

constexpr Release kReleases[] = {
    // configs/vssm/vmambav0_*_224.yaml; release #v0cls (README: Vanilla-VMamba-T/S/B).
    {"vssm_tiny", {"vmambav0_tiny_224", "vanilla_vmamba_tiny", "vmamba-v0-t"}, "vssmtiny_dp01_ckpt_epoch_292.pth", 82.2,
     Generation::v0, {2, 2, 9, 2}, 96, 0.2},
    {"vssm_small", {"vmambav0_small_224", "vanilla_vmamba_small", "vmamba-v0-s"}, "vssmsmall_dp03_ckpt_epoch_238.pth", 83.5,
     Generation::v0, {2, 2, 27, 2}, 96, 0.3},
    {"vssm_base", {"vmambav0_base_224", "vanilla_vmamba_base", "vmamba-v0-b"}, "vssmbase_dp06_ckpt_epoch_241.pth", 83.7,
     Generation::v0, {2, 2, 27, 2}, 128, 0.5},
    // configs/vssm/vmambav2_*_224.yaml (VMamba-T[s2l5], S[s2l15], B[s2l15]).
    {"vmambav2_tiny_224", {"vmamba_tiny_s2l5", "vssm1_tiny_0230", "vmamba-t-s2l5"}, "vssm_tiny_0230_ckpt_epoch_262.pth",
     82.5, Generation::v2, {2, 2, 5, 2}, 96, 0.2},
    {"vmambav2_small_224", {"vmamba_small_s2l15", "vssm1_small_0229", "vmamba-s"}, "vssm_small_0229_ckpt_epoch_222.pth",
     83.6, Generation::v2, {2, 2, 15, 2}, 96, 0.3},
    {"vmambav2_base_224", {"vmamba_base_s2l15", "vssm1_base_0229", "vmamba-b"}, "vssm_base_0229_ckpt_epoch_237.pth", 83.9,
     Generation::v2, {2, 2, 15, 2}, 128, 0.6},
    // configs/vssm/vmambav2v_*_224.yaml (VMamba-T[s1l8], S[s1l20], B[s1l20]).
    {"vmambav2v_tiny_224", {"vmamba_tiny_s1l8", "vssm1_tiny_0230s", "vmamba-t"}, "vssm1_tiny_0230s_ckpt_epoch_264.pth",
     82.6, Generation::v2v, {2, 2, 8, 2}, 96, 0.2},
    {"vmambav2v_small_224", {"vmamba_small_s1l20", "vssm1_small_0229s", "vmamba-s-s1l20"},
     "vssm1_small_0229s_ckpt_epoch_240.pth", 83.3, Generation::v2v, {2, 2, 20, 2}, 96, 0.3},
    {"vmambav2v_base_224", {"vmamba_base_s1l20", "vssm1_base_0229s", "vmamba-b-s1l20"},
     "vssm1_base_0229s_ckpt_epoch_225.pth", 83.8, Generation::v2v, {2, 2, 20, 2}, 128, 0.6},
};

/// build_model(config) for a release: config.py defaults, then the yaml's MODEL.VSSM overrides.
Json release_args(const Release& r) {
  const bool v0 = r.generation == Generation::v0;
  Json a = Json::object();
  a["patch_size"] = 4;
  a["in_chans"] = 3;
  a["num_classes"] = 1000;
  a["depths"] = Json::array({r.depths[0], r.depths[1], r.depths[2], r.depths[3]});
  a["dims"] = r.dims;
  a["ssm_d_state"] = v0 ? 16 : 1;
  a["ssm_ratio"] = r.generation == Generation::v2v ? 1.0 : 2.0;
  a["ssm_dt_rank"] = "auto";
  a["ssm_act_layer"] = "silu";
  a["ssm_conv"] = 3;
  a["ssm_conv_bias"] = v0;
  a["ssm_drop_rate"] = 0.0;
  a["ssm_init"] = "v0";
  a["forward_type"] = v0 ? "v0" : "v05_noz";
  a["mlp_ratio"] = v0 ? 0.0 : 4.0;
  a["mlp_act_layer"] = "gelu";
  a["mlp_drop_rate"] = 0.0;
  a["gmlp"] = false;
  a["drop_path_rate"] = r.drop_path_rate;
  a["patch_norm"] = true;
  a["norm_layer"] = r.generation == Generation::v2v ? "ln2d" : "ln";
  a["downsample_version"] = v0 ? "v1" : "v3";
  a["patchembed_version"] = v0 ? "v1" : "v2";
  a["use_checkpoint"] = false;
  a["posembed"] = false;
  a["imgsize"] = 224;
  return a;
}

ModelSpec make_spec(const Release& r) {
  ModelSpec s;
  s.info.name = r.name;
  for (const char* alias : r.aliases) s.info.aliases.push_back(alias);
  s.info.family = "vmamba";
  s.info.num_classes = 1000;
  s.info.labels = "imagenet-1k";
  s.info.published_top1 = r.top1;
  s.info.checkpoint = r.checkpoint;
  s.info.preprocess.input_height = s.info.preprocess.input_width = 224;
  s.info.preprocess.crop_pct = 224.0 / 256.0;  // Resize(int(256 / 224 * IMG_SIZE)) then CenterCrop
  s.info.preprocess.interpolation = "bicubic";
  s.info.preprocess.mean = {0.485f, 0.456f, 0.406f};
  s.info.preprocess.std = {0.229f, 0.224f, 0.225f};
  s.args = release_args(r);
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::string vmamba_legacy_name(const std::string& name) {
  // VSSM._load_from_state_dict's change_name calls: prefix matches, in this order.
  static const std::pair<const char*, const char*> kTop[] = {
      {"patch_embed.proj", "patch_embed.0"}, {"patch_embed.norm", "patch_embed.2"}};
  for (const auto& [from, to] : kTop)
    if (starts_with(name, from)) return to + name.substr(std::string(from).size());
  if (starts_with(name, "layers.")) {
    // layers.<i>.blocks.<j>.{ln_1 -> norm, self_attention -> op}
    const std::size_t blocks = name.find(".blocks.");
    if (blocks != std::string::npos) {
      const std::size_t index_end = name.find('.', blocks + 8);
      if (index_end != std::string::npos) {
        const std::string rest = name.substr(index_end + 1);
        if (starts_with(rest, "ln_1")) return name.substr(0, index_end + 1) + "norm" + rest.substr(4);
        if (starts_with(rest, "self_attention")) return name.substr(0, index_end + 1) + "op" + rest.substr(14);
      }
    }
    return name;
  }
  if (starts_with(name, "norm")) return "classifier.norm" + name.substr(4);
  if (starts_with(name, "head")) return "classifier.head" + name.substr(4);
  return name;
}

Family vmamba_family() {
  Family f;
  f.name = "vmamba";
  f.constructor = "VSSM";
  f.build = build_vmamba;
  f.rename_key = vmamba_legacy_name;
  for (const Release& r : kReleases) f.variants.push_back(make_spec(r));
  return f;
}

}  // namespace mcv::vision
