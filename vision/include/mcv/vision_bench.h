#pragma once
/// \file
/// Model throughput and latency benchmark (`mcv bench model NAME`): a registered architecture with
/// random weights, random input, the forward pass timed on the device.

#include <cstddef>
#include <string>

#include "mcv/device.h"
#include "mcv/dtype.h"

namespace mcv::vision {

struct ModelBenchOptions {
  Device device = Device::cpu();
  DType dtype = DType::f32;
  int batch = 128;
  int height = 0, width = 0;  ///< 0: the model's registered input size
  int runs = 50;              ///< timed runs (median); warm-up runs come first
  int warmup = 5;
  /// CUDA: capture the forward pass once as a CUDA graph and time its replays (no host launch
  /// overhead; activations from one pre-sized arena, nothing allocated per pass).
  bool cuda_graph = true;
};

struct ModelBenchResult {
  std::string model, device, dtype;
  int batch = 0, height = 0, width = 0;
  double median_ms = 0, min_ms = 0;
  double images_per_second = 0;
  std::size_t peak_memory_bytes = 0;  ///< CUDA: peak device memory of the caching allocator in the timed passes (weights, input and the sized arena included)
  bool cuda_graph = false;
  bool finite = true;                 ///< the logits were all finite
};

ModelBenchResult bench_model(const std::string& name, const ModelBenchOptions& options);

}  // namespace mcv::vision
