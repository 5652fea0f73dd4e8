// The public vision API (mcv/vision.h) over the internal families.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "labels_data.h"
#include "mcv/error.h"
#include "mcv/file.h"
#include "mcv/vision.h"
#include "model.h"
#include "preprocess.h"

namespace mcv::vision {

const std::vector<std::string>& class_labels(const std::string& label_set) {
  if (label_set == "imagenet-1k") return kImageNet1kLabels;
  if (label_set == "fashion-mnist") return kFashionMnistLabels;
  static const std::vector<std::string> none;
  return none;
}

std::vector<ModelInfo> list_models() {
  std::vector<ModelInfo> out;
  for (const std::string& name : family_names()) {
    const Family& family = find_family(name);
    for (const ModelSpec& spec : family.variants) {
      ModelInfo info = spec.info;
      info.parameters = count_parameters(*family.build(spec.args));
      out.push_back(info);
    }
  }
  return out;
}

ModelInfo find_model(const std::string& name) {
  const ModelSpec& spec = find_spec(name);
  ModelInfo info = spec.info;
  info.parameters = count_parameters(*find_family(info.family).build(spec.args));
  return info;
}

std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels) {
  const float max_logit = *std::max_element(logits, logits + num_classes);
  double sum = 0;
  for (int i = 0; i < num_classes; ++i) sum += std::exp(double(logits[i]) - max_logit);
  std::vector<int> order(num_classes);
  std::iota(order.begin(), order.end(), 0);
  k = std::clamp(k, 1, num_classes);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<Prediction> out;
  for (int i = 0; i < k; ++i) {
    const int c = order[i];
    out.push_back({c, c < static_cast<int>(labels.size()) ? labels[c] : "class " + std::to_string(c),
                   static_cast<float>(std::exp(double(logits[c]) - max_logit) / sum)});
  }
  return out;
}

struct Model::Impl {
  ModelInfo info;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<VisionModel> net;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

namespace {
void check_options(const ModelOptions& options) {
  if (options.dtype != DType::f32 && options.device.is_cpu())
    throw Error(std::string("dtype ") + dtype_name(options.dtype), "reduced precision runs on CUDA only; use f32 on the CPU");
  if (options.dtype != DType::f32 && options.dtype != DType::bf16 && options.dtype != DType::f16)
    throw Error(std::string("dtype ") + dtype_name(options.dtype), "must be f32, bf16 or f16");
}

std::unique_ptr<Model::Impl> build_and_load(const Family& family, const Json& args, ModelInfo info,
                                            const std::filesystem::path& weights, const std::string& key_prefix,
                                            const ModelOptions& options) {
  check_options(options);
  auto impl = std::make_unique<Model::Impl>();
  impl->net = family.build(args);
  info.parameters = count_parameters(*impl->net);
  info.num_classes = impl->net->num_classes();
  impl->info = std::move(info);
  impl->ctx = std::make_unique<Context>(options.device);
  CheckpointOptions ckpt_options;
  ckpt_options.prefer_ema = options.use_ema;
  const Checkpoint checkpoint = Checkpoint::open(weights, ckpt_options);
  LoadOptions load;
  load.device = options.device;
  load.dtype = options.dtype;
  // A spec's prefix (e.g. "model." of Hugging Face files) is stripped only when every tensor name
  // carries it, so the official checkpoint without it loads through the same spec.
  bool all_prefixed = !key_prefix.empty() && !checkpoint.tensors().empty();
  for (const auto& entry : checkpoint.tensors()) all_prefixed = all_prefixed && entry.first.rfind(key_prefix, 0) == 0;
  load.key_prefix = all_prefixed ? key_prefix : "";
  load.rename = family.rename_key;
  load_state_dict(*impl->net, checkpoint, *impl->ctx, load);
  return impl;
}
}  // namespace

Model Model::load(const std::string& name, const std::filesystem::path& weights, const ModelOptions& options) {
  const ModelSpec& spec = find_spec(name);
  return Model(build_and_load(find_family(spec.info.family), spec.args, spec.info, weights, spec.key_prefix, options));
}

Model Model::from_config(const std::filesystem::path& config_json, const std::filesystem::path& weights,
                         const ModelOptions& options) {
  Json config;
  try {
    config = Json::parse(read_file_bytes(config_json, 16u << 20));
  } catch (const Json::exception& e) {
    throw Error(config_json.string(), std::string("invalid JSON: ") + e.what());
  }
  if (!config.contains("family") || !config["family"].is_string())
    throw Error(config_json.string(), "no \"family\" string");
  const Family& family = find_family(config["family"].get<std::string>());
  const Json args = config.contains("official") ? config["official"].value("args", Json::object()) : config.value("args", Json::object());
  ModelInfo info;
  info.name = config.value("name", config_json.parent_path().filename().string());
  info.family = family.name;
  info.labels = "imagenet-1k";
  return Model(build_and_load(family, args, info, weights, "", options));
}

const ModelInfo& Model::info() const { return impl_->info; }
Context& Model::context() { return *impl_->ctx; }

Tensor Model::preprocess(const Image& image) const { return preprocess_image(image, impl_->info.preprocess); }

Tensor Model::logits(const Tensor& images) {
  MCV_CHECK(images.dim() == 4 && images.size(1) == 3, "images: expected (batch, 3, H, W), got ", shape_str(images.shape()));
  impl_->net->check_input(images.shape());
  Context& ctx = *impl_->ctx;
  ContextScope scope(ctx);
  const Tensor input = images.device() == ctx.device() ? images.to(DType::f32) : images.to(ctx.device()).to(DType::f32);
  Tensor out = impl_->net->forward(ctx, input);
  Tensor host = out.to(Device::cpu()).to(DType::f32);
  ctx.synchronize();
  return host;
}

std::vector<std::vector<Prediction>> Model::classify(const std::vector<Image>& images, int topk) {
  MCV_CHECK(!images.empty(), "classify: no images");
  const Preprocess& p = impl_->info.preprocess;
  Tensor batch = Tensor::empty({static_cast<std::int64_t>(images.size()), 3, p.input_height, p.input_width}, DType::f32);
  for (std::size_t i = 0; i < images.size(); ++i) batch.select(0, static_cast<std::int64_t>(i)).copy_from(preprocess(images[i]));
  const Tensor l = logits(batch);
  const auto& labels = class_labels(impl_->info.labels);
  std::vector<std::vector<Prediction>> out;
  const int classes = static_cast<int>(l.size(1));
  for (std::size_t i = 0; i < images.size(); ++i) out.push_back(top_k(l.data<float>() + i * classes, classes, topk, labels));
  return out;
}

std::vector<Prediction> Model::classify(const Image& image, int topk) { return classify(std::vector<Image>{image}, topk)[0]; }

std::vector<Tensor> Model::features(const Tensor& images) {
  MCV_CHECK(images.dim() == 4 && images.size(1) == 3, "images: expected (batch, 3, H, W), got ", shape_str(images.shape()));
  impl_->net->check_input(images.shape());
  Context& ctx = *impl_->ctx;
  ContextScope scope(ctx);
  const Tensor input = images.to(ctx.device()).to(DType::f32);
  return impl_->net->forward_features(ctx, input);
}

}  // namespace mcv::vision
