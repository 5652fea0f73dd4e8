// mcv classify --model NAME --weights FILE IMAGE... : top-k predictions per image. An unreadable
// image is reported and skipped (exit 1 at the end); the others are still classified.

#include <cstdio>

#include "command.h"
#include "mcv/error.h"
#include "mcv/vision.h"

namespace mcv::cli::cmd_classify {
namespace {

struct ClassifyOptions {
  std::string model, weights, device = "cpu", dtype = "f32";
  int topk = 5;
  std::vector<std::string> images;
};

int run_classify(const ClassifyOptions& o) {
  vision::ModelOptions options;
  options.device = parse_device(o.device);
  options.dtype = parse_dtype(o.dtype);
  if (o.topk < 1) throw Error("--topk " + std::to_string(o.topk), "must be at least 1");
  vision::Model model = vision::Model::load(o.model, o.weights, options);
  int failed = 0;
  for (const auto& path : o.images) {
    Image image;
    try {
      image = load_image(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "mcv: %s\n", e.what());
      ++failed;
      continue;
    }
    std::printf("%s\n", path.c_str());
    for (const auto& p : model.classify(image, o.topk))
      std::printf("  %6.2f%%  %4d  %s\n", 100.0 * p.probability, p.class_index, p.label.c_str());
  }
  return failed ? kExitCheckFailed : kExitOk;
}

const McvCommand kCommand("classify", "Classify images with a registered model", [](CLI::App& app) {
  auto o = std::make_shared<ClassifyOptions>();
  app.add_option("--model", o->model, "Model name or alias (see mcv models)")->required();
  app.add_option("--weights", o->weights, "Checkpoint (.pth, .pth.tar, .safetensors)")->required();
  app.add_option("--device", o->device, "cpu, cuda or cuda:N");
  app.add_option("--dtype", o->dtype, "f32, bf16 or f16 (reduced precision on CUDA)");
  app.add_option("--topk", o->topk, "Predictions per image");
  app.add_option("images", o->images, "Image files")->required();
  return [o] { return run_classify(*o); };
});

}  // namespace
}  // namespace mcv::cli::cmd_classify
