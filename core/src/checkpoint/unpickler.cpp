#include "unpickler.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include "byte_source.h"
#include "mcv/error.h"

namespace mcv::checkpoint {

namespace {

// Opcodes (Python's Lib/pickle.py names), protocols 0 to 5.
enum Op : std::uint8_t {
  kMark = '(', kStop = '.', kPop = '0', kPopMark = '1', kDup = '2', kFloat = 'F', kInt = 'I',
  kBinInt = 'J', kBinInt1 = 'K', kLong = 'L', kBinInt2 = 'M', kNone = 'N', kPersId = 'P',
  kBinPersId = 'Q', kReduce = 'R', kString = 'S', kBinString = 'T', kShortBinString = 'U',
  kUnicode = 'V', kBinUnicode = 'X', kAppend = 'a', kBuild = 'b', kGlobal = 'c', kDict = 'd',
  kEmptyDict = '}', kAppends = 'e', kGet = 'g', kBinGet = 'h', kInst = 'i', kLongBinGet = 'j',
  kList = 'l', kEmptyList = ']', kObj = 'o', kPut = 'p', kBinPut = 'q', kLongBinPut = 'r',
  kSetItem = 's', kTuple = 't', kEmptyTuple = ')', kSetItems = 'u', kBinFloat = 'G',
  kProto = 0x80, kNewObj = 0x81, kExt1 = 0x82, kExt2 = 0x83, kExt4 = 0x84, kTuple1 = 0x85,
  kTuple2 = 0x86, kTuple3 = 0x87, kNewTrue = 0x88, kNewFalse = 0x89, kLong1 = 0x8a, kLong4 = 0x8b,
  kBinBytes = 'B', kShortBinBytes = 'C', kShortBinUnicode = 0x8c, kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e, kEmptySet = 0x8f, kAddItems = 0x90, kFrozenSet = 0x91, kNewObjEx = 0x92,
  kStackGlobal = 0x93, kMemoize = 0x94, kFrame = 0x95, kByteArray8 = 0x96, kNextBuffer = 0x97,
  kReadOnlyBuffer = 0x98,
};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    cp = std::min<std::uint32_t>(cp, 0x10FFFF);
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool parse_hex(std::string_view s, std::uint32_t* out) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  *out = v;
  return true;
}

}  // namespace

class Unpickler {
 public:
  Unpickler(PickleDocument& doc, std::string_view bytes) : doc_(doc), bytes_(bytes) {}

