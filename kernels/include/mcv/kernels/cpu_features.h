#pragma once
/// \file
/// What vector instructions this CPU has, read once at run time (CPU kernels dispatch on it).

#include <string>

namespace mcv::kernels {

struct CpuFeatures {
  bool avx2 = false;     ///< AVX2 + FMA
  bool avx512f = false;  ///< AVX-512 Foundation
};

/// Detected once; MCV_CPU_ISA=scalar|avx2|avx512 caps it (for testing every path on one machine).
const CpuFeatures& cpu_features();
/// "avx512", "avx2" or "scalar": the widest path the CPU kernels will take.
std::string cpu_isa_name();

}  // namespace mcv::kernels
