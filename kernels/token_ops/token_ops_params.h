#pragma once
// Plain descriptions of the token ops, shared by the CPU and CUDA paths (no CUDA types). Strides
// are in elements; pointers already include the tensors' offsets.

#include <cstdint>

#include "mcv/dtype.h"
#include "mcv/kernels/token_ops.h"

namespace mcv {
class Context;
}

// embed_source runs in both the CPU loop and the CUDA kernel.
#ifdef __CUDACC__
#define MCV_TOKEN_OPS_HD __host__ __device__
#else
#define MCV_TOKEN_OPS_HD
#endif

namespace mcv::kernels::token_ops_detail {

struct EmbedParams {
  DType io = DType::f32;
  std::int64_t batch = 0, patches = 0, len = 0, channels = 0;  // len = patches + inserted
  int inserted = 0;
  std::int64_t positions[kEmbedTokensMaxInserted] = {};

  const void* x = nullptr;  // patches
  std::int64_t x_sb = 0, x_st = 0;
  const void* tok = nullptr;
  bool tok_f32 = true;
  std::int64_t tok_sr = 0;
  const void* pos = nullptr;  // null: no position embedding
  bool pos_f32 = true;
  std::int64_t pos_sr = 0;
  void* out = nullptr;
  std::int64_t o_sb = 0, o_st = 0;
};

struct MaxParams {
  DType io = DType::f32;
  std::int64_t batch = 0, len = 0, channels = 0;
  const void* x = nullptr;
  std::int64_t x_sb = 0, x_st = 0;
  void* out = nullptr;
  std::int64_t o_sb = 0;
};

/// Output row t of the embedding: the inserted token index j (>= 0), or -1 - (patch row).
MCV_TOKEN_OPS_HD inline std::int64_t embed_source(const EmbedParams& p, std::int64_t t) {
  std::int64_t before = 0;
  for (int j = 0; j < p.inserted; ++j) {
    if (p.positions[j] == t) return j;
    if (p.positions[j] < t) ++before;
  }
  return -1 - (t - before);
}

void embed_tokens_cpu(Context& ctx, const EmbedParams& p);
void max_tokens_cpu(Context& ctx, const MaxParams& p);
#ifdef MCV_HAVE_CUDA
void embed_tokens_cuda(Context& ctx, const EmbedParams& p);
void max_tokens_cuda(Context& ctx, const MaxParams& p);
#endif

}  // namespace mcv::kernels::token_ops_detail
