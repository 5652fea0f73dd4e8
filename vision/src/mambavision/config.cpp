// MambaVision constructor arguments: what the official `MambaVision.__init__` accepts, checked
// against what the architecture can actually build (the official code would crash or silently
// mis-shape on the values rejected here).

#include <cmath>

#include "mambavision.h"

namespace mcv::vision {

namespace {

constexpr int kMaxWidth = 1 << 16;

std::array<int, 4> four_ints(ArgReader& r, const std::string& name, int min_value, int max_value) {
  const auto values = r.require<std::vector<int>>(name);
  if (values.size() != 4)
    r.fail(name, "must list 4 values (one per stage), got " + std::to_string(values.size()));
  std::array<int, 4> out{};
  for (int i = 0; i < 4; ++i) {
    if (values[i] < min_value || values[i] > max_value)
      r.fail(name, "value " + std::to_string(values[i]) + " of stage " + std::to_string(i) + " is out of range");
    out[i] = values[i];
  }
  return out;
}

// Python truthiness of a JSON value, for arguments the official code tests with `if x` or
// `type(x) in [int, float]`.
bool truthy(ArgReader& r, const std::string& name, const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  r.fail(name, "must be null, a boolean or a number, got " + v.dump());
}

// `layer_scale is not None and type(layer_scale) in [int, float]`: a number (even 0) creates the
// learnable gamma; None and booleans do not.
bool makes_layer_scale(ArgReader& r, const std::string& name) {
  const Json v = r.get<Json>(name, Json());
  if (v.is_null() || v.is_boolean()) return false;
  if (v.is_number()) return true;
  r.fail(name, "must be null or a number, got " + v.dump());
}

}  // namespace

std::vector<int> MambaVisionConfig::attention_blocks(int depth) {
  std::vector<int> out;
  for (int i = depth % 2 != 0 ? depth / 2 + 1 : depth / 2; i < depth; ++i) out.push_back(i);
  return out;
}

MambaVisionConfig parse_mambavision_args(const Json& args) {
  ArgReader r(args, "mambavision");
  MambaVisionConfig c;
  c.dim = r.require<int>("dim");
  if (c.dim < 1 || c.dim > (kMaxWidth >> 3)) r.fail("dim", "must be in [1, " + std::to_string(kMaxWidth >> 3) + "]");
  c.in_dim = r.require<int>("in_dim");
  if (c.in_dim < 1 || c.in_dim > kMaxWidth) r.fail("in_dim", "must be in [1, " + std::to_string(kMaxWidth) + "]");
  c.depths = four_ints(r, "depths", 0, 256);
  c.num_heads = four_ints(r, "num_heads", 1, kMaxWidth);
  // A window holds window^2 tokens that attend to each other: 256 (65536 tokens) is far past
  // any released model (32) and keeps the attention buffers finite.
  c.window_size = four_ints(r, "window_size", 1, 256);
  c.mlp_ratio = r.require<double>("mlp_ratio");
  for (int i = 2; i < 4; ++i) {
    const double hidden = std::floor(c.stage_dim(i) * c.mlp_ratio);
    if (!(hidden >= 1 && hidden <= 16.0 * kMaxWidth))
      r.fail("mlp_ratio", "gives an MLP width of " + std::to_string(hidden) + " in stage " + std::to_string(i));
    if (!MambaVisionConfig::attention_blocks(c.depths[i]).empty() && c.stage_dim(i) % c.num_heads[i] != 0)
      r.fail("num_heads", "stage " + std::to_string(i) + " width " + std::to_string(c.stage_dim(i)) +
                              " is not divisible by " + std::to_string(c.num_heads[i]) + " heads");
  }
  c.in_chans = r.get<int>("in_chans", 3);
  if (c.in_chans < 1 || c.in_chans > 64) r.fail("in_chans", "must be in [1, 64]");
  c.num_classes = r.get<int>("num_classes", 1000);
  if (c.num_classes < 1 || c.num_classes > (1 << 20))
    r.fail("num_classes", "must be at least 1 (a model without head is not supported; use features)");
  c.qkv_bias = r.get<bool>("qkv_bias", true);
  c.qk_norm = truthy(r, "qk_scale", r.get<Json>("qk_scale", Json()));
  c.layer_scale = makes_layer_scale(r, "layer_scale");
  c.layer_scale_conv = makes_layer_scale(r, "layer_scale_conv");
  // Training-only regularisation: identity in eval mode.
  r.ignore("drop_path_rate");
  r.ignore("drop_rate");
  r.ignore("attn_drop_rate");
  // The official constructor swallows these through **kwargs without using them: the registry
  // passes `resolution`, and timm's default-cfg update adds `img_size` for fixed-size cfgs.
  r.ignore("resolution");
  r.ignore("img_size");
  r.finish();
  return c;
}

}  // namespace mcv::vision
