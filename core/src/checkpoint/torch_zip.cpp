// PyTorch checkpoints as torch.save writes them since 1.6: a zip holding <archive>/data.pkl (the
// pickled object, tensors referring to storages by key), <archive>/data/<key> (raw storage bytes,
// little-endian), <archive>/version and, from torch 2, byteorder and .format_version.

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "mcv/error.h"
#include "readers.h"
#include "source_type.h"
#include "unpickler.h"
#include "zip_archive.h"

namespace mcv {

namespace checkpoint {

namespace {

constexpr std::uint64_t kMaxPickleBytes = std::uint64_t(1) << 30;
constexpr int kMaxSearchDepth = 6;
constexpr std::uint64_t kMaxExpandedBytes = std::uint64_t(1) << 30;

bool is_tensor_like(const Value* v) { return v->kind == Kind::tensor || v->kind == Kind::unsupported_tensor; }

std::string key_text(const Value* key) {
  if (key->kind == Kind::string) return key->text;
  if (key->kind == Kind::integer) return std::to_string(key->integer);
  return std::string("<").append(describe_value(key)).append(">");
}

// ---- finding the state dict ----

struct Candidate {
  const Value* dict = nullptr;
  std::vector<std::string> path;
  std::size_t tensors = 0;
  bool ema = false;
  bool known = false;
};

bool is_ema_name(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t start = 0;
  while (start <= lower.size()) {
    std::size_t end = lower.find_first_of("_.-", start);
    if (end == std::string::npos) end = lower.size();
    if (lower.compare(start, end - start, "ema") == 0 && end - start == 3) return true;
    start = end + 1;
  }
  return false;
}

bool is_known_name(const std::string& name) {
  static const char* const kNames[] = {"state_dict", "model", "model_state", "model_state_dict", "network_weights",
                                       "module", "net", "network", "params", "weights", "model_ema",
                                       "state_dict_ema", "ema", "ema_state_dict", "model_ema_state_dict"};
  for (const char* k : kNames)
    if (name == k) return true;
  return false;
}

void collect(const Value* dict, std::vector<std::string>& path, int depth, std::unordered_set<const Value*>& visited,
             std::vector<Candidate>& out) {
  if (!visited.insert(dict).second) return;
  Candidate c;
  c.dict = dict;
  c.path = path;
  for (std::size_t i = 0; i < dict->dict_size(); ++i)
    if (dict->dict_key(i)->kind == Kind::string && is_tensor_like(dict->dict_value(i))) ++c.tensors;
  for (const auto& part : path) c.ema = c.ema || is_ema_name(part);
  c.known = path.empty() || is_known_name(path.back());
  if (c.tensors > 0) out.push_back(c);
  if (depth >= kMaxSearchDepth) return;
  for (std::size_t i = 0; i < dict->dict_size(); ++i) {
    const Value* key = dict->dict_key(i);
    const Value* value = dict->dict_value(i);
    if (key->kind != Kind::string || value->kind != Kind::dict) continue;
    path.push_back(key->text);
    collect(value, path, depth + 1, visited, out);
    path.pop_back();
  }
}

std::string join_path(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : "/") + p;
  return out;
}

struct StateDict {
  const Value* dict = nullptr;
  std::string key;
  std::vector<CheckpointEntry> others;
};

StateDict find_state_dict(const Value* root, const std::string& file, const CheckpointOptions& options) {
  if (root->kind != Kind::dict) {
    if (root->kind == Kind::object)
      throw Error(file, "holds a pickled '" + root->text +
                            "' object, not a state dict (save model.state_dict() instead of the model)");
    if (is_tensor_like(root)) throw Error(file, "holds a single tensor, not a state dict of named tensors");
    throw Error(file, "holds a " + describe_value(root) + ", not a state dict of tensors");
  }
  std::vector<Candidate> candidates;
  std::vector<std::string> path;
  std::unordered_set<const Value*> visited;
  collect(root, path, 0, visited, candidates);
  if (candidates.empty()) throw Error(file, "no tensor state dict found (" + describe_value(root) + " without tensors)");

  std::vector<const Candidate*> pool;
  for (const auto& c : candidates)
    if (c.ema == options.prefer_ema) pool.push_back(&c);
  if (pool.empty()) {
    if (options.prefer_ema) throw Error(file, "EMA weights were requested but the checkpoint holds none");
    for (const auto& c : candidates) pool.push_back(&c);  // only EMA copies: they are the weights
  }
  // Known key names beat unknown ones, then more tensors, then shallower: an optimizer's or a
  // sub-module's dict never wins over the model's.
  const Candidate* best = pool.front();
  for (const Candidate* c : pool) {
    if (std::make_tuple(c->known, c->tensors, -static_cast<int>(c->path.size())) >
        std::make_tuple(best->known, best->tensors, -static_cast<int>(best->path.size())))
      best = c;
  }
  StateDict sd;
  sd.dict = best->dict;
  sd.key = join_path(best->path);
  for (std::size_t i = 0; i < root->dict_size(); ++i) {
    const Value* key = root->dict_key(i);
    const Value* value = root->dict_value(i);
    if (best->path.empty() ? is_tensor_like(value) && key->kind == Kind::string
                           : key->kind == Kind::string && key->text == best->path.front())
      continue;
    sd.others.push_back({key_text(key), describe_value(value)});
  }
  return sd;
}

// ---- tensors ----

struct Geometry {
  std::int64_t numel = 0;
  bool contiguous = true;
};

// Checks that every element the tensor addresses lies inside its storage.
Geometry check_geometry(const std::string& file, const std::string& name, const TensorInfo& t) {
  const StorageInfo& s = *t.storage->storage;
  auto fail = [&](const std::string& problem) -> Error { return Error(file, "tensor '" + name + "': " + problem); };
  if (!s.type) throw fail("storage type " + s.type_name + " is not supported");
  Geometry g;
  // As for safetensors: extents (zeros counted as 1) must multiply within int64.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  unsigned __int128 span = 1, last = static_cast<std::uint64_t>(t.offset);
  bool empty = false;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    span = std::min<unsigned __int128>(span * static_cast<std::uint64_t>(std::max<std::int64_t>(t.shape[i], 1)),
                                       static_cast<unsigned __int128>(kMax) + 1);
    empty = empty || t.shape[i] == 0;
    if (t.shape[i] > 0) last += static_cast<unsigned __int128>(t.shape[i] - 1) * static_cast<std::uint64_t>(t.strides[i]);
    last = std::min<unsigned __int128>(last, std::numeric_limits<std::uint64_t>::max());  // saturate, no wrap
  }
  if (span > kMax) throw fail("shape " + shape_str(t.shape) + " overflows");
  const std::uint64_t numel = empty ? 0 : static_cast<std::uint64_t>(span);
  g.numel = static_cast<std::int64_t>(numel);
  if (g.numel == 0) {
    if (t.offset > s.numel) throw fail("storage offset " + std::to_string(t.offset) + " is past the end of its storage");
    return g;
  }
  if (last >= static_cast<std::uint64_t>(s.numel))
    throw fail("size " + shape_str(t.shape) + ", stride " + shape_str(t.strides) + " and offset " +
               std::to_string(t.offset) + " reach past the " + std::to_string(s.numel) + " elements of storage '" +
               s.key + "'");
  g.contiguous = t.strides == contiguous_strides(t.shape);
  if (!g.contiguous) {
    // Extents of 1 may carry any stride and still be contiguous.
    std::int64_t expected = 1;
    g.contiguous = true;
    for (std::size_t i = t.shape.size(); i-- > 0;) {
      if (t.shape[i] == 1) continue;
      if (t.strides[i] != expected) g.contiguous = false;
      expected *= t.shape[i];
    }
  }
  return g;
}

// Copies a strided view of `base` (a 1-D storage tensor) into a new contiguous tensor.
Tensor gather_strided(const Tensor& base, const TensorInfo& t, std::int64_t numel) {
  Tensor out = Tensor::empty(t.shape, base.dtype());
  const std::size_t es = base.element_size();
  const char* src = static_cast<const char*>(base.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const int rank = static_cast<int>(t.shape.size());
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t off = t.offset;
  for (std::int64_t k = 0; k < numel; ++k) {
    std::memcpy(dst + k * static_cast<std::int64_t>(es), src + off * static_cast<std::int64_t>(es), es);
    for (int i = rank - 1; i >= 0; --i) {
      if (++index[i] < t.shape[i]) {
        off += t.strides[i];
        break;
      }
      off -= t.strides[i] * (t.shape[i] - 1);
      index[i] = 0;
    }
  }
  return out;
}

class StorageLoader {
 public:
  StorageLoader(const ZipArchive& zip, std::string prefix, std::string file)
      : zip_(zip), prefix_(std::move(prefix)), file_(std::move(file)) {}

  Tensor base(const Value* storage, const std::string& tensor_name) {
    const auto it = cache_.find(storage);
    if (it != cache_.end()) return it->second;
    const StorageInfo& s = *storage->storage;
    const std::string entry_name = prefix_ + "data/" + s.key;
    auto fail = [&](const std::string& problem) -> Error {
      return Error(file_, "tensor '" + tensor_name + "': " + problem);
    };
    const std::uint64_t es = source_size(*s.type);
    if (static_cast<std::uint64_t>(s.numel) > std::numeric_limits<std::uint64_t>::max() / es)
      throw fail("storage '" + s.key + "' size overflows");
    const std::uint64_t bytes = static_cast<std::uint64_t>(s.numel) * es;
    const ZipEntry* entry = zip_.find(entry_name);
    Tensor t;
    if (!entry) {
      if (s.numel != 0) throw fail("storage '" + s.key + "' is missing from the archive (no entry " + entry_name + ")");
      t = Tensor::empty({0}, target_dtype(*s.type));
    } else {
      if (entry->size != bytes)
        throw fail("storage '" + s.key + "' holds " + std::to_string(entry->size) + " bytes, but " +
                   std::to_string(s.numel) + " elements of " + s.type_name + " need " + std::to_string(bytes));
      const ByteSource data = zip_.read(*entry, std::numeric_limits<std::uint64_t>::max(), false);
      t = storage_tensor(data.data, s.numel, *s.type, data.owner);
    }
    cache_.emplace(storage, t);
    return t;
  }

 private:
  const ZipArchive& zip_;
  std::string prefix_, file_;
  std::unordered_map<const Value*, Tensor> cache_;
};

// Finds "<archive>/data.pkl"; the archive folder is named after the file by torch, so any one
// top-level folder is accepted.
std::string find_prefix(const ZipArchive& zip, const std::string& file) {
  std::string prefix;
  bool torchscript = false;
  for (const auto& e : zip.entries()) {
    const std::size_t slash = e.name.find('/');
    if (slash == std::string::npos) continue;
    const std::string rest = e.name.substr(slash + 1);
    if (rest == "constants.pkl" || rest.rfind("code/", 0) == 0) torchscript = true;
    if (rest != "data.pkl") continue;
    if (!prefix.empty()) throw Error(file, "zip archive holds more than one data.pkl");
    prefix = e.name.substr(0, slash + 1);
  }
  if (torchscript)
    throw Error(file, "is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save the state_dict() instead");
  if (prefix.empty()) throw Error(file, "zip archive has no <archive>/data.pkl: not a PyTorch checkpoint");
  return prefix;
}

}  // namespace

Loaded read_torch_zip(const ByteSource& source, const CheckpointOptions& options) {
  const std::string& file = source.name;
  const ZipArchive zip(source);
  const std::string prefix = find_prefix(zip, file);
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const ByteSource b = zip.read(*order, 64, true);
    const std::string text(reinterpret_cast<const char*>(b.data), b.size);
    if (text != "little")
      throw Error(file, "byteorder '" + text.substr(0, 16) + "' is not supported (only little-endian checkpoints)");
  }
  const ByteSource pickle = zip.read(*zip.find(prefix + "data.pkl"), kMaxPickleBytes, true);
  const PickleDocument doc(std::string_view(reinterpret_cast<const char*>(pickle.data), pickle.size), file);
  const StateDict sd = find_state_dict(doc.root(), file, options);

