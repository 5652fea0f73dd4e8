#pragma once
// Plain description of one single-step state update, shared by the CPU and CUDA paths. Mamba-1
// is the headdim-1 case of Mamba-2 with A indexed per (channel, n): one row = one (b, h, p) with
// its N state entries. Strides are in elements (0 for broadcast axes).

#include <cstdint>

#include "mcv/dtype.h"

namespace mcv {
class Context;
}

namespace mcv::kernels::ssm_step_detail {

struct StepParams {
  DType io = DType::f32;
  std::int64_t batch = 0, heads = 0, headdim = 0, dstate = 0, ngroups = 1;

  float* state = nullptr;
  std::int64_t st_b = 0, st_h = 0, st_p = 0, st_n = 0;
  const void* x = nullptr;
  std::int64_t x_b = 0, x_h = 0, x_p = 0;
  const void* dt = nullptr;
  std::int64_t dt_b = 0, dt_h = 0, dt_p = 0;
  const float* A = nullptr;
  std::int64_t A_h = 0, A_p = 0, A_n = 0;
  const void* B = nullptr;
  std::int64_t B_b = 0, B_g = 0, B_n = 0;
  const void* C = nullptr;
  std::int64_t C_b = 0, C_g = 0, C_n = 0;
  const float* D = nullptr;  // null: no skip term
  std::int64_t D_h = 0, D_p = 0;
  const void* z = nullptr;  // null: no gate
  std::int64_t z_b = 0, z_h = 0, z_p = 0;
  const float* dt_bias = nullptr;  // null: no bias
  std::int64_t db_h = 0;
  bool softplus = false;
  bool clamp = false;
  float dt_min = 0.0f, dt_max = 0.0f;
  void* out = nullptr;
  std::int64_t o_b = 0, o_h = 0, o_p = 0;
};

void state_update_cpu(Context& ctx, const StepParams& p);
#ifdef MCV_HAVE_CUDA
void state_update_cuda(Context& ctx, const StepParams& p);
#endif

}  // namespace mcv::kernels::ssm_step_detail
