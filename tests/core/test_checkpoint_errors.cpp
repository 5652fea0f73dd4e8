// Bad input to the checkpoint readers: each case must be one mcv::Error naming the file and the
// problem, never a crash, hang or silently wrong tensor. Archives, pickles and deflate streams are
// built by hand here so each defect is exactly the one under test.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <functional>

#include "mcv/checkpoint.h"
#include "mcv/error.h"
#include "test_support.h"

namespace mcv::test_checkpoint_errors {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

fs::path ckpt_dir() { return test::fixture_dir() / "checkpoints"; }

// Runs `f`, which must throw mcv::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an mcv::Error: " << e.what();
  }
}

void expect_bytes_error(const std::string& bytes, const std::vector<std::string>& parts) {
  std::vector<std::string> all{"bad.bin"};
  all.insert(all.end(), parts.begin(), parts.end());
  expect_error([&] { Checkpoint::from_bytes(bytes, "bad.bin"); }, all);
}

// ---- builders ----

std::string le(std::uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::uint32_t crc32(const std::string& data) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

struct ZipFileEntry {
  std::string name, data;
  std::uint16_t method = 0;
  std::uint64_t size = 0;  // uncompressed
  std::uint32_t crc = 0;
};

// Writes a plain (non-ZIP64) zip like the ones torch writes, minus the padding.
class ZipBuilder {
 public:
  ZipBuilder& stored(const std::string& name, const std::string& data) {
    entries_.push_back({name, data, 0, data.size(), crc32(data)});
    return *this;
  }
  ZipBuilder& deflated(const std::string& name, const std::string& raw_deflate, std::uint64_t declared_size,
                       std::uint32_t crc) {
    entries_.push_back({name, raw_deflate, 8, declared_size, crc});
    return *this;
  }
  /// `zip64`: sizes and offsets saturated to 0xFFFFFFFF in the central directory with the real
  /// values in ZIP64 extra fields, and a ZIP64 end record, as writers do past 4 GiB.
  std::string build(bool zip64 = false) const {
    std::string out, dir;
    for (const auto& e : entries_) {
      const std::uint64_t offset = out.size();
      out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(e.method, 2) + le(0, 4) + le(e.crc, 4) +
             le(e.data.size(), 4) + le(e.size, 4) + le(e.name.size(), 2) + le(0, 2) + e.name + e.data;
      const std::uint64_t big = 0xFFFFFFFFu;
      const std::string extra = zip64 ? le(1, 2) + le(24, 2) + le(e.size, 8) + le(e.data.size(), 8) + le(offset, 8) : "";
      dir += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(e.method, 2) + le(0, 4) + le(e.crc, 4) +
             le(zip64 ? big : e.data.size(), 4) + le(zip64 ? big : e.size, 4) + le(e.name.size(), 2) +
             le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(zip64 ? big : offset, 4) + e.name +
             extra;
    }
    const std::uint64_t dir_offset = out.size();
    out += dir;
    if (zip64) {
      const std::uint64_t record = out.size();
      out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(entries_.size(), 8) +
             le(entries_.size(), 8) + le(dir.size(), 8) + le(dir_offset, 8);
      out += le(0x07064b50, 4) + le(0, 4) + le(record, 8) + le(1, 4);
      out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFFFFFF, 4) +
             le(0xFFFFFFFF, 4) + le(0, 2);
      return out;
    }
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries_.size(), 2) + le(entries_.size(), 2) +
           le(dir.size(), 4) + le(dir_offset, 4) + le(0, 2);
    return out;
  }

 private:
  std::vector<ZipFileEntry> entries_;
};

// Emits pickle opcodes (protocol 2, as torch.save writes them).
class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }
  PickleWriter& op(const std::string& bytes) { out_ += bytes; return *this; }
  PickleWriter& mark() { return op("("); }
  PickleWriter& str(const std::string& s) { return op("X" + le(s.size(), 4) + s); }
  PickleWriter& integer(std::int32_t v) { return op("J" + le(static_cast<std::uint32_t>(v), 4)); }
  PickleWriter& global(const std::string& module, const std::string& name) { return op("c" + module + "\n" + name + "\n"); }
  PickleWriter& tuple() { return op("t"); }
  PickleWriter& reduce() { return op("R"); }
  PickleWriter& empty_dict() { return op("}"); }
  PickleWriter& setitems() { return op("u"); }
  PickleWriter& ints(const std::vector<std::int32_t>& v) {
    mark();
    for (auto x : v) integer(x);
    return tuple();
  }
  // _rebuild_tensor_v2(storage ('storage', type, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  PickleWriter& tensor(const std::string& storage_type, const std::string& key, std::int32_t numel, std::int32_t offset,
                       const std::vector<std::int32_t>& size, const std::vector<std::int32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark().str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).tuple().op("Q");
    integer(offset).ints(size).ints(stride).op("\x89");
    global("collections", "OrderedDict").op(")").reduce();
    return tuple().reduce();
  }
  std::string done() { return out_ + "."; }

 private:
  std::string out_;
};

