#pragma once
// Plain description of one conv1d / conv1d_update call, shared by the CPU and CUDA paths (no
// CUDA types). Strides are in elements; pointers already include the tensors' offsets.

#include <cstdint>

#include "mcv/dtype.h"

namespace mcv {
class Context;
}

namespace mcv::kernels::conv1d_detail {

struct Conv1dParams {
  DType io = DType::f32;
  std::int64_t batch = 0, dim = 0, len = 0;
  int width = 0;
  // Every mode is out[t] = bias + sum_k w'[k] * x[t - left + k], with w' the weights read
  // backwards (flip) for the reverse conv: see conv1d.h.
  int left = 0;
  bool flip = false;
  bool silu = false;
  bool token_major = false;  // which of x/out's d or t stride is 1 (the other is free)

  const void* x = nullptr;
  std::int64_t x_sb = 0, x_sd = 0, x_st = 0;
  void* out = nullptr;
  std::int64_t o_sb = 0, o_sd = 0, o_st = 0;
  const void* w = nullptr;
  bool w_f32 = true;
  std::int64_t w_sd = 0, w_sk = 0;
  const void* bias = nullptr;  // null: no bias
  bool bias_f32 = true;
  std::int64_t bias_sd = 0;

  void* state = nullptr;  // null: no final state
  std::int64_t state_len = 0;
  std::int64_t s_sb = 0, s_sd = 0, s_ss = 0;
};

struct Conv1dUpdateParams {
  DType io = DType::f32;
  std::int64_t batch = 0, dim = 0, state_len = 0;
  int width = 0;
  bool silu = false;
  const void* x = nullptr;
  std::int64_t x_sb = 0, x_sd = 0;
  void* state = nullptr;
  std::int64_t s_sb = 0, s_sd = 0, s_ss = 0;
  const void* w = nullptr;
  bool w_f32 = true;
  std::int64_t w_sd = 0, w_sk = 0;
  const void* bias = nullptr;
  bool bias_f32 = true;
  std::int64_t bias_sd = 0;
  void* out = nullptr;
  std::int64_t o_sb = 0, o_sd = 0;
};

void conv1d_cpu(Context& ctx, const Conv1dParams& p);
void conv1d_update_cpu(Context& ctx, const Conv1dUpdateParams& p);
#ifdef MCV_HAVE_CUDA
void conv1d_cuda(Context& ctx, const Conv1dParams& p);
void conv1d_update_cuda(Context& ctx, const Conv1dUpdateParams& p);
#endif

}  // namespace mcv::kernels::conv1d_detail
