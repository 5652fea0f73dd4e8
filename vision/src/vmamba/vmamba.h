#pragma once
// VMamba (MzeroMiko/VMamba, classification/models/vmamba.py, constructor `VSSM`): a conv patch
// embedding, four stages of VSS blocks (x + SS2D(norm(x)), then x + MLP(norm2(x)) when
// mlp_ratio > 0) separated by downsampling layers, and a norm + average pool + linear head.
// SS2D is the 2D selective scan: in_proj, depthwise conv + activation, per-direction x_proj /
// dt_proj, a selective scan along four orders of the grid whose outputs are merged back onto the
// grid, an output norm, optional z gate, out_proj.
//
// Every option of the official code that changes the function is a field of VmambaConfig; the
// official forward_type string is decoded into SS2D options (see parse_vmamba_args). The network
// always runs NHWC: "ln" and "ln2d" (channel_first) compute the same function, only the official
// tensor layout differs, which matters for the oracle taps alone.
//
// Internal to mcv::vision: the registry reaches the family through vmamba_family().

#include <functional>
#include <string>
#include <vector>

#include "mcv/kernels/nn.h"
#include "model.h"

namespace mcv::vision {

/// How the four scan directions visit the grid (official cross_scan_fn `scans`).
enum class VmambaScanMode {
  cross2d,  ///< row-major, column-major and their reverses (every released model)
  unidi,    ///< four row-major forward scans ("v051d")
  bidi,     ///< two forward and two reverse row-major scans ("v052d")
};

/// What SS2D applies to the merged scan output (forward_type postfixes `_on*`).
enum class VmambaOutNorm {
  layer_norm,  ///< LayerNorm / LayerNorm2d(d_inner) (default)
  none,        ///< "_onnone"
  dwconv3,     ///< "_ondwconv3": depthwise 3x3 conv, no bias
  cnorm,       ///< "_oncnorm": LayerNorm then depthwise 3x3 conv
};

enum class VmambaNorm { layer_norm, batch_norm };

/// SS2D options, decoded from forward_type and the ssm_* arguments.
struct Ss2dOptions {
  bool v0 = false;            ///< forward_type "v0"/"v0seq" (SS2Dv0: fixed conv 3 + bias, SiLU)
  bool z_gate = true;         ///< in_proj also produces z and the output is multiplied by it
  bool z_act = true;          ///< z goes through the activation first (not "_nozact")
  bool out_act = false;       ///< "_oact": GELU after the output norm
  VmambaOutNorm out_norm = VmambaOutNorm::layer_norm;
  VmambaScanMode scan = VmambaScanMode::cross2d;
  kernels::Activation act = kernels::Activation::silu;  ///< after the conv, and on z
  int d_conv = 3;             ///< depthwise conv kernel; <= 1 means no conv
  bool conv_bias = true;
  int d_state = 16;
  double ssm_ratio = 2.0;
  int dt_rank = 0;            ///< 0: "auto" = ceil(d_model / 16)
};

/// The official VSSM constructor arguments, validated.
struct VmambaConfig {
  int patch_size = 4;
  int in_chans = 3;
  int num_classes = 1000;
  std::vector<int> depths;
  std::vector<int> dims;             ///< per stage (an int `dims` expands to dims * 2^i)
  Ss2dOptions ssm;
  double mlp_ratio = 4.0;
  kernels::Activation mlp_act = kernels::Activation::gelu;
  bool gmlp = false;
  bool patch_norm = true;
  VmambaNorm norm = VmambaNorm::layer_norm;
  bool channel_first = false;        ///< norm_layer "ln2d" or "bn" (official NCHW layout)
  std::string downsample_version = "v2";  ///< "v1" (PatchMerging2D), "v2" (conv 2x2), "v3" (conv 3x3 s2)
  std::string patchembed_version = "v1";  ///< "v1" (one conv), "v2" (two convs with GELU)
  bool posembed = false;
  int imgsize = 224;

  int num_stages() const { return static_cast<int>(depths.size()); }
  int d_inner(int stage) const { return static_cast<int>(ssm.ssm_ratio * dims[stage]); }
  int dt_rank(int stage) const { return ssm.dt_rank > 0 ? ssm.dt_rank : (dims[stage] + 15) / 16; }
  bool ssm_branch() const { return ssm.ssm_ratio > 0; }
  bool mlp_branch() const { return mlp_ratio > 0; }
};

/// Reads and validates the official keyword arguments; unsupported or unknown ones are an
/// mcv::Error naming the argument.
VmambaConfig parse_vmamba_args(const Json& args);

/// Builds the model from official keyword arguments.
std::unique_ptr<VisionModel> build_vmamba(const Json& args);

/// Maps a state-dict name of the first VMamba releases (PatchEmbed2D.proj, blocks' ln_1 and
/// self_attention, top-level norm and head) to the current name, as VSSM._load_from_state_dict
/// does; current names are returned unchanged.
std::string vmamba_legacy_name(const std::string& name);

/// The family: builder and every released variant.
Family vmamba_family();

}  // namespace mcv::vision
