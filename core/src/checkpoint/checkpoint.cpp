#include "mcv/checkpoint.h"

#include <cstring>

#include "mcv/error.h"
#include "readers.h"

namespace mcv {

namespace {

// torch.save before 1.6 (or with _use_new_zipfile_serialization=False) starts with a pickled
// magic number: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c.
constexpr std::uint8_t kLegacyTorchMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                              0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

checkpoint::Loaded load(const checkpoint::ByteSource& source, const CheckpointOptions& options) {
  const std::uint8_t* p = source.data;
  const std::size_t n = source.size;
  const std::string& file = source.name;
  if (n == 0) throw Error(file, "file is empty");
  if (n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6)))
    return checkpoint::read_torch_zip(source, options);
  const bool legacy_pickle = n >= sizeof kLegacyTorchMagic && std::memcmp(p, kLegacyTorchMagic, sizeof kLegacyTorchMagic) == 0;
  const bool legacy_tar = n >= 262 && std::memcmp(p + 257, "ustar", 5) == 0;
  if (legacy_pickle || legacy_tar)
    throw Error(file, "legacy non-zip torch format is not supported; re-save with torch>=1.6");
  if (n >= 9 && p[8] == '{') return checkpoint::read_safetensors(source);
  if (p[0] == 0x80 && n >= 2 && p[1] <= 5)
    throw Error(file, "is a plain pickle, not a torch.save zip checkpoint or safetensors file");
  if (n < 9) throw Error(file, "file of " + std::to_string(n) + " bytes is too short to be a checkpoint");
  throw Error(file, "unrecognised format: neither safetensors nor a PyTorch zip checkpoint");
}

}  // namespace

struct CheckpointBuilder {
  static Checkpoint build(std::filesystem::path path, checkpoint::Loaded loaded) {
    Checkpoint c;
    c.path_ = std::move(path);
    c.format_ = std::move(loaded.format);
    for (auto& [name, tensor] : loaded.tensors) {
      if (!c.tensors_.emplace(name, tensor).second)
        throw Error(c.path_.string(), "tensor '" + name + "' appears twice");
      c.names_.push_back(name);
    }
    c.metadata_ = std::move(loaded.metadata);
    c.state_dict_key_ = std::move(loaded.state_dict_key);
    c.other_entries_ = std::move(loaded.other_entries);
    return c;
  }
};

Checkpoint Checkpoint::open(const std::filesystem::path& path, const CheckpointOptions& options) {
  const checkpoint::ByteSource source = checkpoint::map_file(path);
  return CheckpointBuilder::build(path, load(source, options));
}

Checkpoint Checkpoint::from_bytes(std::string bytes, const std::string& name, const CheckpointOptions& options) {
  const checkpoint::ByteSource source = checkpoint::own_bytes(std::move(bytes), name);
  return CheckpointBuilder::build(name, load(source, options));
}

const Tensor& Checkpoint::at(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  std::string hint;
  if (tensors_.count("module." + name)) hint = " (the file has 'module." + name + "': saved from a DDP wrapper)";
  throw Error(path_.string(), "no tensor named '" + name + "'" + hint);
}

std::vector<std::string> Checkpoint::other_keys() const {
  std::vector<std::string> keys;
  for (const auto& e : other_entries_) keys.push_back(e.key);
  return keys;
}

bool Checkpoint::has_module_prefix() const {
  if (names_.empty()) return false;
  for (const auto& n : names_)
    if (n.rfind("module.", 0) != 0) return false;
  return true;
}

std::int64_t Checkpoint::parameter_count() const {
  std::int64_t total = 0;
  for (const auto& [name, t] : tensors_) total += t.numel();
  return total;
}

}  // namespace mcv
