// VSSM constructor arguments -> VmambaConfig. Defaults are the constructor's; every argument is
// read, and any value the official code would not build (or that this port cannot compute) is an
// error naming the argument.

#include <cctype>
#include <cmath>

#include "mcv/kernels/selective_scan.h"
#include "vmamba.h"

namespace mcv::vision {

namespace {

namespace k = mcv::kernels;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Removes `tag` from the end of `value` when it is there (the official checkpostfix).
bool strip_postfix(std::string& value, const std::string& tag) {
  if (value.size() >= tag.size() && value.compare(value.size() - tag.size(), tag.size(), tag) == 0) {
    value.resize(value.size() - tag.size());
    return true;
  }
  return false;
}

/// The official _ACTLAYERS table (silu, gelu, relu, sigmoid) as kernel activations.
k::Activation activation_arg(ArgReader& r, const std::string& name, const std::string& fallback) {
  const std::string v = lower(r.get<std::string>(name, fallback));
  if (v == "silu") return k::Activation::silu;
  if (v == "gelu") return k::Activation::gelu;
  if (v == "relu") return k::Activation::relu;
  if (v == "sigmoid") r.fail(name, "\"sigmoid\" is not supported by this port (no released model uses it)");
  r.fail(name, "unknown activation \"" + v + "\" (the official table has silu, gelu, relu, sigmoid)");
}

int positive_int(ArgReader& r, const std::string& name, int fallback) {
  const int v = r.get<int>(name, fallback);
  if (v < 1) r.fail(name, "must be >= 1 (got " + std::to_string(v) + ")");
  return v;
}

/// Decodes forward_type into SS2D options, following SS2D.__init__ / SS2Dv2.__initv2__.
void parse_forward_type(ArgReader& r, const std::string& forward_type, bool channel_first, Ss2dOptions& o) {
  const std::string arg = "forward_type";
  if (forward_type == "v0" || forward_type == "v0seq") {
    // SS2Dv0 hard-codes its conv, activation and gate, whatever the ssm_* arguments say.
    if (channel_first)
      r.fail(arg, "\"" + forward_type + "\" (SS2Dv0) supports only channel-last norms (norm_layer \"ln\")");
    o.v0 = true;
    o.z_gate = o.z_act = true;
    o.act = k::Activation::silu;
    o.d_conv = 3;
    o.conv_bias = true;
    o.out_norm = VmambaOutNorm::layer_norm;
    o.scan = VmambaScanMode::cross2d;
    return;
  }
  if (forward_type.rfind("xv", 0) == 0)
    r.fail(arg, "\"" + forward_type + "\" (SS2Dv3, the xv* ablations) is not supported by this port");
  if (forward_type.rfind("m", 0) == 0)
    r.fail(arg, "\"" + forward_type + "\" (SS2Dm0, the Mamba-2 ablation) is not supported by this port");
  std::string base = forward_type;
  strip_postfix(base, "_no32");  // input precision of the official CUDA scan only
  o.out_act = strip_postfix(base, "_oact");
  const bool noz = strip_postfix(base, "_noz");
  const bool nozact = strip_postfix(base, "_nozact");
  o.z_gate = !noz;
  o.z_act = !nozact;
  // get_outnorm: every postfix is stripped in this order, the first of this priority wins.
  const bool on_none = strip_postfix(base, "_onnone");
  const bool on_dwconv3 = strip_postfix(base, "_ondwconv3");
  const bool on_cnorm = strip_postfix(base, "_oncnorm");
  const bool on_softmax = strip_postfix(base, "_onsoftmax");
  const bool on_sigmoid = strip_postfix(base, "_onsigmoid");
  if (on_none)
    o.out_norm = VmambaOutNorm::none;
  else if (on_cnorm)
    o.out_norm = VmambaOutNorm::cnorm;
  else if (on_dwconv3)
    o.out_norm = VmambaOutNorm::dwconv3;
  else if (on_softmax || on_sigmoid)
    r.fail(arg, "\"" + forward_type + "\": the " + (on_softmax ? "_onsoftmax" : "_onsigmoid") +
                    " output norm is not supported by this port (no released model uses it)");
  else
    o.out_norm = VmambaOutNorm::layer_norm;
  static const char* kCross2d[] = {"v01", "v02", "v03", "v04", "v05", "v2", "v3", "v3_torch"};
  for (const char* name : kCross2d)
    if (base == name) {
      o.scan = VmambaScanMode::cross2d;
      return;
    }
  if (base == "v051d") {
    o.scan = VmambaScanMode::unidi;
    return;
  }
  if (base == "v052d") {
    o.scan = VmambaScanMode::bidi;
    return;
  }
  if (base == "v052dc" || base == "v052d3")
    r.fail(arg, "\"" + forward_type + "\" (" + (base == "v052dc" ? "cascade2d" : "rot90") +
                    " scan ablation) is not supported by this port");
  r.fail(arg, "unknown forward type \"" + forward_type + "\" (after postfixes: \"" + base +
                  "\"; the official table has v01-v05, v051d, v052d, v052dc, v2, v3 and v0)");
}

}  // namespace

VmambaConfig parse_vmamba_args(const Json& args) {
  ArgReader r(args, "VSSM");
  VmambaConfig c;
  c.patch_size = positive_int(r, "patch_size", 4);
  c.in_chans = positive_int(r, "in_chans", 3);
  c.num_classes = positive_int(r, "num_classes", 1000);

  c.depths = r.get<std::vector<int>>("depths", {2, 2, 9, 2});
  if (c.depths.empty()) r.fail("depths", "needs at least one stage");
  if (c.depths.size() > 8) r.fail("depths", "more than 8 stages are not supported");
  for (int d : c.depths)
    if (d < 0 || d > 1024) r.fail("depths", "block counts must be in 0..1024 (got " + std::to_string(d) + ")");
  const Json dims = r.get<Json>("dims", Json::array({96, 192, 384, 768}));
  if (dims.is_number_integer()) {
    const std::int64_t d = dims.get<std::int64_t>();
    if (d < 1) r.fail("dims", "must be >= 1");
    for (int i = 0; i < c.num_stages(); ++i) {
      const std::int64_t di = d << i;
      if (di > (1 << 20)) r.fail("dims", "stage width " + std::to_string(di) + " is too large");
      c.dims.push_back(static_cast<int>(di));
    }
  } else if (dims.is_array()) {
    for (const Json& d : dims) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 1 || d.get<std::int64_t>() > (1 << 20))
        r.fail("dims", "entries must be integers in 1..2^20 (got " + dims.dump() + ")");
      c.dims.push_back(d.get<int>());
    }
    if (c.dims.size() != c.depths.size())
      r.fail("dims", "has " + std::to_string(c.dims.size()) + " entries but depths has " +
                         std::to_string(c.depths.size()));
  } else {
    r.fail("dims", "must be an integer or a list of integers (got " + dims.dump() + ")");
  }

  // Norm layer first: channel_first decides which forward types exist.
  const std::string norm = lower(r.get<std::string>("norm_layer", "LN"));
  if (norm == "ln") {
    c.norm = VmambaNorm::layer_norm;
  } else if (norm == "ln2d") {
    c.norm = VmambaNorm::layer_norm;
    c.channel_first = true;
  } else if (norm == "bn") {
    c.norm = VmambaNorm::batch_norm;
    c.channel_first = true;
  } else {
    r.fail("norm_layer", "unknown norm \"" + norm + "\" (ln, ln2d or bn)");
  }

  Ss2dOptions& s = c.ssm;
  s.d_state = r.get<int>("ssm_d_state", 16);
  if (s.d_state < 1 || s.d_state > kernels::kSelectiveScanMaxState)
    r.fail("ssm_d_state", "must be in 1.." + std::to_string(kernels::kSelectiveScanMaxState) + " (got " +
                              std::to_string(s.d_state) + ")");
  s.ssm_ratio = r.get<double>("ssm_ratio", 2.0);
  if (!std::isfinite(s.ssm_ratio) || s.ssm_ratio < 0) r.fail("ssm_ratio", "must be >= 0");
  const Json rank = r.get<Json>("ssm_dt_rank", Json("auto"));
  if (rank.is_string() && rank.get<std::string>() == "auto") {
    s.dt_rank = 0;
  } else if (rank.is_number_integer() && rank.get<std::int64_t>() >= 1 && rank.get<std::int64_t>() <= (1 << 16)) {
    s.dt_rank = rank.get<int>();
  } else {
    r.fail("ssm_dt_rank", "must be \"auto\" or a positive integer (got " + rank.dump() + ")");
  }
  s.act = activation_arg(r, "ssm_act_layer", "silu");
  s.d_conv = r.get<int>("ssm_conv", 3);
  if (s.d_conv > 1 && s.d_conv % 2 == 0)
    r.fail("ssm_conv", "an even kernel (" + std::to_string(s.d_conv) +
                           ") shrinks the grid in the official code, which then fails; use an odd size");
  if (s.d_conv > 31) r.fail("ssm_conv", "kernels above 31 are not supported");
  s.conv_bias = r.get<bool>("ssm_conv_bias", true);
  r.ignore("ssm_drop_rate");
  // Passed by older build_model versions (config.py SSM_RANK_RATIO); VSSM swallows it in **kwargs.
  r.ignore("ssm_rank_ratio");
  const std::string init = r.get<std::string>("ssm_init", "v0");
  if (init != "v0" && init != "v1" && init != "v2")
    r.fail("ssm_init", "\"" + init + "\" creates no dt/A/D parameters in the official code (v0, v1 or v2)");
  parse_forward_type(r, r.get<std::string>("forward_type", "v2"), c.channel_first, s);
  if (c.ssm_branch())
    for (int i = 0; i < c.num_stages(); ++i)
      if (c.d_inner(i) < 1)
        r.fail("ssm_ratio", "gives an empty inner width for stage " + std::to_string(i) + " (int(" +
                                std::to_string(s.ssm_ratio) + " * " + std::to_string(c.dims[i]) + ") = 0)");

  c.mlp_ratio = r.get<double>("mlp_ratio", 4.0);
  if (!std::isfinite(c.mlp_ratio) || c.mlp_ratio < 0) r.fail("mlp_ratio", "must be >= 0");
  if (c.mlp_branch())
    for (int d : c.dims)
      if (static_cast<int>(d * c.mlp_ratio) < 1) r.fail("mlp_ratio", "gives an empty MLP hidden width");
  c.mlp_act = activation_arg(r, "mlp_act_layer", "gelu");
  r.ignore("mlp_drop_rate");
  c.gmlp = r.get<bool>("gmlp", false);

  r.ignore("drop_path_rate");
  r.ignore("use_checkpoint");
  c.patch_norm = r.get<bool>("patch_norm", true);
  c.downsample_version = r.get<std::string>("downsample_version", "v2");
  if (c.downsample_version == "none")
    r.fail("downsample_version", "\"none\" leaves a None module in every stage, which the official forward cannot call");
  if (c.downsample_version != "v1" && c.downsample_version != "v2" && c.downsample_version != "v3")
    r.fail("downsample_version", "unknown version \"" + c.downsample_version + "\" (v1, v2 or v3)");
  c.patchembed_version = r.get<std::string>("patchembed_version", "v1");
  if (c.patchembed_version != "v1" && c.patchembed_version != "v2")
    r.fail("patchembed_version", "unknown version \"" + c.patchembed_version + "\" (v1 or v2)");
  if (c.patchembed_version == "v2" && c.patch_size < 2)
    r.fail("patch_size", "patch embedding v2 needs patch_size >= 2 (its convs have stride patch_size / 2)");
  c.posembed = r.get<bool>("posembed", false);
  c.imgsize = r.get<int>("imgsize", 224);
  if (c.posembed && c.imgsize / c.patch_size < 1)
    r.fail("imgsize", "gives an empty position embedding (imgsize / patch_size = 0)");
  r.finish();
  return c;
}

}  // namespace mcv::vision
