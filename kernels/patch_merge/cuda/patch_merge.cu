// CUDA patch_merge: one thread per output element, consecutive threads along the channel axis so
// both the gathered loads and the stores coalesce. Pure data movement: elements are copied as
// raw 2- or 4-byte words, so every dtype is exact.

#include <cstdint>

#include "common/cuda_dtype.cuh"
#include "mcv/cuda/context.cuh"
#include "patch_merge/patch_merge_params.h"

namespace mcv::kernels::patch_merge_detail {

namespace {

constexpr int kThreads = 256;

template <typename Word>
__global__ void patch_merge_kernel(PatchMergeParams p) {
  const Word* x = static_cast<const Word*>(p.x);
  Word* out = static_cast<Word*>(p.out);
  const std::int64_t c4 = 4 * p.channels;
  const std::int64_t total = p.batch * p.out_height * p.out_width * c4;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t qc = idx % c4;
    const std::int64_t pos = idx / c4;
    const std::int64_t j = pos % p.out_width;
    const std::int64_t i = pos / p.out_width % p.out_height;
    const std::int64_t b = pos / (p.out_width * p.out_height);
    const int q = static_cast<int>(qc / p.channels);
    const std::int64_t c = qc % p.channels;
    const std::int64_t h = 2 * i + (q & 1), w = 2 * j + (q >> 1);
    out[idx] = (h < p.height && w < p.width) ? x[b * p.x_sb + h * p.x_sh + w * p.x_sw + c] : Word(0);
  }
}

}  // namespace

void patch_merge_cuda(Context& ctx, const PatchMergeParams& p) {
  Context::Cuda& cu = ctx.cuda();
  CudaDeviceGuard guard(cu.device);
  const std::int64_t total = p.batch * p.out_height * p.out_width * 4 * p.channels;
  const unsigned grid = cuda::grid_for(total, kThreads);
  if (p.element_size == 4)
    patch_merge_kernel<std::uint32_t><<<grid, kThreads, 0, cu.stream>>>(p);
  else
    patch_merge_kernel<std::uint16_t><<<grid, kThreads, 0, cu.stream>>>(p);
  cuda_check_launch("patch_merge_kernel");
}

}  // namespace mcv::kernels::patch_merge_detail
