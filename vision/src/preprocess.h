#pragma once
// The timm/torchvision evaluation transform, reproduced to the pixel: PIL's resample (separable,
// antialiased, 8-bit fixed point, horizontal pass first), torchvision's Resize/CenterCrop size
// arithmetic, ToTensor and Normalize.

#include "mcv/image.h"
#include "mcv/tensor.h"
#include "mcv/vision.h"

namespace mcv::vision {

/// PIL `Image.resize((width, height), filter)` of an 8-bit image (any channel count);
/// filter "bicubic" (a = -0.5), "bilinear" or "nearest".
Image pil_resize(const Image& image, int width, int height, const std::string& filter);

/// The whole evaluation transform -> f32 (3, input_height, input_width) CPU tensor.
Tensor preprocess_image(const Image& image, const Preprocess& p);

}  // namespace mcv::vision
