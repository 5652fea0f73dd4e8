// mcv inspect and mcv convert through the real binary: output, exit codes (0 / 2) and the
// one-line `mcv: <file>: <problem>` error format.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "mcv/checkpoint.h"
#include "test_support.h"

namespace mcv::test_cli_checkpoint {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return (test::fixture_dir() / "checkpoints" / name).string(); }

TEST(CliInspect, ListsTensorsOfATrainingCheckpoint) {
  std::string out;
  ASSERT_EQ(test::run_cli({"inspect", fixture("train_checkpoint.pth")}, &out), 0) << out;
  EXPECT_NE(out.find("format:      pytorch-zip"), std::string::npos) << out;
  EXPECT_NE(out.find("state dict:  model"), std::string::npos) << out;
  EXPECT_NE(out.find("tensors:     9"), std::string::npos) << out;
  EXPECT_NE(out.find("parameters:  139 elements"), std::string::npos) << out;
  EXPECT_NE(out.find("other key:   args: argparse.Namespace"), std::string::npos) << out;
  EXPECT_NE(out.find("other key:   epoch: int 7"), std::string::npos) << out;
  EXPECT_NE(out.find("conv.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("[4, 3, 3, 3]"), std::string::npos) << out;
  EXPECT_NE(out.find("bn.num_batches_tracked"), std::string::npos) << out;
}

TEST(CliInspect, JsonAndEma) {
  std::string out;
  ASSERT_EQ(test::run_cli({"inspect", "--json", "--ema", fixture("ema_checkpoint.pth")}, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "pytorch-zip");
  EXPECT_EQ(j["state_dict_key"], "model_ema");
  EXPECT_EQ(j["tensor_count"], 9);
  EXPECT_EQ(j["parameter_count"], 139);
  EXPECT_EQ(j["module_prefix"], false);
  ASSERT_EQ(j["other_keys"].size(), 2u);
  EXPECT_EQ(j["other_keys"][0]["key"], "model");
  EXPECT_EQ(j["tensors"][0]["name"], "conv.weight");
  EXPECT_EQ(j["tensors"][0]["dtype"], "f32");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json({4, 3, 3, 3}));

  ASSERT_EQ(test::run_cli({"inspect", "--json", fixture("reference.safetensors")}, &out), 0) << out;
  const auto s = nlohmann::json::parse(out);
  EXPECT_EQ(s["format"], "safetensors");
  EXPECT_EQ(s["metadata"]["format"], "pt");

  ASSERT_EQ(test::run_cli({"inspect", fixture("imagenet_example.pth.tar")}, &out), 0) << out;
  EXPECT_NE(out.find("module."), std::string::npos) << out;
  EXPECT_NE(out.find("DataParallel"), std::string::npos) << out;
}

TEST(CliInspect, BadInputsExitTwoWithOneLine) {
  const fs::path dir = test::temp_dir();
  test::write_file(dir / "empty.pth", "");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {fixture("legacy.pth"), "legacy non-zip torch format is not supported"},
      {fixture("no_tensors.pth"), "no tensor state dict"},
      {(dir / "empty.pth").string(), "file is empty"},
      {(dir / "missing.pth").string(), "cannot open"},
      {dir.string(), "is a directory"},
  };
  for (const auto& [file, problem] : cases) {
    std::string out;
    EXPECT_EQ(test::run_cli({"inspect", file}, &out), 2) << out;
    EXPECT_EQ(out.rfind("mcv: " + file + ": ", 0), 0u) << out;
    EXPECT_NE(out.find(problem), std::string::npos) << out;
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "one line: " << out;
  }
  std::string out;
  EXPECT_EQ(test::run_cli({"inspect", "--ema", fixture("train_checkpoint.pth")}, &out), 2) << out;
  EXPECT_NE(out.find("EMA"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli({"inspect"}, &out), 2) << out;
}

TEST(CliConvert, PthToSafetensorsKeepsNamesAndValues) {
  const fs::path out_path = test::temp_dir() / "model.safetensors";
  std::string out;
  ASSERT_EQ(test::run_cli({"convert", fixture("train_checkpoint.pth"), out_path.string()}, &out), 0) << out;
  EXPECT_NE(out.find("9 tensors"), std::string::npos) << out;
  const Checkpoint src = Checkpoint::open(fixture("train_checkpoint.pth"));
  const Checkpoint dst = Checkpoint::open(out_path);
  EXPECT_EQ(dst.format(), "safetensors");
  EXPECT_EQ(dst.metadata().at("format"), "pt");
  ASSERT_EQ(dst.tensors().size(), src.tensors().size());
  for (const auto& [name, t] : src.tensors()) {
    ASSERT_TRUE(dst.contains(name)) << name;
    EXPECT_EQ(dst.at(name).dtype(), t.dtype());
    EXPECT_EQ(dst.at(name).shape(), t.shape());
    EXPECT_EQ(dst.at(name).to_vector(), t.to_vector()) << name;
  }
  // --ema converts the other copy; a DDP file keeps its prefix.
  ASSERT_EQ(test::run_cli({"convert", "--ema", fixture("ema_checkpoint.pth"), out_path.string()}, &out), 0) << out;
  EXPECT_EQ(Checkpoint::open(out_path).at("conv.bias").to_vector(),
            Checkpoint::open(fixture("ema_checkpoint.pth"), {true}).at("conv.bias").to_vector());
  ASSERT_EQ(test::run_cli({"convert", fixture("imagenet_example.pth.tar"), out_path.string()}, &out), 0) << out;
  EXPECT_TRUE(Checkpoint::open(out_path).contains("module.conv.weight"));
}

TEST(CliConvert, HostileFileConvertsWithoutRunningAnything) {
  const std::string marker = "/tmp/mcv_hostile_checkpoint_marker";
  std::error_code ec;
  fs::remove(marker, ec);
  const fs::path out_path = test::temp_dir() / "safe.safetensors";
  std::string out;
  ASSERT_EQ(test::run_cli({"convert", fixture("hostile.pth"), out_path.string()}, &out), 0) << out;
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(Checkpoint::open(out_path).names(), std::vector<std::string>{"weight"});
}

TEST(CliConvert, RefusesToOverwriteItsInputAndBadOutputs) {
  const fs::path dir = test::temp_dir();
  const fs::path input = dir / "in.pth";
  fs::copy_file(fixture("plain_state_dict.pth"), input);
  const std::string before = test::read_file(input);
  std::string out;
  EXPECT_EQ(test::run_cli({"convert", input.string(), input.string()}, &out), 2) << out;
  EXPECT_EQ(out.rfind("mcv: " + input.string() + ": ", 0), 0u) << out;
  EXPECT_NE(out.find("input"), std::string::npos) << out;
  EXPECT_EQ(test::read_file(input), before);
  // The same file under another spelling.
  const std::string other = (dir / "." / "in.pth").string();
  EXPECT_EQ(test::run_cli({"convert", input.string(), other}, &out), 2) << out;
  EXPECT_EQ(test::read_file(input), before);
  // No folder for the output, and a bad input: exit 2, nothing written.
  EXPECT_EQ(test::run_cli({"convert", input.string(), (dir / "no" / "x.safetensors").string()}, &out), 2) << out;
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli({"convert", fixture("legacy.pth"), (dir / "y.safetensors").string()}, &out), 2) << out;
  EXPECT_FALSE(fs::exists(dir / "y.safetensors"));
}

}  // namespace
}  // namespace mcv::test_cli_checkpoint