std::string floats(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// A checkpoint {'w': tensor} where the tensor has the given geometry on a float storage "0".
std::string one_tensor_zip(std::int32_t numel, std::int32_t offset, const std::vector<std::int32_t>& size,
                           const std::vector<std::int32_t>& stride, std::size_t storage_bytes,
                           const std::string& storage_type = "FloatStorage") {
  PickleWriter p;
  p.empty_dict().mark().str("w").tensor(storage_type, "0", numel, offset, size, stride).setitems();
  return ZipBuilder().stored("archive/data.pkl", p.done()).stored("archive/data/0", std::string(storage_bytes, '\1'))
      .stored("archive/version", "3\n").build();
}

// A raw deflate stream (fixed Huffman codes) of `1 + 258 * repeats` zero bytes: one literal, then
// <length 258, distance 1> repeated. 13 bits per 258 bytes: about 160:1.
std::string deflate_zeros(std::size_t repeats) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  auto put = [&](std::uint32_t value, int n) {  // LSB first
    acc |= value << bits;
    bits += n;
    while (bits >= 8) {
      out += static_cast<char>(acc & 0xFF);
      acc >>= 8;
      bits -= 8;
    }
  };
  auto put_code = [&](std::uint32_t code, int n) {  // Huffman codes go MSB first
    for (int i = n - 1; i >= 0; --i) put((code >> i) & 1, 1);
  };
  put(1, 1);           // BFINAL
  put(1, 2);           // BTYPE = fixed Huffman
  put_code(0x30, 8);   // literal 0
  for (std::size_t i = 0; i < repeats; ++i) {
    put_code(0xC5, 8);  // length code 285 = 258
    put_code(0, 5);     // distance code 0 = 1
  }
  put_code(0, 7);      // end of block
  if (bits) put(0, 8 - bits);
  return out;
}

// ---- files and paths ----

TEST(CheckpointErrors, MissingEmptyDirectoryAndUnreadablePaths) {
  const fs::path dir = test::temp_dir();
  expect_error([&] { Checkpoint::open(dir / "nope.pth"); }, {"nope.pth", "cannot open"});
  expect_error([&] { Checkpoint::open(dir); }, {dir.string(), "directory"});
  test::write_file(dir / "empty.pth", "");
  expect_error([&] { Checkpoint::open(dir / "empty.pth"); }, {"empty.pth", "empty"});
  test::write_file(dir / "short.safetensors", "abc");
  expect_error([&] { Checkpoint::open(dir / "short.safetensors"); }, {"short.safetensors", "too short"});
  test::write_file(dir / "text.pth", "this is not a checkpoint at all");
  expect_error([&] { Checkpoint::open(dir / "text.pth"); }, {"text.pth", "unrecognised format"});
  ASSERT_EQ(::mkfifo((dir / "fifo.pth").c_str(), 0600), 0);
  expect_error([&] { Checkpoint::open(dir / "fifo.pth"); }, {"fifo.pth", "not a regular file"});
  expect_error([&] { Checkpoint::open("/dev/zero"); }, {"/dev/zero", "not a regular file"});
  if (::geteuid() != 0) {  // root reads files whatever their mode
    test::write_file(dir / "locked.pth", test::read_file(ckpt_dir() / "plain_state_dict.pth"));
    ::chmod((dir / "locked.pth").c_str(), 0);
    expect_error([&] { Checkpoint::open(dir / "locked.pth"); }, {"locked.pth", "cannot open"});
  }
}

