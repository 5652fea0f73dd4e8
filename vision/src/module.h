#pragma once
// Modules own their parameters under the official PyTorch names (e.g. `layers.3.mixer.A_log`), so
// an official state dict loads with no renaming table; loading is strict and reports every
// missing, unexpected and mis-shaped tensor at once.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mcv/checkpoint.h"
#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::vision {

/// How a parameter is stored for compute.
enum class ParamKind {
  weight,  ///< converted to the compute dtype (f32, bf16 or f16)
  f32,     ///< kept in f32 whatever the compute dtype (A_log, D, dt bias, norm weights, BN stats)
  ignored, ///< present in official state dicts, unused at inference (num_batches_tracked)
};

struct Param {
  std::string name;  ///< full official name, set when the tree is walked
  Shape shape;       ///< expected shape; an empty shape with `any_shape` accepts any
  ParamKind kind = ParamKind::weight;
  bool optional = false;  ///< may be absent from a checkpoint (e.g. a buffer added in a later release)
  /// Other checkpoint shapes holding the same elements in the same order, viewed as `shape` on
  /// load (e.g. a 1x1 conv weight (out, in, 1, 1) for a linear (out, in), as VMamba's Linear2d).
  std::vector<Shape> alt_shapes;
  Tensor value;           ///< on the model's device after loading
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Visits every parameter with its full name (`prefix` + local path).
  void visit_params(const std::function<void(const std::string&, Param&)>& fn, const std::string& prefix = "");
  /// Called after all parameters are loaded (on the target device): precompute derived tensors
  /// (A = -exp(A_log), folded BatchNorm, transposed weights). Children first.
  void finalize(Context& ctx);

 protected:
  /// Registers a parameter under a local name ("weight", "A_log").
  Param& param(const std::string& local_name, Shape shape, ParamKind kind = ParamKind::weight);
  /// Registers a child module under a local name ("mixer", "layers.3" — dots allowed for lists).
  template <typename M>
  M& child(const std::string& local_name, std::unique_ptr<M> module) {
    M& ref = *module;
    children_.emplace_back(local_name, std::move(module));
    return ref;
  }
  template <typename M, typename... Args>
  M& make_child(const std::string& local_name, Args&&... args) {
    return child(local_name, std::make_unique<M>(std::forward<Args>(args)...));
  }
  virtual void on_loaded(Context&) {}

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Param>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

struct LoadOptions {
  Device device = Device::cpu();
  DType dtype = DType::f32;     ///< compute dtype for ParamKind::weight
  std::string key_prefix;       ///< stripped from checkpoint names first (e.g. "model." for HF files)
  /// Then maps a checkpoint name to the module name, for families whose official loader renames
  /// older checkpoints (VSSM._load_from_state_dict); names are used as they are when empty.
  std::function<std::string(const std::string&)> rename;
};

/// Loads every parameter of `root` from `checkpoint` by name, strictly: all missing, unexpected
/// and mis-shaped tensors are listed in one mcv::Error naming the file. Then runs finalize().
void load_state_dict(Module& root, const Checkpoint& checkpoint, Context& ctx, const LoadOptions& options);
/// Same from a name -> tensor map; `source` names it in errors.
void load_state_dict(Module& root, const std::map<std::string, Tensor>& tensors, const std::string& source,
                     Context& ctx, const LoadOptions& options);

/// Total elements of all non-ignored parameters.
std::int64_t count_parameters(Module& root);

}  // namespace mcv::vision
