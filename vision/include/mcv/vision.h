#pragma once
/// \file
/// mambacv vision API: load a registered model (Vim, VMamba, MambaVision) from its official
/// checkpoint, classify images, extract per-stage features. Link `mcv::vision`.
///
/// \code
///   auto model = mcv::vision::Model::load("vim-t", "vim_t_midclstok_76p1acc.pth", {mcv::Device::cuda()});
///   for (const auto& p : model.classify(mcv::load_image("cat.jpg"), 5))
///     std::printf("%s %.3f\n", p.label.c_str(), p.probability);
/// \endcode

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/image.h"
#include "mcv/tensor.h"

namespace mcv::vision {

/// The evaluation transform of a model, as timm defines it: resize the shorter side to
/// input_size / crop_pct with PIL-compatible antialiased interpolation, centre crop, scale to
/// [0, 1], normalise. Gray and RGBA inputs become RGB first (as PIL's convert('RGB')).
struct Preprocess {
  int input_height = 224, input_width = 224;
  double crop_pct = 0.875;
  /// "center" (timm's default: keep the aspect ratio, shorter side to input / crop_pct) or
  /// "squash" (each side to its input / crop_pct, aspect ratio not kept), then the centre crop.
  std::string crop_mode = "center";
  std::string interpolation = "bicubic";  ///< "bicubic" or "bilinear"
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

/// A registered model variant.
struct ModelInfo {
  std::string name;                  ///< official name, e.g. "vim_tiny_patch16_224_bimambav2_..."
  std::vector<std::string> aliases;  ///< short names, e.g. "vim-t"
  std::string family;                ///< "vim", "vmamba", "mambavision"
  std::int64_t parameters = 0;       ///< learnable parameter count
  int num_classes = 1000;
  std::string labels;                ///< "imagenet-1k" or "fashion-mnist"
  double published_top1 = 0;         ///< published ImageNet-1k top-1 (%), 0 when none
  std::string checkpoint;            ///< file name of the released checkpoint
  Preprocess preprocess;
};

/// Every registered variant (official releases and the embedded Fashion-MNIST defaults).
std::vector<ModelInfo> list_models();
/// The variant called `name` (official name or alias, case-insensitive); an Error otherwise.
ModelInfo find_model(const std::string& name);

struct Prediction {
  int class_index = 0;
  std::string label;
  float probability = 0;
};

struct ModelOptions {
  Device device = Device::cpu();
  DType dtype = DType::f32;  ///< compute dtype: f32 everywhere; bf16/f16 on CUDA
  bool use_ema = false;      ///< load the EMA weights of a training checkpoint
};

class Model {
 public:
  /// A registered model with its checkpoint (official .pth/.pth.tar, HF or converted
  /// safetensors). Loading is strict: every missing, unexpected or mis-shaped tensor is reported.
  static Model load(const std::string& name, const std::filesystem::path& weights, const ModelOptions& options = {});
  /// A model from an official constructor description ({"family": ..., "official": {"args": ...}},
  /// the oracle config.json format) and a checkpoint.
  static Model from_config(const std::filesystem::path& config_json, const std::filesystem::path& weights,
                           const ModelOptions& options = {});
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  const ModelInfo& info() const;
  Context& context();

  /// The model's evaluation transform: any image (gray/RGB/RGBA, 8/16-bit) -> f32 (3, H, W) CPU.
  Tensor preprocess(const Image& image) const;
  /// (batch, 3, H, W) f32 on any device -> logits (batch, num_classes) f32 on the CPU.
  Tensor logits(const Tensor& images);
  /// Top-k predictions with softmax probabilities.
  std::vector<Prediction> classify(const Image& image, int topk = 5);
  std::vector<std::vector<Prediction>> classify(const std::vector<Image>& images, int topk = 5);
  /// Per-stage feature maps (batch, C_i, H_i, W_i) f32 on the model's device.
  std::vector<Tensor> features(const Tensor& images);

  struct Impl;  ///< opaque
  explicit Model(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

/// Top-k (index, probability) of softmax(logits row) — shared by classify and eval.
std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels);
/// Class names of a label set ("imagenet-1k", "fashion-mnist").
const std::vector<std::string>& class_labels(const std::string& label_set);

}  // namespace mcv::vision
