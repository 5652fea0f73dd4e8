// patch_merge: validation, the CPU path, and routing by device.

#include "mcv/kernels/patch_merge.h"

#include <cstring>
#include <string>

#include "common/op_checks.h"
#include "mcv/thread_pool.h"
#include "patch_merge/patch_merge_params.h"

namespace mcv::kernels {

namespace {

using op_checks::Checker;
using patch_merge_detail::PatchMergeParams;

void patch_merge_cpu(Context& ctx, const PatchMergeParams& p) {
  const std::int64_t es = p.element_size;
  const std::int64_t row_bytes = p.channels * es;
  const std::int64_t rows = p.batch * p.out_height;
  // One output row (OW * 4C elements) per task unit; the copies are C elements long.
  ctx.threads().parallel_for(rows, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t b = r / p.out_height, i = r % p.out_height;
      char* out = static_cast<char*>(p.out) + r * p.out_width * 4 * row_bytes;
      for (std::int64_t j = 0; j < p.out_width; ++j) {
        for (int q = 0; q < 4; ++q, out += row_bytes) {
          const std::int64_t h = 2 * i + (q & 1), w = 2 * j + (q >> 1);
          if (h >= p.height || w >= p.width) {
            std::memset(out, 0, static_cast<std::size_t>(row_bytes));
            continue;
          }
          const char* src = static_cast<const char*>(p.x) + (b * p.x_sb + h * p.x_sh + w * p.x_sw) * es;
          std::memcpy(out, src, static_cast<std::size_t>(row_bytes));
        }
      }
    }
  });
}

}  // namespace

void patch_merge(Context& ctx, const PatchMergeArgs& a) {
  const Checker c("patch_merge", ctx);
  c.present("x", a.x);
  c.dims("x", a.x, 4, "(B, H, W, C)");
  c.io_dtype("x", a.x);
  c.unit_inner_stride("x", a.x);
  const std::int64_t batch = a.x.size(0), height = a.x.size(1), width = a.x.size(2), channels = a.x.size(3);
  const Shape want{batch, (height + 1) / 2, (width + 1) / 2, 4 * channels};
  c.present("out", a.out);
  c.shape("out", a.out, want);
  c.dtype("out", a.out, a.x.dtype());
  c.contiguous("out", a.out);
  c.no_overlap("out", a.out, "x", a.x);

  PatchMergeParams p;
  p.batch = batch;
  p.height = height;
  p.width = width;
  p.channels = channels;
  p.out_height = want[1];
  p.out_width = want[2];
  p.element_size = static_cast<int>(a.x.element_size());
  p.x = a.x.raw_data();
  p.x_sb = a.x.stride(0);
  p.x_sh = a.x.stride(1);
  p.x_sw = a.x.stride(2);
  p.out = a.out.raw_data();
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    patch_merge_detail::patch_merge_cuda(ctx, p);
#else
    c.no_cuda();
#endif
  } else {
    patch_merge_cpu(ctx, p);
  }
}

}  // namespace mcv::kernels