TEST(CheckpointErrors, LegacyAndNonStateDictPickles) {
  expect_error([&] { Checkpoint::open(ckpt_dir() / "legacy.pth"); },
               {"legacy.pth", "legacy non-zip torch format is not supported; re-save with torch>=1.6"});
  expect_error([&] { Checkpoint::open(ckpt_dir() / "no_tensors.pth"); }, {"no_tensors.pth", "no tensor state dict"});
  expect_error([&] { Checkpoint::open(ckpt_dir() / "whole_module.pth"); },
               {"whole_module.pth", "torch.nn.modules.linear.Linear", "state_dict()"});
  expect_bytes_error(PickleWriter().empty_dict().done(), {"plain pickle"});
}

// ---- truncation: every cut of a real file is an error ----

void expect_every_cut_fails(const std::string& file, std::size_t step) {
  const std::string bytes = test::read_file(ckpt_dir() / file);
  ASSERT_GT(bytes.size(), 100u);
  for (std::size_t cut = 0; cut < bytes.size(); cut += step) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_error([&] { Checkpoint::from_bytes(bytes.substr(0, cut), "cut.bin"); }, {"cut.bin"});
  }
}

TEST(CheckpointErrors, TruncatedSafetensors) { expect_every_cut_fails("reference.safetensors", 1); }
TEST(CheckpointErrors, TruncatedTorchZip) { expect_every_cut_fails("plain_state_dict.pth", 1); }
TEST(CheckpointErrors, TruncatedDeflatedTorchZip) { expect_every_cut_fails("deflated_state_dict.pth", 3); }

TEST(CheckpointErrors, TruncatedPickleNeverParses) {
  const std::string zip = test::read_file(ckpt_dir() / "train_checkpoint.pth");
  // data.pkl is the first entry, stored: its bytes follow the local header.
  const std::uint16_t name_len = static_cast<std::uint8_t>(zip[26]) | (static_cast<std::uint8_t>(zip[27]) << 8);
  const std::uint16_t extra_len = static_cast<std::uint8_t>(zip[28]) | (static_cast<std::uint8_t>(zip[29]) << 8);
  std::uint32_t size = 0;
  const std::size_t central = zip.rfind(std::string("PK\x01\x02", 4), zip.size());
  ASSERT_NE(central, std::string::npos);
  const std::string pickle_name = "train_checkpoint/data.pkl";
  const std::size_t first_central = zip.find(std::string("PK\x01\x02", 4));
  std::memcpy(&size, zip.data() + first_central + 24, 4);
  ASSERT_EQ(zip.substr(30, name_len), pickle_name);
  const std::string pickle = zip.substr(30 + name_len + extra_len, size);
  EXPECT_EQ(parse_torch_pickle(pickle, "p.pkl"), 9u);
  for (std::size_t cut = 0; cut < pickle.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_error([&] { parse_torch_pickle(pickle.substr(0, cut), "p.pkl"); }, {"p.pkl"});
  }
}

// ---- safetensors ----

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le(header.size(), 8) + header + data;
}

TEST(SafetensorsErrors, LyingHeaderLength) {
  expect_bytes_error(le(1000, 8) + "{}", {"header length 1000", "past the end"});
  expect_bytes_error(le(std::uint64_t(1) << 62, 8) + "{}", {"exceeds the limit"});
  expect_bytes_error(le(200'000'000, 8) + "{" + std::string(100, ' '), {"exceeds the limit of 100000000"});
}

