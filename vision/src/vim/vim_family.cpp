// The Vim family: the builder from VisionMamba's keyword arguments and the released ImageNet-1k
// checkpoints (hustvl/Vim README, Hugging Face hustvl/Vim-{tiny,small,base}-midclstok). The
// arguments are those the official @register_model functions pass; the eval transform is Vim's
// (datasets.build_transform): Resize(int(224 / 0.875) = 256, bicubic), CenterCrop(224),
// ImageNet mean/std.

#include "vim/vim.h"

namespace mcv::vision::vim {

namespace {

/// The arguments every released midclstok registry function passes.
Json released_args(std::int64_t embed_dim, std::int64_t stride) {
  Json a = {{"patch_size", 16},
            {"embed_dim", embed_dim},
            {"depth", 24},
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
            {"use_middle_cls_token", true}};
  if (stride != 16) a["stride"] = stride;
  return a;
}

ModelSpec spec(std::string name, std::vector<std::string> aliases, Json args, double top1, std::string checkpoint) {
  ModelSpec s;
  s.info.name = std::move(name);
  s.info.aliases = std::move(aliases);
  s.info.family = "vim";
  s.info.num_classes = 1000;
  s.info.labels = "imagenet-1k";
  s.info.published_top1 = top1;
  s.info.checkpoint = std::move(checkpoint);
  s.info.preprocess = Preprocess{};  // 224, crop 0.875, bicubic, ImageNet mean/std
  s.args = std::move(args);
  return s;
}

}  // namespace

}  // namespace mcv::vision::vim

namespace mcv::vision {

Family vim_family() {
  using namespace vim;
  Family f;
  f.name = "vim";
  f.constructor = "VisionMamba (hustvl/Vim vim/models_mamba.py)";
  f.build = [](const Json& args) -> std::unique_ptr<VisionModel> {
    return std::make_unique<VisionMamba>(parse_config(args));
  };
  // Vim-B's registry function misspells if_divide_out as `if_devide_out` (swallowed by **kwargs,
  // so the default True holds); it is kept here as the official function passes it.
  Json base = released_args(768, 16);
  base["d_state"] = 16;
  base["if_devide_out"] = true;
  f.variants = {
      spec("vim_tiny_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
           {"vim-t", "vim-ti", "vim-tiny"}, released_args(192, 16), 76.1, "vim_t_midclstok_76p1acc.pth"),
      spec("vim_tiny_patch16_stride8_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
           {"vim-t+", "vim-ti+", "vim-tiny-plus"}, released_args(192, 8), 78.3, "vim_t_midclstok_ft_78p3acc.pth"),
      spec("vim_small_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
           {"vim-s", "vim-small"}, released_args(384, 16), 80.5, "vim_s_midclstok_80p5acc.pth"),
      spec("vim_small_patch16_stride8_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
           {"vim-s+", "vim-small-plus"}, released_args(384, 8), 81.6, "vim_s_midclstok_ft_81p6acc.pth"),
      spec("vim_base_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_middle_cls_token_div2",
           {"vim-b", "vim-base"}, base, 81.9, "vim_b_midclstok_81p9acc.pth"),
  };
  return f;
}

}  // namespace mcv::vision
