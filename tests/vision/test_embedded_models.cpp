// The embedded Fashion-MNIST models (fmnist-vim, fmnist-vmamba, fmnist-mambavision):
//  - the C++ families compute what the training code (tools/training/models.py) computes, on
//    reduced copies of each configuration with perturbed random weights (oracle folders under
//    tests/fixtures/fmnist_parity/, written by make_parity_fixtures.py);
//  - the registered variants match what the shipped weights were trained as (constructor
//    arguments, input size and accuracy stored in each file's metadata), and stay <= 3 MB;
//  - end to end on the shipped weights: the bundled demo PNGs are preprocessed and classified as
//    the Python reference (make_demo_reference.py) does, and mostly correctly.
// Missing fixtures or weights fail; everything runs on the CPU in a few seconds.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "mcv/checkpoint.h"
#include "mcv/image.h"
#include "mcv/vision.h"
#include "model.h"
#include "oracle.h"
#include "test_support.h"

namespace mcv::test_embedded_models {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFamilies = {"vim", "vmamba", "mambavision"};

fs::path weights_path(const std::string& family) {
  return test::source_dir() / "vision" / "weights" / ("fmnist_" + family + ".safetensors");
}

fs::path parity_dir() { return test::fixture_dir() / "fmnist_parity"; }

std::vector<fs::path> demo_images() {
  std::vector<fs::path> out;
  const fs::path dir = test::source_dir() / "tools" / "demo-data" / "fashion";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".png") out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

// "Ankle_boot_0.png" -> "Ankle boot": the label is the name up to the last '_', with the
// characters a file name cannot hold restored ('_' stands for ' ' and '/').
int label_of(const fs::path& png) {
  const std::string stem = png.stem().string();
  const std::string name = stem.substr(0, stem.rfind('_'));
  const auto& labels = vision::class_labels("fashion-mnist");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    std::string safe = labels[i];
    for (char& c : safe)
      if (c == ' ' || c == '/') c = '_';
    if (safe == name) return static_cast<int>(i);
  }
  return -1;
}

TEST(EmbeddedModels, ParityWithTrainingCode) {
  for (const std::string& family : kFamilies) {
    const fs::path dir = parity_dir() / ("fmnist_" + family + "_reduced");
    ASSERT_TRUE(fs::exists(dir / "config.json")) << "missing parity fixture " << dir;
    SCOPED_TRACE(dir.filename().string());
    const oracle::OracleResult r = oracle::run_oracle(dir, {Device::cpu(), DType::f32});
    ASSERT_EQ(r.checks.size(), 1u);
    const auto& c = r.checks[0];
    EXPECT_TRUE(c.passed) << c.name << ": max_abs " << c.max_abs << " (limit " << c.limit_max_abs << "), rel_l2 "
                          << c.rel_l2 << " (limit " << c.limit_rel_l2 << ")";
    EXPECT_TRUE(r.passed);
  }
}

