// safetensors: 8-byte little-endian header length, a JSON header mapping names to
// {dtype, shape, data_offsets}, then the tensor bytes. Offsets are relative to the data start.

#include <algorithm>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "mcv/error.h"
#include "mcv/file.h"
#include "readers.h"
#include "source_type.h"
#include "unpickler.h"

namespace mcv {

namespace checkpoint {

namespace {

using Json = nlohmann::ordered_json;

struct Entry {
  std::string name;
  SourceType type;
  Shape shape;
  std::int64_t numel = 0;
  std::uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& file, const std::string& name, const Json& info, std::uint64_t data_size) {
  const std::string who = "tensor '" + name + "'";
  auto fail = [&](const std::string& problem) -> Error { return Error(file, who + ": " + problem); };
  if (name.empty()) throw Error(file, "safetensors header has a tensor with an empty name");
  if (!info.is_object()) throw fail("header entry is not a JSON object");
  for (const auto& [field, unused] : info.items()) {
    (void)unused;
    if (field != "dtype" && field != "shape" && field != "data_offsets")
      throw fail("unexpected header field '" + field + "'");
  }
  if (!info.contains("dtype") || !info["dtype"].is_string()) throw fail("missing or non-string dtype");
  if (!info.contains("shape") || !info["shape"].is_array()) throw fail("missing or non-array shape");
  if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
    throw fail("data_offsets must be an array of two integers");

  Entry e;
  e.name = name;
  const std::string dtype = info["dtype"].get<std::string>();
  const auto type = parse_safetensors_type(dtype);
  if (!type)
    throw fail("unsupported dtype '" + dtype + "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U16, U8, BOOL)");
  e.type = *type;

  const Json& shape = info["shape"];
  if (shape.size() > static_cast<std::size_t>(PickleDocument::kMaxRank)) throw fail("shape has too many dimensions");
  // The product of the extents with zeros counted as 1 is what row-major strides reach: it must
  // fit int64 even when a zero extent makes the element count 0.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t span = 1;
  bool overflow = false, empty = false;
  for (const auto& d : shape) {
    if (!d.is_number_unsigned()) throw fail("shape holds a value that is not a non-negative integer");
    const std::uint64_t extent = d.get<std::uint64_t>();
    const std::uint64_t at_least_one = std::max<std::uint64_t>(extent, 1);
    if (extent > kMax || span > kMax / at_least_one) overflow = true;
    else span *= at_least_one;
    empty = empty || extent == 0;
    e.shape.push_back(static_cast<std::int64_t>(std::min(extent, kMax)));
  }
  const std::uint64_t es = source_size(e.type);
  const std::uint64_t numel = empty ? 0 : span;
  if (overflow || numel > std::numeric_limits<std::uint64_t>::max() / es)
    throw fail("shape " + shape_str(e.shape) + " overflows");
  e.numel = static_cast<std::int64_t>(numel);

  const Json& offsets = info["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    throw fail("data_offsets must be non-negative integers");
  e.begin = offsets[0].get<std::uint64_t>();
  e.end = offsets[1].get<std::uint64_t>();
  if (e.begin > e.end)
    throw fail("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] begin after they end");
  if (e.end > data_size)
    throw fail("data_offsets end at " + std::to_string(e.end) + ", past the " + std::to_string(data_size) +
               " data bytes in the file (truncated?)");
  if (e.end - e.begin != numel * es)
    throw fail(std::string(source_name(e.type)) + shape_str(e.shape) + " needs " + std::to_string(numel * es) +
               " bytes but data_offsets span " + std::to_string(e.end - e.begin));
  return e;
}

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

// Streams a safetensors file to `sink` (header, then each tensor's bytes).
void write_safetensors(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata,
                       const std::string& subject, const std::function<void(const void*, std::size_t)>& sink) {
  // Largest elements first, then by name: with a header padded to 8 bytes every tensor starts
  // aligned to its element size with no gaps between tensors (readers then need no copies).
  std::vector<std::pair<const std::string*, Tensor>> order;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) throw Error(subject, "cannot save a tensor with an empty name");
    if (name == "__metadata__") throw Error(subject, "'__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) throw Error(subject, "tensor '" + name + "' is undefined");
    order.emplace_back(&name, t);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second.element_size() > b.second.element_size();
  });
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    Json shape = Json::array();
    for (std::int64_t d : t.shape()) shape.push_back(d);
    const std::uint64_t bytes = t.nbytes();
    header[*name] = Json{{"dtype", safetensors_dtype(t.dtype())}, {"shape", std::move(shape)},
                         {"data_offsets", Json::array({offset, offset + bytes})}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, nlohmann::detail::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    throw Error(subject, "tensor names and metadata must be valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(std::uint64_t(text.size()) >> (8 * i));
  sink(length, 8);
  sink(text.data(), text.size());
  for (const auto& [name, t] : order) {
    const Tensor host = (t.device().is_cpu() ? t : t.to(Device::cpu())).contiguous();
    if (host.numel() > 0) sink(host.raw_data(), host.nbytes());
  }
}

}  // namespace

Loaded read_safetensors(const ByteSource& source) {
  const std::string& file = source.name;
  if (source.size < 8) throw Error(file, "too short for a safetensors header (" + std::to_string(source.size) + " bytes)");
  const std::uint64_t header_size = load_u64(source.data);
  if (header_size > kMaxSafetensorsHeader)
    throw Error(file, "safetensors header length " + std::to_string(header_size) + " exceeds the limit of " +
                          std::to_string(kMaxSafetensorsHeader) + " bytes");
  if (header_size > source.size - 8)
    throw Error(file, "safetensors header length " + std::to_string(header_size) + " runs past the end of the file (" +
                          std::to_string(source.size) + " bytes; truncated?)");
  const char* text = reinterpret_cast<const char*>(source.data + 8);

  // Duplicate names would silently shadow each other in a JSON object, so they are caught here.
  std::unordered_set<std::string> seen;
  std::string duplicate;
  const Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, text + header_size, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) throw Error(file, "safetensors header names tensor '" + duplicate + "' twice");
  if (!header.is_object()) throw Error(file, "safetensors header is not a JSON object");

  Loaded out;
  out.format = "safetensors";
  const std::uint64_t data_size = source.size - 8 - header_size;
  const std::uint8_t* data = source.data + 8 + header_size;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error(file, "safetensors __metadata__ is not a JSON object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) throw Error(file, "safetensors __metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(file, name, info, data_size));
  }

  std::vector<const Entry*> by_offset;
  for (const auto& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw Error(file, "tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                            "' overlap in the data section");
  }

  out.tensors.reserve(entries.size());
  for (const auto& e : entries) {
    Tensor t = e.numel == 0 ? Tensor::empty(e.shape, target_dtype(e.type))
                            : storage_tensor(data + e.begin, e.numel, e.type, source.owner).view(e.shape);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace checkpoint

std::string encode_safetensors(const std::map<std::string, Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::string out;
  checkpoint::write_safetensors(tensors, metadata, "safetensors", [&](const void* p, std::size_t n) {
    out.append(static_cast<const char*>(p), n);
  });
  return out;
}

void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  AtomicFileWriter writer(path);
  checkpoint::write_safetensors(tensors, metadata, path.string(),
                                [&](const void* p, std::size_t n) { writer.write(p, n); });
  writer.commit();
}

}  // namespace mcv
