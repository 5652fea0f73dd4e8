#pragma once
// Plain description of one patch_merge call, shared by the CPU and CUDA paths. Strides are in
// elements; pointers include the tensors' offsets.

#include <cstdint>

namespace mcv {
class Context;
}

namespace mcv::kernels::patch_merge_detail {

struct PatchMergeParams {
  std::int64_t batch = 0, height = 0, width = 0, channels = 0;
  std::int64_t out_height = 0, out_width = 0;
  int element_size = 4;  // bytes: the op copies raw elements
  const void* x = nullptr;
  std::int64_t x_sb = 0, x_sh = 0, x_sw = 0;  // channel stride is 1
  void* out = nullptr;                          // contiguous (B, OH, OW, 4C)
};

#ifdef MCV_HAVE_CUDA
void patch_merge_cuda(Context& ctx, const PatchMergeParams& p);
#endif

}  // namespace mcv::kernels::patch_merge_detail
