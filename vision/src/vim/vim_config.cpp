// VisionMamba(**kwargs) -> VimConfig. Defaults are those of the official constructor signature
// (vim/models_mamba.py) and of mamba_simple.Mamba; every argument is either understood, ignored
// because it only matters for training, or rejected by name.

#include <cmath>
#include <string>
#include <tuple>

#include "vim/vim.h"

namespace mcv::vision::vim {

namespace {

/// img_size / patch_size: an int or a [h, w] pair (timm's to_2tuple).
std::pair<std::int64_t, std::int64_t> read_pair(ArgReader& r, const std::string& name, std::int64_t fallback) {
  const Json v = r.get<Json>(name, Json(fallback));
  if (v.is_number_integer()) return {v.get<std::int64_t>(), v.get<std::int64_t>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
    return {v[0].get<std::int64_t>(), v[1].get<std::int64_t>()};
  r.fail(name, "must be an integer or a pair of integers, got " + v.dump());
}

/// An integer argument; JSON floats are rejected rather than truncated.
std::int64_t read_int(ArgReader& r, const std::string& name, std::int64_t fallback) {
  const Json v = r.get<Json>(name, Json(fallback));
  if (!v.is_number_integer()) r.fail(name, "must be an integer, got " + v.dump());
  return v.get<std::int64_t>();
}

void require_range(ArgReader& r, const std::string& name, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi)
    r.fail(name, "value " + std::to_string(v) + " is outside the supported range [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "]");
}

/// mamba_simple.Mamba keyword arguments passed through `ssm_cfg`.
void read_ssm_cfg(ArgReader& r, VimConfig& c) {
  const Json cfg = r.get<Json>("ssm_cfg", Json(nullptr));
  c.d_conv = 4;
  double expand = 2;
  Json dt_rank = "auto";
  if (!cfg.is_null() && !cfg.is_object())
    r.fail("ssm_cfg", "must be a dict of Mamba arguments or null, got " + cfg.dump());
  if (cfg.is_object()) {
    for (const auto& [key, value] : cfg.items()) {
      const std::string name = "ssm_cfg." + key;
      auto fail = [&](const std::string& problem) -> void { throw Error("argument " + name, problem); };
      try {
        if (key == "d_conv") {
          if (!value.is_number_integer()) fail("must be an integer, got " + value.dump());
          c.d_conv = value.get<std::int64_t>();
          if (c.d_conv < 2 || c.d_conv > 4) fail("value " + value.dump() + " is not supported (the conv1d op takes widths 2 to 4)");
        } else if (key == "expand") {
          expand = value.get<double>();
        } else if (key == "dt_rank") {
          dt_rank = value;
        } else if (key == "conv_bias") {
          c.conv_bias = value.get<bool>();
        } else if (key == "bias") {
          c.bias = value.get<bool>();
        } else if (key == "use_fast_path") {
          c.use_fast_path = value.get<bool>();
        } else if (key == "dt_min" || key == "dt_max" || key == "dt_init" || key == "dt_scale" ||
                   key == "dt_init_floor") {
          // Initialisation only.
        } else {
          fail("not supported by the vim port (value " + value.dump() +
               "; d_state, bimamba_type, if_divide_out and init_layer_scale are VisionMamba arguments)");
        }
      } catch (const Json::exception&) {
        fail("has the wrong type: " + value.dump());
      }
    }
  }
  if (!(expand > 0) || !std::isfinite(expand)) throw Error("argument ssm_cfg.expand", "must be positive");
  // int(self.expand * self.d_model), as Python truncates.
  c.d_inner = static_cast<std::int64_t>(expand * static_cast<double>(c.embed_dim));
  if (c.d_inner < 1) throw Error("argument ssm_cfg.expand", "gives d_inner = " + std::to_string(c.d_inner));
  if (dt_rank.is_string() && dt_rank.get<std::string>() == "auto") {
    c.dt_rank = (c.embed_dim + 15) / 16;  // math.ceil(d_model / 16)
  } else if (dt_rank.is_number_integer() && dt_rank.get<std::int64_t>() >= 1) {
    c.dt_rank = dt_rank.get<std::int64_t>();
  } else {
    throw Error("argument ssm_cfg.dt_rank", "must be \"auto\" or a positive integer, got " + dt_rank.dump());
  }
}

}  // namespace

std::vector<std::int64_t> VimConfig::token_positions(std::int64_t m) const {
  if (!cls_token) return {};
  if (double_cls_token) return {0, m + 1};
  if (middle_cls_token) return {m / 2};
  return {0};
}

VimConfig parse_config(const Json& args) {
  ArgReader r(args, "vim");
  VimConfig c;
  std::tie(c.img_h, c.img_w) = read_pair(r, "img_size", 224);
  std::tie(c.patch_h, c.patch_w) = read_pair(r, "patch_size", 16);
  c.stride = read_int(r, "stride", 16);
  c.depth = read_int(r, "depth", 24);
  c.embed_dim = read_int(r, "embed_dim", 192);
  c.d_state = read_int(r, "d_state", 16);
  c.channels = read_int(r, "channels", 3);
  c.num_classes = read_int(r, "num_classes", 1000);
  constexpr std::int64_t kBig = 1 << 20;
  require_range(r, "patch_size", c.patch_h, 1, 4096);
  require_range(r, "patch_size", c.patch_w, 1, 4096);
  require_range(r, "img_size", c.img_h, c.patch_h, kBig);
  require_range(r, "img_size", c.img_w, c.patch_w, kBig);
  require_range(r, "stride", c.stride, 1, 4096);
  require_range(r, "depth", c.depth, 1, 1024);
  require_range(r, "embed_dim", c.embed_dim, 1, 65536);
  require_range(r, "d_state", c.d_state, 1, 256);
  require_range(r, "channels", c.channels, 1, 4096);
  require_range(r, "num_classes", c.num_classes, 0, kBig);

  read_ssm_cfg(r, c);

  c.norm_eps = r.get<double>("norm_epsilon", 1e-5);
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps)) r.fail("norm_epsilon", "must be a positive number");
  c.rms_norm = r.get<bool>("rms_norm", true);
  c.fused_add_norm = r.get<bool>("fused_add_norm", true);
  c.residual_in_fp32 = r.get<bool>("residual_in_fp32", true);
  c.bidirectional = r.get<bool>("if_bidirectional", false);
  c.abs_pos_embed = r.get<bool>("if_abs_pos_embed", true);
  c.cls_token = r.get<bool>("if_cls_token", true);
  c.divide_out = r.get<bool>("if_divide_out", true);
  c.double_cls_token = c.cls_token && r.get<bool>("use_double_cls_token", false);
  c.middle_cls_token = r.get<bool>("use_middle_cls_token", true);
  r.ignore("use_double_cls_token");

  const std::string pool = r.get<std::string>("final_pool_type", "none");
  if (pool == "none") c.final_pool = FinalPool::none;
  else if (pool == "mean") c.final_pool = FinalPool::mean;
  else if (pool == "max") c.final_pool = FinalPool::max;
  else if (pool == "all") c.final_pool = FinalPool::all;
  else r.fail("final_pool_type", "value \"" + pool + "\" is not one of none, mean, max, all");
  // With a class token forward_features returns it whatever the pool type; 'max' then takes the
  // max over the classes of each image, which is not a classifier output.
  if (c.cls_token && c.final_pool == FinalPool::max)
    r.fail("final_pool_type", "\"max\" with a class token reduces the logits to one value per image (the official "
                              "head takes the max over classes); not supported");
  if (!c.cls_token && c.final_pool == FinalPool::all)
    r.fail("final_pool_type", "\"all\" without a class token gives per-token logits (batch, L, classes), not one "
                              "prediction per image; not supported");

  if (r.get<bool>("if_rope", false))
    r.fail("if_rope", "rotary position embedding is not implemented by the vim port (the released midclstok "
                      "checkpoints do not use it)");
  r.ignore("if_rope_residual");  // only read when if_rope
  r.ignore("ft_seq_len");        // rope only
  r.ignore("pt_hw_seq_len");     // rope only
  const double flip_ratio = r.get<double>("flip_img_sequences_ratio", -1.0);
  if (flip_ratio > 0)
    r.fail("flip_img_sequences_ratio", "random flips of the token sequence are not supported (use a value <= 0)");
  if (r.get<bool>("if_bimamba", false))
    r.fail("if_bimamba", "selects the \"v1\" mixer (bimamba_inner_fn), which is not supported; use bimamba_type \"v2\"");
  const std::string bimamba = r.get<std::string>("bimamba_type", "v2");
  if (bimamba == "v2") c.bimamba_v2 = true;
  else if (bimamba == "none") c.bimamba_v2 = false;
  else r.fail("bimamba_type", "value \"" + bimamba + "\" is not supported (only \"v2\" and \"none\")");
  const Json layer_scale = r.get<Json>("init_layer_scale", Json(nullptr));
  if (!layer_scale.is_null() && !layer_scale.is_number())
    r.fail("init_layer_scale", "must be a number or null, got " + layer_scale.dump());
  c.has_layer_scale = !layer_scale.is_null();

  // Training-only or without effect at inference.
  for (const char* name : {"drop_rate", "drop_path_rate", "initializer_cfg", "device", "dtype"}) r.ignore(name);
  // Swallowed by the official **kwargs: Vim-B's registry passes the misspelt `if_devide_out`
  // (so its if_divide_out keeps the default True), main.py passes drop_block_rate, timm's
  // create_model the pretrained configs.
  for (const char* name : {"if_devide_out", "drop_block_rate", "pretrained_cfg", "pretrained_cfg_overlay"})
    r.ignore(name);
  r.finish();

  std::tie(c.grid_h, c.grid_w) = c.grid_for(c.img_h, c.img_w);
  c.num_tokens = !c.cls_token ? 0 : c.double_cls_token ? 2 : 1;
  return c;
}

}  // namespace mcv::vision::vim