TEST(SafetensorsErrors, BadJson) {
  expect_bytes_error(safetensors_bytes("{\"a\": ", ""), {"not valid JSON"});
  expect_bytes_error(safetensors_bytes("{\"a\": 1} trailing", ""), {"not valid JSON"});
  expect_bytes_error(safetensors_bytes("{\"a\": \"\xff\"}", ""), {"not valid JSON"});
  expect_bytes_error(safetensors_bytes("{\"a\": 5}", ""), {"tensor 'a'", "not a JSON object"});
  expect_bytes_error(safetensors_bytes("{\"__metadata__\": {\"k\": 1}}", ""), {"__metadata__", "not a string"});
  expect_bytes_error(safetensors_bytes("{\"__metadata__\": []}", ""), {"__metadata__"});
  expect_bytes_error(safetensors_bytes("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                       "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                       std::string(8, '\0')),
                     {"'t' twice"});
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

TEST(SafetensorsErrors, TensorTable) {
  const std::string data(16, '\0');
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[2]", 0, 100) + "}", data),
                     {"tensor 'w'", "past the 16 data bytes"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[0]", 8, 4) + "}", data), {"tensor 'w'", "begin after"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[3]", 0, 8) + "}", data),
                     {"tensor 'w'", "needs 12 bytes", "span 8"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F8_E4M3", "[2]", 0, 2) + "}", data),
                     {"tensor 'w'", "unsupported dtype 'F8_E4M3'"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "C64", "[1]", 0, 8) + "}", data), {"'C64'"});
  expect_bytes_error(safetensors_bytes("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", data),
                     {"'a' and 'b' overlap"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[-1]", 0, 4) + "}", data), {"tensor 'w'", "shape"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[1.5]", 0, 4) + "}", data), {"tensor 'w'", "shape"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[4294967296,4294967296,4294967296]", 0, 4) + "}", data),
                     {"tensor 'w'", "overflows"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[4611686018427387904]", 0, 0) + "}", data),
                     {"tensor 'w'", "overflows"});
  expect_bytes_error(safetensors_bytes("{" + entry("w", "F32", "[0,4611686018427387904,4611686018427387904]", 0, 0) + "}", data),
                     {"tensor 'w'", "overflows"});
  expect_bytes_error(safetensors_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", data), {"tensor 'w'", "data_offsets"});
  expect_bytes_error(safetensors_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", data),
                     {"tensor 'w'", "unexpected header field 'x'"});
  expect_bytes_error(safetensors_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", data),
                     {"tensor 'w'", "data_offsets"});
  expect_bytes_error(safetensors_bytes("{" + entry("", "F32", "[1]", 0, 4) + "}", data), {"empty name"});
  // A zero-size tensor may sit anywhere inside the data, even on another tensor.
  const Checkpoint ok = Checkpoint::from_bytes(
      safetensors_bytes("{" + entry("a", "F32", "[4]", 0, 16) + "," + entry("z", "F32", "[0,3]", 4, 4) + "}", data), "ok");
  EXPECT_EQ(ok.at("z").shape(), (Shape{0, 3}));
}

TEST(Safetensors, UnalignedOffsetsAreCopiedAndConversionsApplied) {
  // u8 of 1 byte first: every following tensor starts unaligned.
  std::string data = "\x07";
  data += floats({1.5f, -2.0f});
  const double d[2] = {0.1, -3.0};
  data.append(reinterpret_cast<const char*>(d), 16);
  data += "\x01\x00\x01"s;                      // BOOL
  data += "\x80\x7f";                          // I8: -128, 127
  const std::int16_t s[2] = {-300, 12};
  data.append(reinterpret_cast<const char*>(s), 4);
  const std::string header = "{" + entry("u", "U8", "[1]", 0, 1) + "," + entry("f", "F32", "[2]", 1, 9) + "," +
                             entry("d", "F64", "[2]", 9, 25) + "," + entry("b", "BOOL", "[3]", 25, 28) + "," +
                             entry("c", "I8", "[2]", 28, 30) + "," + entry("s", "I16", "[1,2]", 30, 34) + "}";
  const Checkpoint ckpt = Checkpoint::from_bytes(safetensors_bytes(header, data), "mixed");
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"u", "f", "d", "b", "c", "s"}));
  EXPECT_EQ(ckpt.at("u").item(0), 7);
  const Tensor& f = ckpt.at("f");
  EXPECT_EQ(f.dtype(), DType::f32);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(f.raw_data()) % 4, 0u);
  EXPECT_EQ(f.item(0), 1.5);
  EXPECT_EQ(f.item(1), -2.0);
  EXPECT_EQ(ckpt.at("d").dtype(), DType::f32);
  EXPECT_EQ(ckpt.at("d").item(0), static_cast<double>(0.1f));
  EXPECT_EQ(ckpt.at("d").item(1), -3.0);
  EXPECT_EQ(ckpt.at("b").dtype(), DType::u8);
  EXPECT_EQ(ckpt.at("b").item(2), 1);
  EXPECT_EQ(ckpt.at("c").dtype(), DType::i32);
  EXPECT_EQ(ckpt.at("c").item(0), -128);
  EXPECT_EQ(ckpt.at("s").shape(), (Shape{1, 2}));
  EXPECT_EQ(ckpt.at("s").item(0), -300);
}

// ---- zip archives ----

