// Checkpoint readers against real files written by PyTorch and the safetensors package
// (tools/fixtures/make_checkpoint_fixtures.py; expected values in expected.json), and the
// safetensors writer.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mcv/checkpoint.h"
#include "mcv/error.h"
#include "test_support.h"

namespace mcv::test_checkpoint {
namespace {

namespace fs = std::filesystem;

fs::path ckpt_dir() { return test::fixture_dir() / "checkpoints"; }

const nlohmann::json& expected() {
  static const nlohmann::json j = nlohmann::json::parse(test::read_file(ckpt_dir() / "expected.json"));
  return j;
}

// Checks names, dtypes, shapes and every value against the expectation written by PyTorch.
void expect_matches(const Checkpoint& ckpt, const nlohmann::json& want) {
  EXPECT_EQ(ckpt.format(), want["format"].get<std::string>());
  EXPECT_EQ(ckpt.state_dict_key(), want["state_dict_key"].get<std::string>());
  EXPECT_EQ(ckpt.other_keys(), want["other_keys"].get<std::vector<std::string>>());
  const auto& tensors = want["tensors"];
  EXPECT_EQ(ckpt.tensors().size(), tensors.size());
  for (const auto& [name, info] : tensors.items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ckpt.contains(name));
    const Tensor& t = ckpt.at(name);
    EXPECT_EQ(dtype_name(t.dtype()), info["dtype"].get<std::string>());
    EXPECT_EQ(t.shape(), info["shape"].get<Shape>());
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_TRUE(t.device().is_cpu());
    const auto values = info["values"].get<std::vector<double>>();
    ASSERT_EQ(t.numel(), static_cast<std::int64_t>(values.size()));
    for (std::int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.item(i), values[i]) << "element " << i;
  }
}

class FixtureFile : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureFile, MatchesWhatPyTorchWrote) {
  const std::string file = GetParam();
  const auto& want = expected()[file];
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / file);
  EXPECT_EQ(ckpt.path(), ckpt_dir() / file);
  expect_matches(ckpt, want);
  // The same bytes from memory read the same.
  const Checkpoint again = Checkpoint::from_bytes(test::read_file(ckpt_dir() / file), file);
  expect_matches(again, want);
}

INSTANTIATE_TEST_SUITE_P(Checkpoint, FixtureFile,
                         ::testing::Values("plain_state_dict.pth", "deflated_state_dict.pth", "train_checkpoint.pth",
                                           "ema_checkpoint.pth", "imagenet_example.pth.tar", "nnunet_style.pth",
                                           "views.pth", "numpy_scalar.pth", "hostile.pth", "reference.safetensors"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

TEST(Checkpoint, EmaOnlyOnRequest) {
  CheckpointOptions ema;
  ema.prefer_ema = true;
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "ema_checkpoint.pth", ema);
  expect_matches(ckpt, expected()["ema_checkpoint.pth#ema"]);
  // Asking for EMA weights in a file without any is an error, not a silent fallback.
  try {
    Checkpoint::open(ckpt_dir() / "train_checkpoint.pth", ema);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_checkpoint.pth"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("EMA"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, OtherEntriesAreDescribed) {
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "train_checkpoint.pth");
  std::map<std::string, std::string> kinds;
  for (const auto& e : ckpt.other_entries()) kinds[e.key] = e.kind;
  EXPECT_EQ(kinds["epoch"], "int 7");
  EXPECT_EQ(kinds["args"], "argparse.Namespace");
  EXPECT_EQ(kinds["best_acc1"], "float");
  EXPECT_NE(kinds["optimizer"].find("dict"), std::string::npos);
  EXPECT_FALSE(ckpt.has_module_prefix());
  EXPECT_EQ(ckpt.parameter_count(), 4 * 3 * 3 * 3 + 4 + 4 * 4 + 1 + 4 * 2 + 2);
}

TEST(Checkpoint, DdpPrefixIsKeptAndReported) {
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "imagenet_example.pth.tar");
  EXPECT_TRUE(ckpt.has_module_prefix());
  EXPECT_TRUE(ckpt.contains("module.conv.weight"));
  EXPECT_FALSE(ckpt.contains("conv.weight"));
  try {
    ckpt.at("conv.weight");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("imagenet_example.pth.tar"), std::string::npos) << what;
    EXPECT_NE(what.find("'conv.weight'"), std::string::npos) << what;
    EXPECT_NE(what.find("module.conv.weight"), std::string::npos) << what;
  }
}

