#pragma once
/// \file
/// Checkpoints: name -> tensor maps read from safetensors files (memory-mapped, zero-copy) or from
/// official PyTorch checkpoints (`torch.save` zip archives: `.pth`, `.pth.tar`, `.bin`), and
/// safetensors output.
///
/// The PyTorch reader never runs code from the file: a restricted unpickler understands only what
/// tensor state dicts are made of (dicts, lists, tuples, numbers, strings, tensors, storages).
/// Any other Python object (argparse.Namespace, numpy scalars, `os.system`, ...) becomes an inert
/// placeholder that is never imported or called, so a training checkpoint still yields its
/// weights. Every malformed input is an mcv::Error naming the file and the problem.
///
/// Stored element types without a DType of their own are converted on load: f64 -> f32 (rounded),
/// bool -> u8, i8 / i16 / u16 -> i32. Other tensors view the file's memory map without a copy
/// (copy-on-write: writing into one never changes the file) unless their data is misaligned or
/// strided, in which case they are contiguous copies.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mcv/tensor.h"

namespace mcv {

struct CheckpointOptions {
  /// Choose the EMA copy of the weights (`model_ema`, `state_dict_ema`, `ema`, ...) instead of
  /// the regular one; an error when the file holds none.
  bool prefer_ema = false;
};

/// A top-level entry of a training checkpoint that is not the chosen state dict.
struct CheckpointEntry {
  std::string key;
  std::string kind;  ///< short description: "int", "dict (12 tensors)", "argparse.Namespace", ...
};

class Checkpoint {
 public:
  /// Opens a safetensors file or a PyTorch zip checkpoint; the format is sniffed from the
  /// content, not the extension. Tensors are CPU tensors under their names in the file.
  static Checkpoint open(const std::filesystem::path& path, const CheckpointOptions& options = {});
  /// Same, from bytes in memory; `name` stands for the file in error messages. Used by tests and
  /// fuzz targets.
  static Checkpoint from_bytes(std::string bytes, const std::string& name,
                               const CheckpointOptions& options = {});

  const std::filesystem::path& path() const { return path_; }
  /// "safetensors" or "pytorch-zip".
  const std::string& format() const { return format_; }
  /// CPU tensors, names unchanged (a DDP `module.` prefix is kept).
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  /// Tensor names in the order the file lists them.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  /// The tensor called `name`; an Error naming the file and the tensor when it is missing.
  const Tensor& at(const std::string& name) const;
  /// The safetensors `__metadata__` map (empty for PyTorch files).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Where the state dict was found: "" for the top level, else the nested key path joined with
  /// '/' (e.g. "model", "state_dict_ema").
  const std::string& state_dict_key() const { return state_dict_key_; }
  /// Top-level keys other than the chosen state dict (for `mcv inspect`).
  std::vector<std::string> other_keys() const;
  const std::vector<CheckpointEntry>& other_entries() const { return other_entries_; }
  /// True when every tensor name starts with "module." (saved from a DistributedDataParallel
  /// wrapper); the names are kept as they are.
  bool has_module_prefix() const;
  /// Sum of the element counts of all tensors.
  std::int64_t parameter_count() const;

 private:
  friend struct CheckpointBuilder;
  std::filesystem::path path_;
  std::string format_;
  std::map<std::string, Tensor> tensors_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
  std::string state_dict_key_;
  std::vector<CheckpointEntry> other_entries_;
};

/// Writes tensors (any device, any strides; copied to contiguous host memory) as a safetensors
/// file, atomically (a temporary file renamed into place). Names are kept as they are.
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Encodes tensors as safetensors bytes in memory (what save_safetensors writes).
std::string encode_safetensors(const std::map<std::string, Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

/// Runs the restricted unpickler alone on raw pickle bytes (a `data.pkl`), finds the state dict
/// and checks every tensor's geometry against its storage, without reading storage data.
/// Returns the number of tensors found. For fuzz targets and tests.
std::size_t parse_torch_pickle(std::string_view bytes, const std::string& name,
                               const CheckpointOptions& options = {});

}  // namespace mcv
