// Classifies images with a registered model and prints the top-5 of each, then the shapes of
// the per-stage feature maps of the first image.
//   classify MODEL WEIGHTS DEVICE IMAGE...    e.g. classify fmnist-vmamba fmnist_vmamba.safetensors cpu shoe.png
#include <cstdio>
#include <exception>
#include <vector>

#include <mcv/vision.h>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL WEIGHTS DEVICE IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    mcv::vision::ModelOptions options;
    options.device = mcv::parse_device(argv[3]);  // "cpu", "cuda", "cuda:1"
    auto model = mcv::vision::Model::load(argv[1], argv[2], options);

    std::vector<mcv::Image> images;
    for (int i = 4; i < argc; ++i) images.push_back(mcv::load_image(argv[i]));
    const auto results = model.classify(images, 5);  // one batch
    for (std::size_t i = 0; i < images.size(); ++i) {
      std::printf("%s\n", argv[4 + i]);
      for (const auto& p : results[i]) std::printf("  %6.2f%%  %s\n", 100.0 * p.probability, p.label.c_str());
    }

    const mcv::Tensor first = model.preprocess(images[0]);  // (3, H, W)
    const auto stages = model.features(first.view({1, first.size(0), first.size(1), first.size(2)}));
    for (std::size_t s = 0; s < stages.size(); ++s)
      std::printf("stage %zu: %s\n", s, mcv::shape_str(stages[s].shape()).c_str());
  } catch (const std::exception& e) {  // mcv::Error: "<subject>: <problem>"
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