TEST(Checkpoint, ViewsShareOneStorageAndStridedOnesAreCopied) {
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "views.pth");
  const Tensor& base = ckpt.at("base");
  // Contiguous views of one storage share it; strided ones became contiguous copies.
  EXPECT_EQ(ckpt.at("rows").storage(), base.storage());
  EXPECT_EQ(ckpt.at("row2").storage(), base.storage());
  EXPECT_NE(ckpt.at("transposed").storage(), base.storage());
  EXPECT_NE(ckpt.at("cols").storage(), base.storage());
  EXPECT_EQ(ckpt.at("row2").byte_offset(), 2 * 6 * sizeof(float));
}

TEST(Checkpoint, ZeroCopyTensorsViewTheFileAndMayBeWritten) {
  const fs::path path = test::temp_dir() / "cow.pth";
  fs::copy_file(ckpt_dir() / "plain_state_dict.pth", path);
  {
    const Checkpoint ckpt = Checkpoint::open(path);
    Tensor w = ckpt.at("conv.weight");
    // Writing into a tensor that views the mapping must neither crash nor change the file.
    w.fill(42.0);
    EXPECT_EQ(w.item(0), 42.0);
  }
  const Checkpoint again = Checkpoint::open(path);
  EXPECT_EQ(again.at("conv.weight").item(0), -1.0);
}

TEST(Checkpoint, HostileGlobalsAreNeverRun) {
  const std::string marker = expected()["hostile.pth"]["marker"].get<std::string>();
  std::error_code ec;
  fs::remove(marker, ec);
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "hostile.pth");
  EXPECT_EQ(ckpt.at("weight").item(1), 2.0);
  EXPECT_FALSE(fs::exists(marker)) << "the pickle's os.system call ran";
  std::map<std::string, std::string> kinds;
  for (const auto& e : ckpt.other_entries()) kinds[e.key] = e.kind;
  EXPECT_EQ(kinds["evil"], "posix.system");
  EXPECT_EQ(kinds["evil_eval"], "__builtin__.eval");
}

TEST(Checkpoint, Torch2ZipLayout) {
  const fs::path path = ckpt_dir() / "torch2_state_dict.pth";
  if (!fs::exists(path)) GTEST_SKIP() << "fixture " << path << " (written by torch 2.x) is not present";
  const Checkpoint ckpt = Checkpoint::open(path);
  EXPECT_EQ(ckpt.format(), "pytorch-zip");
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a.weight", "b.bias", "c.count"}));
  const Tensor& a = ckpt.at("a.weight");
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.item(i), i);
  const Tensor& b = ckpt.at("b.bias");
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_EQ(b.shape(), (Shape{2}));
  EXPECT_EQ(b.item(0), 1.5);
  EXPECT_EQ(b.item(1), -2.0);
  const Tensor& c = ckpt.at("c.count");
  EXPECT_EQ(c.dtype(), DType::i64);
  EXPECT_EQ(c.shape(), Shape{});
  EXPECT_EQ(c.item(0), 7);
}

TEST(Checkpoint, SafetensorsMetadataIsKept) {
  const Checkpoint ckpt = Checkpoint::open(ckpt_dir() / "reference.safetensors");
  const auto& meta = expected()["reference.safetensors"]["metadata"];
  const auto want = meta.get<std::map<std::string, std::string>>();
  EXPECT_EQ(ckpt.metadata(), want);
}

// ---- safetensors writer ----

