#pragma once
// A restricted unpickler: it builds a tree of plain values from a pickle (protocols 0-5) and
// interprets only the globals tensor state dicts are made of. Every other global is an inert
// placeholder: nothing is imported, nothing is called.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mcv/tensor.h"
#include "source_type.h"

namespace mcv::checkpoint {

enum class Kind : std::uint8_t {
  none,
  boolean,
  integer,
  big_integer,  // an integer beyond int64 (kept as an opaque number)
  floating,
  string,
  bytes,
  list,
  tuple,
  dict,
  set,
  global,       // a reference to a Python global (`text` = "module.name"), never resolved
  object,       // an instance of / the result of calling an uninterpreted global (`text` = its name)
  storage,      // a tensor storage named by a persistent id
  tensor,
  unsupported_tensor,  // a torch rebuild function we do not interpret (quantized, sparse, ...)
};

struct Value;

struct StorageInfo {
  std::string key;        // the entry name under <archive>/data/
  std::string type_name;  // e.g. "torch.FloatStorage"
  std::optional<SourceType> type;
  std::int64_t numel = 0;  // elements of `type`
};

struct TensorInfo {
  Value* storage = nullptr;
  std::int64_t offset = 0;  // in elements
  Shape shape, strides;
};

struct Value {
  Kind kind = Kind::none;
  bool flag = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;            // string / bytes contents; global, object: qualified name
  std::vector<Value*> items;   // list, tuple, set elements; dict: key0, value0, key1, value1, ...
  std::unique_ptr<std::unordered_map<std::string, std::size_t>> string_keys;  // dict: key -> slot
  std::unique_ptr<StorageInfo> storage;
  std::unique_ptr<TensorInfo> tensor;

  std::size_t dict_size() const { return items.size() / 2; }
  Value* dict_key(std::size_t i) const { return items[2 * i]; }
  Value* dict_value(std::size_t i) const { return items[2 * i + 1]; }
};

/// The values of one pickle; they live as long as the document.
class PickleDocument {
 public:
  /// Parses `bytes`; `subject` names the file in errors. Throws mcv::Error on anything malformed,
  /// unsupported or beyond the limits (values, stack depth, memo size).
  PickleDocument(std::string_view bytes, std::string subject);
  PickleDocument(const PickleDocument&) = delete;
  PickleDocument& operator=(const PickleDocument&) = delete;

  Value* root() const { return root_; }
  const std::string& subject() const { return subject_; }

  static constexpr std::size_t kMaxValues = std::size_t(1) << 24;
  static constexpr std::size_t kMaxStack = std::size_t(1) << 20;
  static constexpr std::size_t kMaxMarks = std::size_t(1) << 16;
  static constexpr std::size_t kMaxMemo = std::size_t(1) << 22;
  static constexpr int kMaxRank = 64;

 private:
  friend class Unpickler;
  std::string subject_;
  std::deque<Value> values_;
  Value* root_ = nullptr;
};

/// Short description of a value for listings: "int", "dict (12 tensors)", "argparse.Namespace".
std::string describe_value(const Value* value);

}  // namespace mcv::checkpoint
