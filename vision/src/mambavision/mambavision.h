#pragma once
// MambaVision (NVlabs/MambaVision, mambavision/models/mamba_vision.py, constructor `MambaVision`):
// a conv stem, two residual conv stages, then two stages of windowed token blocks whose first
// half mixes tokens with MambaVisionMixer (selective scan + a symmetric non-SSM branch) and whose
// second half uses window self-attention; final BatchNorm, average pool and linear head.
//
// Internal to mcv::vision: the registry reaches the family through mambavision_family().

#include <array>
#include <string>
#include <vector>

#include "model.h"

namespace mcv::vision {

/// The official constructor arguments, validated. Field names follow the constructor.
struct MambaVisionConfig {
  int dim = 0;                         ///< stage-0 width; stage i has dim * 2^i channels
  int in_dim = 0;                      ///< width of the first stem conv
  int in_chans = 3;
  int num_classes = 1000;
  std::array<int, 4> depths{};         ///< blocks per stage
  std::array<int, 4> num_heads{};      ///< attention heads per stage (stages 2 and 3 use them)
  std::array<int, 4> window_size{};    ///< window side per stage (stages 2 and 3 use them)
  double mlp_ratio = 4;
  bool qkv_bias = true;
  bool qk_norm = false;                ///< official `qk_scale` (truthy -> LayerNorm on q and k)
  bool layer_scale = false;            ///< gamma_1/gamma_2 in the token blocks
  bool layer_scale_conv = false;       ///< gamma in the conv blocks

  /// Width of stage i.
  int stage_dim(int i) const { return dim << i; }
  /// Final width (input of norm and head).
  int num_features() const { return dim << 3; }
  /// Indices of the attention blocks of a token stage of `depth` blocks: the second half, as the
  /// official `transformer_blocks` list (odd depths keep one more mixer block).
  static std::vector<int> attention_blocks(int depth);
};

/// Reads and validates the official keyword arguments; unsupported or unknown ones are an
/// mcv::Error naming the argument.
MambaVisionConfig parse_mambavision_args(const Json& args);

/// Builds the model from official keyword arguments.
std::unique_ptr<VisionModel> build_mambavision(const Json& args);

/// The family: builder and every released variant.
Family mambavision_family();

}  // namespace mcv::vision
