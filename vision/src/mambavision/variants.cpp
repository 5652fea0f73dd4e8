// The released MambaVision checkpoints: constructor arguments exactly as the official registry
// functions (mamba_vision_T, ..., mamba_vision_L3_512_21k) build them, the checkpoint file,
// the published ImageNet-1k top-1 (README) and the eval transform of each `default_cfgs` entry.

#include "mambavision.h"

namespace mcv::vision {

namespace {

struct Release {
  const char* name;        // official registry name
  const char* alias;       // short name
  const char* hf_name;     // Hugging Face repository name (second alias)
  const char* checkpoint;  // file name of the official .pth.tar
  double top1;
  int depths[4];
  int num_heads[4];
  int window_size[4];
  int dim, in_dim;
  int resolution;          // the registry's `resolution` default (unused by the network)
  double drop_path_rate;
  bool layer_scale;        // registry passes layer_scale=1e-5, layer_scale_conv=None
  int input_size;          // default_cfg input_size
  double crop_pct;
  bool squash;             // default_cfg crop_mode 'squash' (else 'center')
};

// MambaVision-*-21K are pretrained on ImageNet-21K and fine-tuned on ImageNet-1k: 1000 classes.
constexpr Release kReleases[] = {
    {"mamba_vision_T", "mambavision-t", "MambaVision-T-1K", "mambavision_tiny_1k.pth.tar", 82.3,
     {1, 3, 8, 4}, {2, 4, 8, 16}, {8, 8, 14, 7}, 80, 32, 224, 0.2, false, 224, 1.0, false},
    {"mamba_vision_T2", "mambavision-t2", "MambaVision-T2-1K", "mambavision_tiny2_1k.pth.tar", 82.7,
     {1, 3, 11, 4}, {2, 4, 8, 16}, {8, 8, 14, 7}, 80, 32, 224, 0.2, false, 224, 0.98, false},
    {"mamba_vision_S", "mambavision-s", "MambaVision-S-1K", "mambavision_small_1k.pth.tar", 83.3,
     {3, 3, 7, 5}, {2, 4, 8, 16}, {8, 8, 14, 7}, 96, 64, 224, 0.2, false, 224, 0.93, false},
    {"mamba_vision_B", "mambavision-b", "MambaVision-B-1K", "mambavision_base_1k.pth.tar", 84.2,
     {3, 3, 10, 5}, {2, 4, 8, 16}, {8, 8, 14, 7}, 128, 64, 224, 0.3, true, 224, 1.0, false},
    {"mamba_vision_L", "mambavision-l", "MambaVision-L-1K", "mambavision_large_1k.pth.tar", 85.0,
     {3, 3, 10, 5}, {4, 8, 16, 32}, {8, 8, 14, 7}, 196, 64, 224, 0.3, true, 224, 1.0, false},
    {"mamba_vision_L2", "mambavision-l2", "MambaVision-L2-1K", "mambavision_large2_1k.pth.tar", 85.3,
     {3, 3, 12, 5}, {4, 8, 16, 32}, {8, 8, 14, 7}, 196, 64, 224, 0.3, true, 224, 1.0, false},
    {"mamba_vision_B_21k", "mambavision-b-21k", "MambaVision-B-21K", "mambavision_base_21k.pth.tar", 84.9,
     {3, 3, 10, 5}, {2, 4, 8, 16}, {8, 8, 14, 7}, 128, 64, 224, 0.3, true, 224, 1.0, false},
    {"mamba_vision_L_21k", "mambavision-l-21k", "MambaVision-L-21K", "mambavision_large_21k.pth.tar", 86.1,
     {3, 3, 10, 5}, {4, 8, 16, 32}, {8, 8, 14, 7}, 196, 64, 224, 0.3, true, 224, 1.0, false},
    {"mamba_vision_L2_512_21k", "mambavision-l2-512-21k", "MambaVision-L2-512-21K", "mambavision_L2_21k_240m_512.pth.tar",
     87.3, {3, 3, 12, 5}, {4, 8, 16, 32}, {8, 8, 32, 16}, 196, 64, 512, 0.3, true, 512, 0.93, true},
    {"mamba_vision_L3_256_21k", "mambavision-l3-256-21k", "MambaVision-L3-256-21K", "mambavision_L3_21k_740m_256.pth.tar",
     87.3, {3, 3, 20, 10}, {4, 8, 16, 32}, {8, 8, 16, 8}, 256, 64, 256, 0.5, true, 256, 1.0, false},
    {"mamba_vision_L3_512_21k", "mambavision-l3-512-21k", "MambaVision-L3-512-21K", "mambavision_L3_21k_740m_512.pth.tar",
     88.1, {3, 3, 20, 10}, {4, 8, 16, 32}, {8, 8, 32, 16}, 256, 64, 512, 0.5, true, 512, 0.93, true},
};

Json list4(const int (&v)[4]) { return Json::array({v[0], v[1], v[2], v[3]}); }

ModelSpec make_spec(const Release& r) {
  ModelSpec s;
  s.info.name = r.name;
  s.info.aliases = {r.alias, r.hf_name};
  s.info.family = "mambavision";
  s.info.num_classes = 1000;
  s.info.labels = "imagenet-1k";
  s.info.published_top1 = r.top1;
  s.info.checkpoint = r.checkpoint;
  s.info.preprocess.input_height = s.info.preprocess.input_width = r.input_size;
  s.info.preprocess.crop_pct = r.crop_pct;
  s.info.preprocess.crop_mode = r.squash ? "squash" : "center";
  s.info.preprocess.interpolation = "bicubic";
  s.info.preprocess.mean = {0.485f, 0.456f, 0.406f};
  s.info.preprocess.std = {0.229f, 0.224f, 0.225f};
  s.args = Json::object();
  s.args["depths"] = list4(r.depths);
  s.args["num_heads"] = list4(r.num_heads);
  s.args["window_size"] = list4(r.window_size);
  s.args["dim"] = r.dim;
  s.args["in_dim"] = r.in_dim;
  s.args["mlp_ratio"] = 4;
  s.args["resolution"] = r.resolution;
  s.args["drop_path_rate"] = r.drop_path_rate;
  if (r.layer_scale) {
    s.args["layer_scale"] = 1e-5;
    s.args["layer_scale_conv"] = nullptr;
  }
  // Added by timm's default-cfg update (update_args) before the constructor runs.
  s.args["num_classes"] = 1000;
  s.args["in_chans"] = 3;
  s.args["img_size"] = Json::array({r.input_size, r.input_size});
  // Hugging Face `model.safetensors` files hold the network under the wrapper's `model.`
  // attribute; the loader strips this prefix only when every tensor name carries it, so the
  // official .pth.tar (no prefix) loads through the same spec.
  s.key_prefix = "model.";
  return s;
}

}  // namespace

Family mambavision_family() {
  Family f;
  f.name = "mambavision";
  f.constructor = "MambaVision";
  f.build = build_mambavision;
  for (const Release& r : kReleases) f.variants.push_back(make_spec(r));
  return f;
}

}  // namespace mcv::vision