std::map<std::string, Tensor> sample_tensors() {
  std::map<std::string, Tensor> t;
  t["a.f32"] = test::random_tensor({3, 5}, DType::f32, 1);
  t["b.f16"] = test::random_tensor({7}, DType::f16, 2);
  t["c.bf16"] = test::random_tensor({2, 2, 3}, DType::bf16, 3);
  Tensor i64 = Tensor::empty({3}, DType::i64);
  i64.data<std::int64_t>()[0] = -5;
  i64.data<std::int64_t>()[1] = std::int64_t(1) << 60;
  i64.data<std::int64_t>()[2] = 9;
  t["d.i64"] = i64;
  Tensor i32 = Tensor::empty({2}, DType::i32);
  i32.data<std::int32_t>()[0] = -2147483647 - 1;
  i32.data<std::int32_t>()[1] = 77;
  t["e.i32"] = i32;
  Tensor u8 = Tensor::empty({5}, DType::u8);
  for (int i = 0; i < 5; ++i) u8.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(50 * i + 1);
  t["f.u8"] = u8;
  t["g.scalar"] = Tensor::from_vector({3.25f}, {});
  t["h.empty"] = Tensor::empty({0, 4}, DType::f32);
  t["i.transposed"] = test::random_tensor({4, 3}, DType::f32, 4).transpose(0, 1);  // not contiguous
  return t;
}

void expect_equal_maps(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(got.count(name));
    const Tensor& g = got.at(name);
    EXPECT_EQ(g.dtype(), w.dtype());
    ASSERT_EQ(g.shape(), w.shape());
    for (std::int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(g.item(i), w.item(i)) << i;
  }
}

TEST(Safetensors, RoundTrip) {
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "ünïcode ✓"}};
  const fs::path path = test::temp_dir() / "round.safetensors";
  save_safetensors(path, tensors, meta);
  const Checkpoint ckpt = Checkpoint::open(path);
  EXPECT_EQ(ckpt.format(), "safetensors");
  EXPECT_EQ(ckpt.metadata(), meta);
  expect_equal_maps(ckpt.tensors(), tensors);
  // Written with the header padded to 8 bytes and largest elements first: every tensor is viewed
  // in place, none copied. Views of one mapping sit at their file distance from each other.
  const Tensor& a = ckpt.at("a.f32");
  const Tensor& e = ckpt.at("e.i32");  // written right after a.f32
  const auto distance = static_cast<const char*>(e.raw_data()) - static_cast<const char*>(a.raw_data());
  EXPECT_EQ(distance, static_cast<std::ptrdiff_t>(a.nbytes()));
  // The same bytes in memory.
  const std::string bytes = encode_safetensors(tensors, meta);
  EXPECT_EQ(bytes, test::read_file(path));
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);
  expect_equal_maps(Checkpoint::from_bytes(bytes, "mem").tensors(), tensors);
}

TEST(Safetensors, OverwritesAtomicallyAndRefusesBadNames) {
  const fs::path dir = test::temp_dir();
  const fs::path path = dir / "out.safetensors";
  save_safetensors(path, {{"x", Tensor::from_vector({1, 2}, {2})}});
  save_safetensors(path, {{"y", Tensor::from_vector({3}, {1})}});
  const Checkpoint ckpt = Checkpoint::open(path);
  EXPECT_EQ(ckpt.names(), std::vector<std::string>{"y"});
  EXPECT_THROW(save_safetensors(path, {{"", Tensor::from_vector({1}, {1})}}), Error);
  EXPECT_THROW(save_safetensors(path, {{"__metadata__", Tensor::from_vector({1}, {1})}}), Error);
  EXPECT_THROW(save_safetensors(path, {{"bad\xff", Tensor::from_vector({1}, {1})}}), Error);
  EXPECT_THROW(save_safetensors(dir / "missing" / "x.safetensors", {{"x", Tensor::from_vector({1}, {1})}}), Error);
  // Failed writes left the previous file in place and no temporaries behind.
  EXPECT_EQ(Checkpoint::open(path).names(), std::vector<std::string>{"y"});
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(Safetensors, ConvertedPthRoundTripsThroughSafetensors) {
  const Checkpoint pth = Checkpoint::open(ckpt_dir() / "plain_state_dict.pth");
  const fs::path out = test::temp_dir() / "plain.safetensors";
  save_safetensors(out, pth.tensors());
  expect_equal_maps(Checkpoint::open(out).tensors(), pth.tensors());
}

}  // namespace
}  // namespace mcv::test_checkpoint