  Value* run() {
    for (;;) {
      const std::uint8_t op = byte();
      switch (op) {
        case kProto: {
          const int proto = byte();
          if (proto > 5) fail("pickle protocol " + std::to_string(proto) + " is newer than 5");
          break;
        }
        case kFrame: take(8); break;  // frames only group opcodes for buffering
        case kStop: {
          if (!marks_.empty()) fail("pickle ends inside an unclosed MARK");
          Value* result = pop();
          return result;
        }
        case kMark:
          if (marks_.size() >= PickleDocument::kMaxMarks) fail("too many nested MARKs");
          marks_.push_back(std::move(stack_));
          stack_.clear();
          break;
        case kPop:
          if (!stack_.empty()) stack_.pop_back();
          else pop_mark();
          break;
        case kPopMark: pop_mark(); break;
        case kDup: push(top()); break;

        case kNone: push(make(Kind::none)); break;
        case kNewTrue: push(make_bool(true)); break;
        case kNewFalse: push(make_bool(false)); break;
        case kBinInt: {
          const std::uint8_t* p = take(4);
          push(make_int(static_cast<std::int32_t>(load_u32(p))));
          break;
        }
        case kBinInt1: push(make_int(byte())); break;
        case kBinInt2: push(make_int(load_u16(take(2)))); break;
        case kLong1: { const std::size_t n = byte(); push(make_long(take(n), n)); break; }
        case kLong4: {
          const std::int32_t n = static_cast<std::int32_t>(load_u32(take(4)));
          if (n < 0) fail("LONG4 with negative length");
          push(make_long(take(static_cast<std::size_t>(n)), static_cast<std::size_t>(n)));
          break;
        }
        case kInt: {
          const std::string_view line = read_line();
          if (line == "01" || line == "00") push(make_bool(line == "01"));
          else push(make_text_int(line));
          break;
        }
        case kLong: {
          std::string_view line = read_line();
          if (!line.empty() && line.back() == 'L') line.remove_suffix(1);
          push(make_text_int(line));
          break;
        }
        case kBinFloat: {
          const std::uint8_t* p = take(8);
          std::uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
          double d;
          std::memcpy(&d, &bits, 8);
          push(make_float(d));
          break;
        }
        case kFloat: {
          const std::string_view line = read_line();
          double d = 0;
          auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), d);
          if (ec != std::errc() || p != line.data() + line.size()) fail("bad FLOAT text");
          push(make_float(d));
          break;
        }

        case kBinUnicode: case kBinString: push(make_text(Kind::string, sized(load_u32(take(4))))); break;
        case kShortBinUnicode: case kShortBinString: push(make_text(Kind::string, sized(byte()))); break;
        case kBinUnicode8: push(make_text(Kind::string, sized(load_u64(take(8))))); break;
        case kBinBytes: push(make_text(Kind::bytes, sized(load_u32(take(4))))); break;
        case kShortBinBytes: push(make_text(Kind::bytes, sized(byte()))); break;
        case kBinBytes8: case kByteArray8: push(make_text(Kind::bytes, sized(load_u64(take(8))))); break;
        case kString: push(make_text(Kind::string, unquote(read_line()))); break;
        case kUnicode: push(make_text(Kind::string, raw_unicode_escape(read_line()))); break;

        case kEmptyList: push(make(Kind::list)); break;
        case kEmptyTuple: push(make(Kind::tuple)); break;
        case kEmptyDict: push(make_dict()); break;
        case kEmptySet: push(make(Kind::set)); break;
        case kList: { Value* v = make(Kind::list); v->items = pop_mark(); push(v); break; }
        case kTuple: { Value* v = make(Kind::tuple); v->items = pop_mark(); push(v); break; }
        case kFrozenSet: { Value* v = make(Kind::set); v->items = pop_mark(); push(v); break; }
        case kTuple1: case kTuple2: case kTuple3: {
          const std::size_t n = op - kTuple1 + 1;
          if (stack_.size() < n) fail("TUPLE" + std::to_string(n) + " on a short stack");
          Value* v = make(Kind::tuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case kDict: {
          Value* d = make_dict();
          set_items(d, pop_mark());
          push(d);
          break;
        }
        case kAppend: { Value* v = pop(); append(top(), {v}); break; }
        case kAppends: { auto items = pop_mark(); append(top(), items); break; }
        case kAddItems: { auto items = pop_mark(); append(top(), items); break; }
        case kSetItem: {
          Value* v = pop();
          Value* k = pop();
          set_items(top(), {k, v});
          break;
        }
        case kSetItems: { auto items = pop_mark(); set_items(top(), items); break; }

        case kPut: memo_put(parse_index(read_line())); break;
        case kBinPut: memo_put(byte()); break;
        case kLongBinPut: memo_put(load_u32(take(4))); break;
        case kMemoize: memo_put(memo_.size()); break;
        case kGet: push(memo_get(parse_index(read_line()))); break;
        case kBinGet: push(memo_get(byte())); break;
        case kLongBinGet: push(memo_get(load_u32(take(4)))); break;

        case kGlobal: {
          const std::string module(read_line());
          const std::string name(read_line());
          push(make_global(module, name));
          break;
        }
        case kStackGlobal: {
          Value* name = pop();
          Value* module = pop();
          if (module->kind != Kind::string || name->kind != Kind::string) fail("STACK_GLOBAL needs two strings");
          push(make_global(module->text, name->text));
          break;
        }
        case kReduce: {
          Value* args = pop();
          Value* callable = pop();
          push(call(callable, args, 0));
          break;
        }
        case kNewObj: {
          pop();  // args: an instance of an uninterpreted class is opaque whatever its arguments
          push(instantiate(pop()));
          break;
        }
        case kNewObjEx: {
          pop();
          pop();
          push(instantiate(pop()));
          break;
        }
        case kObj: {
          auto items = pop_mark();
          if (items.empty()) fail("OBJ without a class");
          push(instantiate(items[0]));
          break;
        }
        case kInst: {
          const std::string module(read_line());
          const std::string name(read_line());
          pop_mark();
          push(instantiate(make_global(module, name)));
          break;
        }
        case kBuild: {
          pop();  // state: kept by nothing, since placeholders have no behaviour to restore
          top();
          break;
        }
        case kBinPersId: push(persistent_load(pop())); break;
        case kPersId: fail("text persistent ids (PERSID) are not used by torch zip checkpoints");
        case kExt1: case kExt2: case kExt4: fail("extension-registry opcodes (EXT1/2/4) are not supported");
        case kNextBuffer: case kReadOnlyBuffer: fail("out-of-band buffers (pickle protocol 5) are not supported");
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unknown pickle opcode ") + hex + " at byte " + std::to_string(pos_ - 1));
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(doc_.subject_, "pickle: " + problem);
  }

  // ---- input ----
  std::uint8_t byte() {
    if (pos_ >= bytes_.size()) fail("truncated (ends without STOP)");
    return static_cast<std::uint8_t>(bytes_[pos_++]);
  }
  const std::uint8_t* take(std::uint64_t n) {
    if (n > bytes_.size() - pos_)
      fail("truncated: needs " + std::to_string(n) + " bytes at byte " + std::to_string(pos_) + ", has " +
           std::to_string(bytes_.size() - pos_));
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes_.data() + pos_);
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  std::string_view sized(std::uint64_t n) {
    const std::uint8_t* p = take(n);
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
  }
  std::string_view read_line() {
    const std::size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) fail("truncated text argument");
    const std::string_view line = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }
  std::uint64_t parse_index(std::string_view line) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc() || p != line.data() + line.size()) fail("bad memo index");
    return v;
  }

  // ---- values ----
  Value* make(Kind kind) {
    if (doc_.values_.size() >= PickleDocument::kMaxValues) fail("more than 2^24 values");
    Value& v = doc_.values_.emplace_back();
    v.kind = kind;
    return &v;
  }
  Value* make_bool(bool b) { Value* v = make(Kind::boolean); v->flag = b; return v; }
  Value* make_int(std::int64_t i) { Value* v = make(Kind::integer); v->integer = i; return v; }
  Value* make_float(double d) { Value* v = make(Kind::floating); v->real = d; return v; }
  Value* make_text(Kind kind, std::string_view s) { Value* v = make(kind); v->text.assign(s); return v; }
  Value* make_dict() {
    Value* v = make(Kind::dict);
    v->string_keys = std::make_unique<std::unordered_map<std::string, std::size_t>>();
    return v;
  }
  Value* make_text_int(std::string_view line) {
    std::int64_t i = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), i);
    if (ec == std::errc::result_out_of_range) return make_text(Kind::big_integer, line);
    if (ec != std::errc() || p != line.data() + line.size()) fail("bad integer text");
    return make_int(i);
  }
  Value* make_long(const std::uint8_t* p, std::size_t n) {
    // Little-endian two's complement; anything that does not fit int64 stays an opaque number.
    if (n > 8) {
      const std::uint8_t fill = (p[n - 1] & 0x80) ? 0xFF : 0x00;
      for (std::size_t i = 8; i < n; ++i)
        if (p[i] != fill) return make_text(Kind::big_integer, std::to_string(n).append("-byte integer"));
      if (((p[7] & 0x80) ? 0xFF : 0x00) != fill) return make_text(Kind::big_integer, "<integer>");
      n = 8;
    }
    std::uint64_t u = 0;
    for (std::size_t i = n; i-- > 0;) u = (u << 8) | p[i];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) u |= ~std::uint64_t(0) << (8 * n);
    return make_int(static_cast<std::int64_t>(u));
  }
  Value* make_global(const std::string& module, const std::string& name) {
    if (module.size() + name.size() > 4096) fail("global name too long");
    Value* v = make(Kind::global);
    v->text = module + "." + name;
    return v;
  }

  std::string unquote(std::string_view s) {
    if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
      fail("STRING argument is not quoted");
    s = s.substr(1, s.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 == s.size()) { out += s[i]; continue; }
      const char c = s[++i];
      std::uint32_t cp = 0;
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': case '\'': case '"': out += c; break;
        case 'x':
          if (i + 2 < s.size() && parse_hex(s.substr(i + 1, 2), &cp)) { out += static_cast<char>(cp); i += 2; }
          else { out += '\\'; out += c; }
          break;
        default: out += '\\'; out += c;
      }
    }
    return out;
  }
  std::string raw_unicode_escape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::uint32_t cp = 0;
      if (s[i] == '\\' && i + 5 < s.size() && s[i + 1] == 'u' && parse_hex(s.substr(i + 2, 4), &cp)) {
        append_utf8(out, cp);
        i += 5;
      } else if (s[i] == '\\' && i + 9 < s.size() && s[i + 1] == 'U' && parse_hex(s.substr(i + 2, 8), &cp)) {
        append_utf8(out, cp);
        i += 9;
      } else {
        append_utf8(out, static_cast<std::uint8_t>(s[i]));  // the rest is latin-1
      }
    }
    return out;
  }

  // ---- stack ----
  void push(Value* v) {
    if (stack_.size() >= PickleDocument::kMaxStack) fail("stack deeper than 2^20 values");
    stack_.push_back(v);
  }
  Value* pop() {
    if (stack_.empty()) fail("stack underflow at byte " + std::to_string(pos_ - 1));
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty()) fail("stack underflow at byte " + std::to_string(pos_ - 1));
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("MARK expected at byte " + std::to_string(pos_ - 1));
    std::vector<Value*> items = std::move(stack_);
    stack_ = std::move(marks_.back());
    marks_.pop_back();
    return items;
  }

  void memo_put(std::uint64_t index) {
    if (memo_.size() >= PickleDocument::kMaxMemo && !memo_.count(index)) fail("memo larger than 2^22 entries");
    memo_[index] = top();
  }
  Value* memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " used before it was stored");
    return it->second;
  }

  void append(Value* target, const std::vector<Value*>& items) {
    if (target->kind == Kind::list || target->kind == Kind::set) {
      target->items.insert(target->items.end(), items.begin(), items.end());
    } else if (target->kind != Kind::object) {  // placeholders swallow what is added to them
      fail("APPEND to a value that is not a list");
    }
  }

  void set_items(Value* target, const std::vector<Value*>& items) {
    if (items.size() % 2) fail("SETITEMS with an odd number of values");
    if (target->kind == Kind::object) {
      // A dict subclass we do not know (yacs CfgNode, EasyDict, ...): keep its items, so a state
      // dict nested in it can still be found; its class name stays in `text`.
      target->kind = Kind::dict;
      target->string_keys = std::make_unique<std::unordered_map<std::string, std::size_t>>();
    }
    if (target->kind != Kind::dict) fail("SETITEM on a value that is not a dict");
    for (std::size_t i = 0; i < items.size(); i += 2) {
      Value* key = items[i];
      if (key->kind == Kind::string) {
        auto [it, fresh] = target->string_keys->emplace(key->text, target->items.size());
        if (!fresh) {
          target->items[it->second + 1] = items[i + 1];
          continue;
        }
      }
      target->items.push_back(key);
      target->items.push_back(items[i + 1]);
    }
  }

  // ---- the interpreted globals ----
  static bool is_dict_class(const std::string& name) {
    return name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict" ||
           name == "collections.defaultdict";
  }

  Value* instantiate(Value* cls) {
    if (cls->kind == Kind::global && is_dict_class(cls->text)) return make_dict();
    Value* v = make(Kind::object);
    v->text = cls->kind == Kind::global || cls->kind == Kind::object ? cls->text : "<object>";
    return v;
  }

  static const Value* arg(const Value* args, std::size_t i) {
    return i < args->items.size() ? args->items[i] : nullptr;
  }

  Value* call(Value* callable, Value* args, int depth) {
    if (depth > 8) fail("rebuild calls nested too deeply");
    if (callable->kind != Kind::global) {
      Value* v = make(Kind::object);
      v->text = callable->kind == Kind::object ? callable->text : "<call>";
      return v;
    }
    const std::string& name = callable->text;
    const bool tuple_args = args->kind == Kind::tuple;
    if (is_dict_class(name)) {
      Value* d = make_dict();
      const Value* init = tuple_args ? arg(args, 0) : nullptr;
      if (init && init->kind == Kind::dict && init != d) set_items(d, init->items);
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
      return rebuild_tensor(name, args);
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      Value* data = tuple_args && !args->items.empty() ? args->items[0] : nullptr;
      if (!data || (data->kind != Kind::tensor && data->kind != Kind::unsupported_tensor))
        fail("malformed arguments to " + name);
      return data;
    }
    if (name == "torch._tensor._rebuild_from_type_v2") {
      // (func, subclass, args, state): the tensor func makes; the subclass and state are dropped.
      if (!tuple_args || args->items.size() < 3 || args->items[2]->kind != Kind::tuple)
        fail("malformed arguments to " + name);
      return call(args->items[0], args->items[2], depth + 1);
    }
    if (name == "torch.Size") {
      const Value* dims = tuple_args ? arg(args, 0) : nullptr;
      if (!dims || (dims->kind != Kind::tuple && dims->kind != Kind::list)) fail("malformed torch.Size");
      Value* t = make(Kind::tuple);
      t->items = dims->items;
      return t;
    }
    if (name == "_codecs.encode") {
      // Protocol 2 spells bytes as _codecs.encode(text, 'latin1').
      const Value* text = tuple_args ? arg(args, 0) : nullptr;
      if (!text || text->kind != Kind::string) fail("malformed _codecs.encode call");
      Value* b = make(Kind::bytes);
      const std::string& s = text->text;
      for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<std::uint8_t>(s[i]);
        if (c >= 0xC0 && c < 0xC4 && i + 1 < s.size()) {
          b->text += static_cast<char>(((c & 0x1F) << 6) | (static_cast<std::uint8_t>(s[++i]) & 0x3F));
        } else {
          b->text += static_cast<char>(c);
        }
      }
      return b;
    }
    Value* v = make(name.rfind("torch._utils._rebuild", 0) == 0 || name.rfind("torch._tensor._rebuild", 0) == 0
                        ? Kind::unsupported_tensor
                        : Kind::object);
    v->text = name;
    return v;
  }

  Value* rebuild_tensor(const std::string& name, Value* args) {
    auto bad = [&](const std::string& why) { fail("malformed arguments to " + name + ": " + why); };
    if (args->kind != Kind::tuple || args->items.size() < 4) bad("expected (storage, offset, size, stride, ...)");
    Value* storage = args->items[0];
    const Value* offset = args->items[1];
    const Value* size = args->items[2];
    const Value* stride = args->items[3];
    if (storage->kind != Kind::storage) bad("the first argument is not a storage");
    if (offset->kind != Kind::integer || offset->integer < 0) bad("storage offset is not a non-negative integer");
    auto dims = [&](const Value* v, const char* what) {
      if (v->kind != Kind::tuple && v->kind != Kind::list) bad(std::string(what) + " is not a tuple");
      if (v->items.size() > PickleDocument::kMaxRank) bad(std::string(what) + " has too many dimensions");
      Shape out;
      for (const Value* d : v->items) {
        if (d->kind != Kind::integer || d->integer < 0) bad(std::string(what) + " holds a value that is not a non-negative integer");
        out.push_back(d->integer);
      }
      return out;
    };
    Value* t = make(Kind::tensor);
    t->tensor = std::make_unique<TensorInfo>();
    t->tensor->storage = storage;
    t->tensor->offset = offset->integer;
    t->tensor->shape = dims(size, "size");
    t->tensor->strides = dims(stride, "stride");
    if (t->tensor->shape.size() != t->tensor->strides.size()) bad("size and stride differ in length");
    return t;
  }

  Value* persistent_load(Value* pid) {
    // torch: ('storage', storage class, key, location, numel).
    auto bad = [&](const std::string& why) { fail("unsupported persistent id: " + why); };
    if (pid->kind != Kind::tuple || pid->items.size() != 5) bad("expected a 5-tuple ('storage', type, key, location, numel)");
    const Value* tag = pid->items[0];
    const Value* type = pid->items[1];
    const Value* key = pid->items[2];
    const Value* location = pid->items[3];
    const Value* numel = pid->items[4];
    if (tag->kind != Kind::string || tag->text != "storage") bad("first element is not 'storage'");
    if (type->kind != Kind::global) bad("storage type is not a global");
    if (key->kind != Kind::string || key->text.empty() || key->text.size() > 256) bad("storage key is not a short string");
    if (location->kind != Kind::string) bad("storage location is not a string");
    if (numel->kind != Kind::integer || numel->integer < 0) bad("storage size is not a non-negative integer");
    std::optional<SourceType> st;
    if (type->text.rfind("torch.", 0) == 0) st = parse_torch_storage_type(std::string_view(type->text).substr(6));
    if (type->text == "torch.UntypedStorage") st = SourceType::u8;
    const auto it = storages_.find(key->text);
    if (it != storages_.end()) {
      const StorageInfo& seen = *it->second->storage;
      if (seen.type_name != type->text || seen.numel != numel->integer)
        fail("storage '" + key->text + "' is described twice, differently");
      return it->second;
    }
    Value* v = make(Kind::storage);
    v->storage = std::make_unique<StorageInfo>();
    v->storage->key = key->text;
    v->storage->type_name = type->text;
    v->storage->type = st;
    v->storage->numel = numel->integer;
    storages_.emplace(key->text, v);
    return v;
  }

  PickleDocument& doc_;
  std::string_view bytes_;
  std::size_t pos_ = 0;
  std::vector<Value*> stack_;
  std::vector<std::vector<Value*>> marks_;
  std::unordered_map<std::uint64_t, Value*> memo_;
  std::unordered_map<std::string, Value*> storages_;
};

