#pragma once
// The internal model interface every vision family implements, the family builders (official
// constructor arguments -> model) and the argument reader that makes every unsupported argument
// an error naming it.

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mcv/error.h"
#include "mcv/vision.h"
#include "module.h"

namespace mcv::vision {

using Json = nlohmann::json;

/// Named intermediate results recorded during a forward pass (oracle checks locate mismatches
/// with them). Recording copies nothing: it keeps a reference to the tensor.
struct Taps {
  std::map<std::string, Tensor> values;
  void record(const std::string& name, const Tensor& t) {
    if (!values.count(name)) values[name] = t;  // first call of a module, like the oracle hooks
  }
};

class VisionModel : public Module {
 public:
  /// images (batch, 3, H, W) f32 on the model's device -> logits (batch, num_classes) f32.
  virtual Tensor forward(Context& ctx, const Tensor& images) = 0;
  /// Per-stage feature maps (batch, C_i, H_i, W_i) f32, for detection/segmentation heads.
  virtual std::vector<Tensor> forward_features(Context& ctx, const Tensor& images) = 0;
  virtual int num_classes() const = 0;
  /// Input sizes the architecture accepts: an error naming the size when not (e.g. not a
  /// multiple of the patch size).
  virtual void check_input(const Shape& images_shape) const = 0;

  Taps* taps = nullptr;

 protected:
  void tap(const std::string& name, const Tensor& t) {
    if (taps) taps->record(name, t);
  }
};

/// Reads official constructor arguments. Each get() marks the argument as understood; finish()
/// rejects any argument the port did not read, and checks reject values it does not support.
/// Errors read `argument <name>: <problem>`.
class ArgReader {
 public:
  ArgReader(const Json& args, std::string family);

  bool has(const std::string& name) const { return args_.contains(name) && !args_.at(name).is_null(); }
  template <typename T>
  T get(const std::string& name, const T& fallback) {
    used_.insert(name);
    if (!has(name)) return fallback;
    return convert<T>(name);
  }
  template <typename T>
  T require(const std::string& name) {
    used_.insert(name);
    if (!has(name)) fail(name, "required by the " + family_ + " constructor but missing");
    return convert<T>(name);
  }
  /// Marks an argument as accepted when it equals `expected` (or is absent); other values fail.
  template <typename T>
  void expect(const std::string& name, const T& expected, const std::string& why = "") {
    const T value = get<T>(name, expected);
    if (!(value == expected))
      fail(name, "value " + Json(value).dump() + " is not supported (only " + Json(expected).dump() + ")" +
                     (why.empty() ? "" : ": " + why));
  }
  /// Marks an argument as read and irrelevant at inference (drop_path_rate, use_checkpoint...).
  void ignore(const std::string& name) { used_.insert(name); }
  [[noreturn]] void fail(const std::string& name, const std::string& problem) const;
  /// Every argument not read so far is unsupported: an Error naming the first one.
  void finish() const;

 private:
  template <typename T>
  T convert(const std::string& name) {
    try {
      return args_.at(name).get<T>();
    } catch (const nlohmann::json::exception&) {
      fail(name, "has the wrong type: " + args_.at(name).dump());
    }
  }
  Json args_;
  std::string family_;
  std::set<std::string> used_;
};

/// A registered variant: its public description, the official constructor arguments that
/// build it, and how its checkpoint names relate to the module names.
struct ModelSpec {
  ModelInfo info;     ///< `parameters` is filled by the registry (built and counted)
  Json args;          ///< official constructor keyword arguments
  /// Stripped from checkpoint names when every name carries it (e.g. "model." in HF files);
  /// a checkpoint without it loads unchanged.
  std::string key_prefix;
};

/// A family of architectures built from the official constructor's keyword arguments.
struct Family {
  std::string name;         ///< "vim", "vmamba", "mambavision"
  std::string constructor;  ///< the official constructor this builder mirrors (for messages)
  std::function<std::unique_ptr<VisionModel>(const Json& args)> build;
  std::vector<ModelSpec> variants;
  /// Checkpoint name -> module name for older official checkpoints (see LoadOptions::rename).
  std::function<std::string(const std::string&)> rename_key;
};

/// Every family of this build (families.cpp lists them explicitly: static registration would be
/// dropped by a static link).
std::vector<Family> builtin_families();
/// The family called `name`; an Error listing the known ones otherwise.
const Family& find_family(const std::string& name);
std::vector<std::string> family_names();
/// The registered variant called `name` (official name or alias, case-insensitive).
const ModelSpec& find_spec(const std::string& name);

}  // namespace mcv::vision
