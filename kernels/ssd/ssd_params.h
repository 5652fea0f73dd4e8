#pragma once
// Plain description of one SSD scan call, shared by the CPU and CUDA paths. Strides are in
// elements; the innermost dimension of x, B, C, z and out (P or N) has stride 1.

#include <cstdint>

#include "mcv/dtype.h"

namespace mcv {
class Context;
}

namespace mcv::kernels::ssd_detail {

struct SsdParams {
  DType io = DType::f32;
  std::int64_t batch = 0, len = 0, heads = 0, headdim = 0, dstate = 0, ngroups = 1;
  int chunk = 256;

  const void* x = nullptr;
  std::int64_t x_b = 0, x_t = 0, x_h = 0;
  const void* dt = nullptr;
  std::int64_t dt_b = 0, dt_t = 0, dt_h = 0;
  const float* A = nullptr;
  std::int64_t A_h = 0;
  const void* B = nullptr;
  std::int64_t B_b = 0, B_t = 0, B_g = 0;
  const void* C = nullptr;
  std::int64_t C_b = 0, C_t = 0, C_g = 0;
  const float* D = nullptr;  // null: no skip term
  std::int64_t D_h = 0, D_p = 0;
  const void* z = nullptr;  // null: no gate
  std::int64_t z_b = 0, z_t = 0, z_h = 0;
  const float* dt_bias = nullptr;
  std::int64_t db_h = 0;
  bool softplus = false;
  bool clamp = false;
  float dt_min = 0.0f, dt_max = 0.0f;
  const float* initial_states = nullptr;  // contiguous (batch, H, P, N) or null
  float* final_states = nullptr;          // contiguous (batch, H, P, N) or null
  void* out = nullptr;
  std::int64_t o_b = 0, o_t = 0, o_h = 0;
};

void ssd_cpu(Context& ctx, const SsdParams& p);
#ifdef MCV_HAVE_CUDA
void ssd_cuda(Context& ctx, const SsdParams& p);
#endif

}  // namespace mcv::kernels::ssd_detail