TEST(ZipErrors, CorruptCentralDirectory) {
  const std::string good = test::read_file(ckpt_dir() / "plain_state_dict.pth");
  EXPECT_EQ(Checkpoint::from_bytes(good, "x").names().size(), 12u);
  const std::size_t central = good.find(std::string("PK\x01\x02", 4));
  const std::size_t end64 = good.rfind(std::string("PK\x06\x06", 4));
  const std::size_t end = good.rfind(std::string("PK\x05\x06", 4));
  ASSERT_NE(central, std::string::npos);
  ASSERT_NE(end64, std::string::npos);
  auto patched = [&](std::size_t at, const std::string& bytes) {
    SCOPED_TRACE("patch at " + std::to_string(at));
    std::string s = good;
    s.replace(at, bytes.size(), bytes);
    return s;
  };
  expect_bytes_error(patched(central, "PK\x09\x09"), {"corrupt zip", "central directory signature"});
  expect_bytes_error(patched(end64 + 48, le(std::uint64_t(1) << 40, 8)), {"corrupt zip", "central directory"});
  expect_bytes_error(patched(end64 + 32, le(1'000'000'000, 8)), {"corrupt zip", "entries"});
  expect_bytes_error(patched(end64 - 4, "XXXX") + "", {"bad.bin"});
  expect_bytes_error(patched(central + 42, le(0xFFFFFF, 4)), {"corrupt zip", "local header"});
  expect_bytes_error(patched(central + 20, le(0x7FFFFFFF, 4)), {"corrupt zip"});
  expect_bytes_error(patched(central + 10, le(12, 2)), {"compression method 12"});
  expect_bytes_error(patched(central + 8, le(1, 2)), {"encrypted"});
  expect_bytes_error(patched(end, "PK\x05\x07"), {"bad.bin"});
  expect_bytes_error(patched(30, "Y"), {"local header name"});
  expect_bytes_error(patched(0, "PK\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"s
                                "\x00\x00\x00\xff\xff\xff\xff"s), {"corrupt zip"});
  // No end record at all.
  expect_bytes_error(good.substr(0, end), {"corrupt zip", "end-of-central-directory"});
}

TEST(Zip, Zip64RecordsAndExtraFields) {
  PickleWriter p;
  p.empty_dict().mark().str("w").tensor("FloatStorage", "0", 3, 0, {3}, {1}).setitems();
  ZipBuilder zip;
  zip.stored("a/data.pkl", p.done()).stored("a/data/0", floats({1, 2, 3}));
  EXPECT_EQ(Checkpoint::from_bytes(zip.build(true), "z64").at("w").to_vector(), (std::vector<float>{1, 2, 3}));
  // A ZIP64 field cut short, and a ZIP64 end record pointing outside the file.
  std::string cut = zip.build(true);
  const std::size_t extra = cut.find(std::string("\x01\x00\x18\x00", 4));
  ASSERT_NE(extra, std::string::npos);
  cut.replace(extra + 2, 2, le(8, 2));
  expect_bytes_error(cut, {"corrupt zip"});
  std::string far = zip.build(true);
  far.replace(far.rfind(std::string("PK\x06\x07", 4)) + 8, 8, le(std::uint64_t(1) << 50, 8));
  expect_bytes_error(far, {"corrupt zip", "ZIP64 end record"});
}

TEST(ZipErrors, OverlappingAndDuplicateEntries) {
  std::string zip = ZipBuilder().stored("a/data.pkl", "x").stored("a/data.pkl", "y").build();
  expect_bytes_error(zip, {"appears twice"});
  // The first entry's data holds a complete local header for the second, and the second entry's
  // central record points there: both entries are readable, and they overlap.
  const std::string fake = le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc32("y"), 4) +
                           le(1, 4) + le(1, 4) + le(5, 2) + le(0, 2) + "a/two" + "y";
  std::string two = ZipBuilder().stored("a/one", fake).stored("a/two", "y").build();
  const std::size_t second_central = two.find(std::string("PK\x01\x02", 4), two.find(std::string("PK\x01\x02", 4)) + 4);
  two.replace(second_central + 42, 4, le(30 + 5, 4));
  expect_bytes_error(two, {"corrupt zip", "'a/one' and 'a/two' overlap"});
}

TEST(ZipErrors, NoDataPklOrTorchScript) {
  expect_bytes_error(ZipBuilder().stored("a/version", "3\n").build(), {"no <archive>/data.pkl"});
  expect_bytes_error(ZipBuilder().build(), {"no <archive>/data.pkl"});
  expect_bytes_error(ZipBuilder().stored("m/data.pkl", PickleWriter().empty_dict().done()).stored("m/constants.pkl", "x").build(),
                     {"TorchScript"});
  expect_bytes_error(ZipBuilder()
                         .stored("a/data.pkl", PickleWriter().empty_dict().done())
                         .stored("b/data.pkl", PickleWriter().empty_dict().done())
                         .build(),
                     {"more than one data.pkl"});
  expect_bytes_error(ZipBuilder().stored("a/data.pkl", PickleWriter().empty_dict().done()).build(),
                     {"no tensor state dict"});
  std::string bad_crc = ZipBuilder().stored("a/data.pkl", PickleWriter().empty_dict().done()).build();
  bad_crc[30 + 10 + 3] ^= 1;  // flip a bit inside data.pkl
  expect_bytes_error(bad_crc, {"CRC"});
  expect_bytes_error(ZipBuilder().stored("a/data.pkl", PickleWriter().empty_dict().done()).stored("a/byteorder", "big").build(),
                     {"byteorder 'big'"});
}

TEST(ZipErrors, ZipBombs) {
  const std::size_t repeats = 40'000;  // ~10 MB of zeros from ~65 KB
  const std::string stream = deflate_zeros(repeats);
  const std::size_t inflated = 1 + 258 * repeats;
  const std::uint32_t crc = crc32(std::string(inflated, '\0'));
  // Declared small, inflates far beyond: stopped at the declared size.
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", stream, 1000, crc).build(),
                     {"'a/data.pkl'", "inflates past its declared size"});
  // Declared huge from a tiny stream: refused before any allocation.
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", std::string("\x03\x00", 2), 100'000'000, 0).build(),
                     {"impossible ratio"});
  // Above the data.pkl limit (1 GiB) even at a plausible ratio.
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", std::string(2'000'000, '\0'), std::uint64_t(2) << 30, 0).build(),
                     {"above the limit"});
  // An honest stream of the declared size inflates; the zeros are then not a valid pickle.
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", stream, inflated, crc).build(), {"pickle"});
  // A corrupt or truncated stream.
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", "\xff\xff\xff\xff", 10, 0).build(), {"corrupt deflate stream"});
  const std::string small = deflate_zeros(100);
  expect_bytes_error(ZipBuilder().deflated("a/data.pkl", small.substr(0, 100), 1 + 258 * 100, 0).build(),
                     {"truncated deflate"});
}