TEST(EmbeddedModels, RegisteredAsTrained) {
  for (const std::string& family : kFamilies) {
    SCOPED_TRACE(family);
    const fs::path path = weights_path(family);
    ASSERT_TRUE(fs::exists(path)) << "missing " << path;
    // The budget of an embedded model: at most 3 MB of weights.
    EXPECT_LE(fs::file_size(path), 3'000'000u);

    const vision::ModelSpec& spec = vision::find_spec("fmnist-" + family);
    const vision::ModelInfo info = vision::find_model("fmnist_" + family);  // the alias
    EXPECT_EQ(info.name, "fmnist-" + family);
    EXPECT_EQ(info.family, family);
    EXPECT_EQ(info.labels, "fashion-mnist");
    EXPECT_EQ(info.num_classes, 10);
    EXPECT_EQ(info.checkpoint, path.filename().string());
    EXPECT_LE(info.parameters, 750'000);

    const Checkpoint ckpt = Checkpoint::open(path);
    const auto& meta = ckpt.metadata();
    ASSERT_TRUE(meta.count("args") && meta.count("input_size") && meta.count("test_top1") && meta.count("mean") &&
                meta.count("std"))
        << path << " lacks the training metadata";
    EXPECT_EQ(vision::Json::parse(meta.at("args")), spec.args) << "registered arguments differ from the trained ones";
    EXPECT_EQ(std::stoi(meta.at("input_size")), info.preprocess.input_height);
    EXPECT_EQ(info.preprocess.input_width, info.preprocess.input_height);
    EXPECT_EQ(info.preprocess.crop_pct, 1.0);
    EXPECT_EQ(info.preprocess.interpolation, "bicubic");
    for (int c = 0; c < 3; ++c) {
      EXPECT_FLOAT_EQ(info.preprocess.mean[c], std::stof(meta.at("mean")));
      EXPECT_FLOAT_EQ(info.preprocess.std[c], std::stof(meta.at("std")));
    }
    // The registry's top-1 is the accuracy the training script measured for these weights.
    EXPECT_NEAR(info.published_top1, std::stod(meta.at("test_top1")), 0.005);
    // The target for every embedded model.
    EXPECT_GE(info.published_top1, 90.0);
  }
}

TEST(EmbeddedModels, ClassifiesDemoImagesLikeTheReference) {
  const auto pngs = demo_images();
  ASSERT_EQ(pngs.size(), 10u) << "expected one demo image per class under tools/demo-data/fashion";
  const fs::path ref_path = parity_dir() / "demo_reference.safetensors";
  ASSERT_TRUE(fs::exists(ref_path)) << "missing " << ref_path;
  const Checkpoint ref = Checkpoint::open(ref_path);
  std::string names;
  for (const auto& p : pngs) names += (names.empty() ? "" : ",") + p.filename().string();
  ASSERT_EQ(ref.metadata().at("images"), names) << "demo images changed: rerun make_demo_reference.py";

  std::vector<Image> images;
  for (const auto& p : pngs) {
    images.push_back(load_image(p));
    ASSERT_GE(label_of(p), 0) << p.filename() << " does not start with a Fashion-MNIST label";
  }
  for (const std::string& family : kFamilies) {
    SCOPED_TRACE(family);
    vision::Model model = vision::Model::load("fmnist-" + family, weights_path(family));
    const int size = model.info().preprocess.input_height;

    // Preprocessing: gray -> RGB, resize, normalise, as the training script fed the model.
    const Tensor& pixels = ref.at("pixels." + std::to_string(size));
    Tensor batch = Tensor::empty({static_cast<std::int64_t>(images.size()), 3, size, size}, DType::f32);
    for (std::size_t i = 0; i < images.size(); ++i) {
      const Tensor x = model.preprocess(images[i]);
      batch.select(0, static_cast<std::int64_t>(i)).copy_from(x);
      for (int c = 0; c < 3; ++c) {
        const test::Diff d = test::compare(x.select(0, c), pixels.select(0, static_cast<std::int64_t>(i)));
        EXPECT_LE(d.max_abs, 1e-6) << pngs[i].filename() << " channel " << c;
      }
    }

    // Logits of the shipped weights, against the float64 PyTorch reference.
    const Tensor logits = model.logits(batch);
    const test::Diff d = test::compare(logits, ref.at("logits." + family));
    EXPECT_LE(d.max_abs, 2e-4);
    EXPECT_LE(d.rel_l2, 2e-5);

    // And the classifications are mostly right (the demo prints these).
    int correct = 0;
    const auto predictions = model.classify(images, 1);
    for (std::size_t i = 0; i < images.size(); ++i) correct += predictions[i][0].class_index == label_of(pngs[i]);
    EXPECT_GE(correct, 8) << family << " classified " << correct << " of 10 demo images correctly";
  }
}

}  // namespace
}  // namespace mcv::test_embedded_models