PickleDocument::PickleDocument(std::string_view bytes, std::string subject) : subject_(std::move(subject)) {
  Unpickler unpickler(*this, bytes);
  root_ = unpickler.run();
}

std::string describe_value(const Value* v) {
  switch (v->kind) {
    case Kind::none: return "None";
    case Kind::boolean: return v->flag ? "True" : "False";
    case Kind::integer: return "int " + std::to_string(v->integer);
    case Kind::big_integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list (" + std::to_string(v->items.size()) + " items)";
    case Kind::tuple: return "tuple (" + std::to_string(v->items.size()) + " items)";
    case Kind::set: return "set";
    case Kind::global: return v->text;
    case Kind::object: return v->text;
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor " + shape_str(v->tensor->shape);
    case Kind::unsupported_tensor: return "tensor (" + v->text + ")";
    case Kind::dict: {
      std::size_t tensors = 0;
      for (std::size_t i = 0; i < v->dict_size(); ++i) tensors += v->dict_value(i)->kind == Kind::tensor;
      std::string what = v->text.empty() ? "dict" : v->text;
      return what + " (" + std::to_string(v->dict_size()) + (v->dict_size() == 1 ? " entry" : " entries") +
             (tensors ? ", " + std::to_string(tensors) + " tensors" : std::string()) + ")";
    }
  }
  return "?";
}

}  // namespace mcv::checkpoint
