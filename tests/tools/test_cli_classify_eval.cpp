// mcv classify / eval / models end to end with the embedded Fashion-MNIST VMamba: an ImageFolder
// built from the bundled demo images, unreadable files skipped and counted, and every dataset
// error an exit-2 one-liner naming the problem.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace mcv::test_cli_classify_eval {
namespace {

namespace fs = std::filesystem;

const char* kModel = "fmnist-vmamba";
fs::path weights() { return test::source_dir() / "vision/weights/fmnist_vmamba.safetensors"; }
fs::path demo(const std::string& name) { return test::source_dir() / "tools/demo-data/fashion" / name; }

// Class folders in Fashion-MNIST index order, one demo image each (all 10 classified right by the
// shipped weights: tests/vision/test_embedded_models.cpp).
const std::vector<std::pair<std::string, std::string>> kClasses = {
    {"0_T-shirt_top", "T-shirt_top_19.png"}, {"1_Trouser", "Trouser_2.png"}, {"2_Pullover", "Pullover_1.png"},
    {"3_Dress", "Dress_13.png"},             {"4_Coat", "Coat_6.png"},       {"5_Sandal", "Sandal_8.png"},
    {"6_Shirt", "Shirt_4.png"},              {"7_Sneaker", "Sneaker_9.png"}, {"8_Bag", "Bag_18.png"},
    {"9_Ankle_boot", "Ankle_boot_0.png"}};

fs::path make_image_folder() {
  const fs::path root = test::temp_dir() / "data";
  for (const auto& [dir, file] : kClasses) {
    fs::create_directories(root / dir);
    fs::copy_file(demo(file), root / dir / file);
  }
  return root;
}

TEST(CliEval, ImageFolderTopOneAndJsonReport) {
  const fs::path data = make_image_folder();
  const fs::path json = data.parent_path() / "report.json";
  std::string out;
  ASSERT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", data.string(),
                           "--batch", "4", "--quiet", "--json", json.string()},
                          &out),
            0)
      << out;
  EXPECT_NE(out.find("images 10 evaluated, 0 skipped"), std::string::npos) << out;
  const auto report = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(report["images"], 10);
  EXPECT_DOUBLE_EQ(report["top1"].get<double>(), 100.0);
  EXPECT_EQ(report["per_class"].size(), 10u);
}

TEST(CliEval, UnreadableImagesAreSkippedAndCounted) {
  const fs::path data = make_image_folder();
  test::write_file(data / "3_Dress" / "broken.png", "\x89PNG\r\n\x1a\n not really");
  std::string out;
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", data.string(), "--quiet"}, &out), 1)
      << out;
  EXPECT_NE(out.find("images 10 evaluated, 1 skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("broken.png"), std::string::npos) << out;
}

TEST(CliEval, DatasetErrorsAreExitTwo) {
  std::string out;
  const fs::path empty = test::temp_dir();
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", empty.string()}, &out), 2);
  EXPECT_NE(out.find("no class folders"), std::string::npos) << out;

  const fs::path data = make_image_folder();
  fs::remove_all(data / "9_Ankle_boot");
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", data.string()}, &out), 2);
  EXPECT_NE(out.find("9 class folders, but the model has 10 classes"), std::string::npos) << out;

  const fs::path flat = test::temp_dir();
  fs::copy_file(demo("Bag_18.png"), flat / "a.png");
  test::write_file(flat / "labels.txt", "a.png 8\nb.png 3\n");
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", flat.string(),
                           "--labels", (flat / "labels.txt").string()},
                          &out),
            2);
  EXPECT_NE(out.find("b.png does not exist"), std::string::npos) << out;
  test::write_file(flat / "labels.txt", "a.png 12\n");
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", flat.string(),
                           "--labels", (flat / "labels.txt").string()},
                          &out),
            2);
  EXPECT_NE(out.find("out of range"), std::string::npos) << out;
}

TEST(CliEval, FlatFolderWithClassNameLabels) {
  const fs::path flat = test::temp_dir();
  fs::copy_file(demo("Bag_18.png"), flat / "a.png");
  fs::copy_file(demo("Sneaker_9.png"), flat / "b.png");
  test::write_file(flat / "labels.txt", "a.png Bag\nb.png 7\n");
  std::string out;
  EXPECT_EQ(test::run_cli({"eval", "--model", kModel, "--weights", weights().string(), "--data", flat.string(),
                           "--labels", (flat / "labels.txt").string(), "--quiet"},
                          &out),
            0)
      << out;
  EXPECT_NE(out.find("top-1 100.00%"), std::string::npos) << out;
}

TEST(CliClassify, PrintsTopKAndSkipsUnreadableImages) {
  const fs::path bad = test::temp_dir() / "bad.jpg";
  test::write_file(bad, "");
  std::string out;
  EXPECT_EQ(test::run_cli({"classify", "--model", kModel, "--weights", weights().string(), "--topk", "2",
                           demo("Trouser_2.png").string(), bad.string()},
                          &out),
            1)
      << out;
  EXPECT_NE(out.find("Trouser"), std::string::npos) << out;
  EXPECT_NE(out.find("mcv: " + bad.string()), std::string::npos) << out;
}

TEST(CliClassify, WrongCheckpointIsExitTwoNamingTensors) {
  std::string out;
  EXPECT_EQ(test::run_cli({"classify", "--model", kModel, "--weights",
                           (test::source_dir() / "vision/weights/fmnist_vim.safetensors").string(), demo("Bag_18.png").string()},
                          &out),
            2);
  EXPECT_NE(out.find("checkpoint does not match the model"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli({"classify", "--model", "no-such-model", "--weights", weights().string(), demo("Bag_18.png").string()}, &out), 2);
  EXPECT_NE(out.find("not a registered model"), std::string::npos) << out;
}

TEST(CliModels, ListsEveryFamily) {
  std::string out;
  ASSERT_EQ(test::run_cli({"models"}, &out), 0) << out;
  for (const char* name : {"vim_tiny_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
                           "vmambav2_tiny_224", "mamba_vision_T", "fmnist-vim"})
    EXPECT_NE(out.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace mcv::test_cli_classify_eval
