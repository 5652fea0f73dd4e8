#pragma once
// The format readers behind mcv::Checkpoint.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "byte_source.h"
#include "mcv/checkpoint.h"

namespace mcv::checkpoint {

/// What a reader found; Checkpoint copies it into place.
struct Loaded {
  std::string format;
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  std::string state_dict_key;
  std::vector<CheckpointEntry> other_entries;
};

/// The safetensors header may not exceed this (the reference implementation's limit too).
constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

Loaded read_safetensors(const ByteSource& source);
Loaded read_torch_zip(const ByteSource& source, const CheckpointOptions& options);

}  // namespace mcv::checkpoint