// ---- tensors and storages ----

TEST(TorchZipErrors, StorageAndGeometry) {
  // Good: 2x3 over a 6-element storage.
  EXPECT_EQ(Checkpoint::from_bytes(one_tensor_zip(6, 0, {2, 3}, {3, 1}, 24), "ok").at("w").shape(), (Shape{2, 3}));
  // A transposed view reads the right elements.
  {
    PickleWriter p;
    p.empty_dict().mark().str("w").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3}).setitems();
    const Checkpoint c = Checkpoint::from_bytes(
        ZipBuilder().stored("a/data.pkl", p.done()).stored("a/data/0", floats({0, 1, 2, 3, 4, 5})).build(), "t");
    const std::vector<float> want{0, 3, 1, 4, 2, 5};
    EXPECT_EQ(c.at("w").to_vector(), want);
  }
  expect_bytes_error(one_tensor_zip(6, 1, {2, 3}, {3, 1}, 24), {"tensor 'w'", "reach past the 6 elements"});
  expect_bytes_error(one_tensor_zip(6, 0, {2, 3}, {4, 1}, 24), {"tensor 'w'", "reach past"});
  expect_bytes_error(one_tensor_zip(6, 0, {2, 3}, {3, 1}, 20), {"tensor 'w'", "holds 20 bytes", "need 24"});
  expect_bytes_error(one_tensor_zip(6, 0, {2, 3}, {3, 1}, 24, "ComplexFloatStorage"),
                     {"tensor 'w'", "torch.ComplexFloatStorage is not supported"});
  expect_bytes_error(one_tensor_zip(6, 0, {2, 3}, {1}, 24), {"size and stride differ"});
  expect_bytes_error(one_tensor_zip(6, 0, {2, -3}, {3, 1}, 24), {"size", "non-negative"});
  expect_bytes_error(one_tensor_zip(2147483647, 2147483647, {2147483647, 2147483647, 2147483647},
                                    {2147483647, 2147483647, 1}, 24),
                     {"tensor 'w'"});
  // Overlapping strides: a small expand() is materialised, a huge one refused before allocating.
  {
    PickleWriter p;
    p.empty_dict().mark().str("w").tensor("FloatStorage", "0", 2, 0, {3, 2}, {0, 1}).setitems();
    const Checkpoint c = Checkpoint::from_bytes(
        ZipBuilder().stored("a/data.pkl", p.done()).stored("a/data/0", floats({7, 8})).build(), "e");
    EXPECT_EQ(c.at("w").to_vector(), (std::vector<float>{7, 8, 7, 8, 7, 8}));
  }
  expect_bytes_error(one_tensor_zip(2, 0, {1 << 30, 1 << 30, 2}, {0, 0, 1}, 8), {"tensor 'w'", "overlapping strides"});
  // Extents whose product overflows, even with a zero extent making the tensor empty.
  expect_bytes_error(one_tensor_zip(2, 0, {0, 2147483647, 2147483647, 2147483647}, {1, 1, 1, 1}, 8),
                     {"tensor 'w'", "overflows"});
  // The storage entry is missing.
  {
    PickleWriter p;
    p.empty_dict().mark().str("w").tensor("FloatStorage", "7", 6, 0, {6}, {1}).setitems();
    expect_bytes_error(ZipBuilder().stored("a/data.pkl", p.done()).build(), {"tensor 'w'", "storage '7' is missing"});
  }
  // Two descriptions of one storage disagree.
  {
    PickleWriter p;
    p.empty_dict().mark().str("w").tensor("FloatStorage", "0", 6, 0, {6}, {1});
    p.str("v").tensor("FloatStorage", "0", 5, 0, {5}, {1}).setitems();
    expect_bytes_error(ZipBuilder().stored("a/data.pkl", p.done()).stored("a/data/0", std::string(24, 'x')).build(),
                       {"described twice"});
  }
}

