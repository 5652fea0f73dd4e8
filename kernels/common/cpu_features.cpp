#include "mcv/kernels/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace mcv::kernels {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512f = f.avx2 && __builtin_cpu_supports("avx512f");
#endif
    if (const char* cap = std::getenv("MCV_CPU_ISA")) {
      if (std::strcmp(cap, "scalar") == 0) f = CpuFeatures{};
      if (std::strcmp(cap, "avx2") == 0) f.avx512f = false;
    }
    return f;
  }();
  return features;
}

std::string cpu_isa_name() {
  const auto& f = cpu_features();
  return f.avx512f ? "avx512" : f.avx2 ? "avx2" : "scalar";
}

}  // namespace mcv::kernels
