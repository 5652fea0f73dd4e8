// CUDA multi-head attention for window blocks: one fused kernel, one warp per query row.
//
// The warp stages its scaled query row and its Tk scores in shared memory. Scores: each lane
// owns keys j = lane, lane + 32, ... and walks the key row (L1-cached; windows are 49 to 196
// tokens of 32-64 dims, so K and V of a (batch, head) stay resident while its queries run).
// Softmax with warp reductions. Output: each lane owns output dims and sums p_j v[j, d] over j
// with coalesced V-row reads. Strides are arbitrary, so q/k/v are read straight out of the qkv
// projection and the output lands in the (B, T, heads, D) layout the proj linear wants.

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr int kWarps = 4;

template <typename T>
__global__ void attention_kernel(AttentionParams p) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const std::int64_t bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.y) * kWarps + warp;
  if (i >= p.tq) return;  // whole warp; the kernel uses no block-level barrier
  float* s = smem + warp * (p.tk + p.d);
  float* qs = s + p.tk;
  const T* q = static_cast<const T*>(p.q) + b * p.qs[0] + h * p.qs[1] + i * p.qs[2];
  for (std::int64_t d = lane; d < p.d; d += 32) qs[d] = cu::to_float(q[d * p.qs[3]]) * p.scale;
  __syncwarp();
  const T* kb = static_cast<const T*>(p.k) + b * p.ks[0] + h * p.ks[1];
  float mx = -INFINITY;
  for (std::int64_t j = lane; j < p.tk; j += 32) {
    const T* kr = kb + j * p.ks[2];
    float dot = 0.0f;
    for (std::int64_t d = 0; d < p.d; ++d) dot += qs[d] * cu::to_float(kr[d * p.ks[3]]);
    s[j] = dot;
    mx = fmaxf(mx, dot);
  }
  mx = cu::warp_max(mx);
  float sum = 0.0f;
  for (std::int64_t j = lane; j < p.tk; j += 32) {
    const float e = expf(s[j] - mx);
    s[j] = e;
    sum += e;
  }
  sum = cu::warp_sum(sum);
  __syncwarp();  // every lane's exp(s) visible to the whole warp
  const T* vb = static_cast<const T*>(p.v) + b * p.vs[0] + h * p.vs[1];
  T* o = static_cast<T*>(p.out) + b * p.os[0] + h * p.os[1] + i * p.os[2];
  for (std::int64_t d = lane; d < p.dv; d += 32) {
    float acc = 0.0f;
    for (std::int64_t j = 0; j < p.tk; ++j) acc += s[j] * cu::to_float(vb[j * p.vs[2] + d * p.vs[3]]);
    o[d * p.os[3]] = cu::from_float<T>(acc / sum);
  }
}

}  // namespace

void cuda_attention(Context& ctx, const AttentionParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  const std::size_t smem = static_cast<std::size_t>(kWarps) * static_cast<std::size_t>(p.tk + p.d) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(p.batch * p.heads), static_cast<unsigned>((p.tq + kWarps - 1) / kWarps));
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    attention_kernel<T><<<grid, kWarps * 32, smem, ctx.cuda().stream>>>(p);
    cuda_check_launch("attention_kernel");
  });
}

}  // namespace mcv::kernels::nn_detail