// ---- the restricted unpickler ----

TEST(PickleErrors, ForeignGlobalsAreInert) {
  // {'w': tensor, 'cfg': yacs.config.CfgNode({'x': os.system('rm -rf /')}), 'obj': NEWOBJ + BUILD}
  PickleWriter p;
  p.empty_dict().mark().str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1});
  p.str("cfg").global("yacs.config", "CfgNode").op(")").reduce();
  p.mark().str("x").global("os", "system").mark().str("rm -rf /").tuple().reduce().setitems();
  p.str("obj").global("argparse", "Namespace").op(")").op("\x81").empty_dict().op("b");
  p.str("call").global("builtins", "eval").mark().str("1").tuple().reduce().mark().integer(3).tuple().reduce();
  p.setitems();
  const std::string pickle = p.done();
  EXPECT_EQ(parse_torch_pickle(pickle, "p"), 1u);
  const Checkpoint c = Checkpoint::from_bytes(
      ZipBuilder().stored("a/data.pkl", pickle).stored("a/data/0", floats({4, 5})).build(), "foreign");
  std::map<std::string, std::string> kinds;
  for (const auto& e : c.other_entries()) kinds[e.key] = e.kind;
  EXPECT_EQ(kinds["obj"], "argparse.Namespace");
  EXPECT_EQ(kinds["call"], "builtins.eval");
  EXPECT_NE(kinds["cfg"].find("yacs.config.CfgNode"), std::string::npos);
  EXPECT_EQ(c.at("w").item(1), 5.0);
}

TEST(PickleErrors, StateDictMadeOfPlaceholdersIsNotAStateDict) {
  PickleWriter p;
  p.empty_dict().mark().str("w").global("os", "system").mark().str("x").tuple().reduce().setitems();
  expect_error([&] { parse_torch_pickle(p.done(), "p.pkl"); }, {"p.pkl", "no tensor state dict"});
  expect_error([&] { parse_torch_pickle(PickleWriter().global("os", "system").done(), "p.pkl"); },
               {"p.pkl", "not a state dict"});
  expect_error([&] { parse_torch_pickle(PickleWriter().integer(5).done(), "p.pkl"); }, {"p.pkl", "int 5"});
}

