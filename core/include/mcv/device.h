#pragma once
/// \file
/// Where a tensor lives, and whether this build/machine can run CUDA.

#include <string>
#include <string_view>

namespace mcv {

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device&) const = default;
  /// "cpu" or "cuda:0".
  std::string str() const;
};

/// Parses "cpu", "cuda", "cuda:1"; throws mcv::Error naming the text otherwise.
Device parse_device(std::string_view text);

/// True when the library was compiled with CUDA support.
bool cuda_compiled();
/// Number of usable CUDA devices (0 when not compiled, no driver or no GPU).
int cuda_device_count();

}  // namespace mcv