  Loaded out;
  out.format = "pytorch-zip";
  out.state_dict_key = sd.key;
  out.other_entries = sd.others;
  StorageLoader storages(zip, prefix, file);
  std::uint64_t expanded_bytes = 0;
  for (std::size_t i = 0; i < sd.dict->dict_size(); ++i) {
    const Value* key = sd.dict->dict_key(i);
    const Value* value = sd.dict->dict_value(i);
    if (key->kind != Kind::string || !is_tensor_like(value)) continue;
    const std::string& name = key->text;
    if (value->kind == Kind::unsupported_tensor)
      throw Error(file, "tensor '" + name + "' is made by " + value->text + " (quantized, sparse or other special tensors are not supported)");
    const TensorInfo& info = *value->tensor;
    const Geometry g = check_geometry(file, name, info);
    Tensor t;
    if (g.numel == 0) {
      storages.base(info.storage, name);  // the storage must still be there and well formed
      t = Tensor::empty(info.shape, target_dtype(*info.storage->storage->type));
    } else {
      const Tensor base = storages.base(info.storage, name);
      if (g.numel > info.storage->storage->numel) {
        // Overlapping strides (an expand()ed tensor) materialise more elements than the file
        // holds: bounded, so a tiny file cannot ask for terabytes.
        expanded_bytes += static_cast<std::uint64_t>(g.numel) * base.element_size();
        if (g.numel > static_cast<std::int64_t>(kMaxExpandedBytes) || expanded_bytes > kMaxExpandedBytes)
          throw Error(file, "tensor '" + name + "': overlapping strides expand " +
                                std::to_string(info.storage->storage->numel) + " stored elements into " +
                                std::to_string(g.numel) + ", more than the " + std::to_string(kMaxExpandedBytes >> 20) +
                                " MiB allowed for such tensors");
      }
      t = g.contiguous ? base.slice(0, info.offset, info.offset + g.numel).view(info.shape)
                       : gather_strided(base, info, g.numel);
    }
    out.tensors.emplace_back(name, std::move(t));
  }
  return out;
}

}  // namespace checkpoint

std::size_t parse_torch_pickle(std::string_view bytes, const std::string& name, const CheckpointOptions& options) {
  using namespace checkpoint;
  const PickleDocument doc(bytes, name);
  const StateDict sd = find_state_dict(doc.root(), name, options);
  std::size_t count = 0;
  for (std::size_t i = 0; i < sd.dict->dict_size(); ++i) {
    const Value* value = sd.dict->dict_value(i);
    if (sd.dict->dict_key(i)->kind != Kind::string || value->kind != Kind::tensor) continue;
    check_geometry(name, sd.dict->dict_key(i)->text, *value->tensor);
    ++count;
  }
  return count;
}

}  // namespace mcv