TEST(PickleErrors, MalformedStreams) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80\x02", "truncated"},
      {"\x80\x02.", "stack underflow"},
      {"\x80\x02" "0.", "MARK expected"},
      {"\x80\x02(.", "unclosed MARK"},
      {"\x80\x02h\x05.", "memo entry 5"},
      {"\x80\x02\xff.", "unknown pickle opcode 0xff"},
      {"\x80\x09}.", "protocol 9"},
      {"\x80\x02X\xff\xff\xff\x7f", "truncated"},
      {"\x80\x02\x8b\xff\xff\xff\xff.", "negative length"},
      {"\x80\x02\x82\x01.", "extension-registry"},
      {"\x80\x02K\x00K\x01K\x02s."s, "not a dict"},
      {"\x80\x02K\x01K\x02" "a.", "not a list"},
      {"\x80\x02}(K\x01u.", "odd number"},
      {"\x80\x02" "F1.5x\n.", "bad FLOAT"},
      {"\x80\x02" "Iabc\n.", "bad integer"},
      {"\x80\x02" "cos\nsystem", "truncated text"},
      {"\x80\x02P0\n.", "PERSID"},
      {"\x80\x02K\x01Q.", "persistent id"},
      {"\x80\x05\x97.", "out-of-band"},
      {"\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x02tR.", "malformed arguments"},
      {"\x80\x02" "ctorch._utils\n_rebuild_parameter\n(K\x01tR.", "malformed arguments"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.second);
    expect_error([&] { parse_torch_pickle(c.first, "m.pkl"); }, {"m.pkl", c.second});
  }
}

TEST(PickleErrors, LimitsHoldAgainstHugeNestingAndLoops) {
  // 2^17 nested MARKs exceed the mark limit quickly instead of exhausting memory.
  expect_error([&] { parse_torch_pickle("\x80\x02" + std::string(1 << 17, '('), "deep.pkl"); },
               {"deep.pkl", "MARK"});
  // 2^21 pushes exceed the stack limit.
  expect_error([&] { parse_torch_pickle("\x80\x02" + std::string(1 << 21, 'N'), "wide.pkl"); },
               {"wide.pkl", "stack"});
  // A list that contains itself, and a dict that contains itself, finish.
  expect_error([&] { parse_torch_pickle("\x80\x02]q\x00h\x00"s "a.", "loop.pkl"); }, {"loop.pkl", "not a state dict"});
  expect_error([&] { parse_torch_pickle(std::string("\x80\x02}q\x00(X\x01\x00\x00\x00", 11) + "ah" + std::string(1, '\0') + "u.", "loop.pkl"); },
               {"loop.pkl", "no tensor state dict"});
  // A chain of dicts each referencing the previous one twice (exponential if walked naively).
  std::string chain("\x80\x02}q\x00", 5);
  for (int i = 1; i < 200; ++i) {
    const std::string len1("X\x01\x00\x00\x00", 5);
    const std::string prev(1, static_cast<char>(i - 1));
    chain += "}q" + std::string(1, static_cast<char>(i)) + "(" + len1 + "ah" + prev + len1 + "bh" + prev + "u";
  }
  chain += ".";
  expect_error([&] { parse_torch_pickle(chain, "chain.pkl"); }, {"chain.pkl", "no tensor state dict"});
}

TEST(PickleErrors, ProtocolFourAndTextOpcodes) {
  // FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, protocol-0 strings and integers.
  std::string p4 = "\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94("s;
  p4 += "\x8c\x01w\x94";
  p4 += "\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94";
  p4 += "((\x8c\x07storage\x8c\x05torch\x8c\x0c" "FloatStorage\x93\x8c\x01" "0\x8c\x03" "cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89)tR"s;
  p4 += "Vepoch\nI7\nS'x\\n'\n0Lbig\nu.";
  // The text opcodes above: key 'epoch' -> 7, then a STRING pushed and popped, then LONG 'big' fails.
  expect_error([&] { parse_torch_pickle(p4, "p4.pkl"); }, {"p4.pkl", "bad integer"});
  std::string ok = p4.substr(0, p4.size() - std::string("Lbig\nu.").size()) + "u.";
  EXPECT_EQ(parse_torch_pickle(ok, "p4.pkl"), 1u);
}

}  // namespace
}  // namespace mcv::test_checkpoint_errors
