#pragma once
// Oracle checks: run a port on an oracle folder (config.json, io.safetensors, weights.safetensors;
// see shared/oracles/README.md) and compare every output and named intermediate it produces.
// Families register a runner; `mcv check-oracle` and the oracle tests share this code.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mcv/checkpoint.h"
#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::oracle {

struct OracleOptions {
  Device device = Device::cpu();
  DType dtype = DType::f32;  ///< compute dtype of the port; f32 is judged against the tolerances
};

/// An opened oracle folder.
struct OracleFolder {
  std::filesystem::path dir;
  nlohmann::json config;
  std::string family;
  Checkpoint io;
  std::optional<Checkpoint> weights;

  static OracleFolder open(const std::filesystem::path& dir);
  /// The io tensor `name`; an Error naming the folder when it is missing.
  const Tensor& io_tensor(const std::string& name) const;
};

/// A family's runner: computes the port's results for the folder, named like the io tensors
/// ("output", "out", "last_state", "feat.<name>").
using FamilyRunner = std::function<std::map<std::string, Tensor>(const OracleFolder&, Context&, const OracleOptions&)>;
/// Adds the runners of every family this build supports (oracle_runners.cpp).
void register_builtin_runners(std::map<std::string, FamilyRunner>& runners);

struct TensorCheck {
  std::string name;
  bool is_output = false;
  double max_abs = 0, rel_l2 = 0;
  double limit_max_abs = 0, limit_rel_l2 = 0;  ///< what was required (0: not judged)
  std::int64_t non_finite = 0;
  bool passed = false;
};

struct OracleResult {
  std::string name, family;
  std::vector<TensorCheck> checks;
  bool passed = false;
  double seconds = 0;
};

/// Runs and judges one folder. Errors (unknown family, unsupported constructor argument, bad
/// files) are thrown as mcv::Error: nothing ran.
OracleResult run_oracle(const std::filesystem::path& dir, const OracleOptions& options);

/// Pass rules. f32: outputs within the folder's `tolerance` (max_abs and rel_l2; last_state
/// within `tolerance_last_state` when given); each intermediate within 20x its recorded
/// float32-vs-float64 error (`observed_fp32_gpu_vs_fp64_cpu`), with a 1e-6 absolute floor.
/// bf16/f16: outputs rel_l2 <= 2e-2 and every result finite.
void judge(const OracleFolder& folder, const OracleOptions& options, OracleResult& result,
           const std::map<std::string, Tensor>& produced);

}  // namespace mcv::oracle
