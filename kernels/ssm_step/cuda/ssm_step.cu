// CUDA single-step state update. R lanes (a power of two <= 32, about N) share one (b, h, p) row:
// lane l handles n = l, l + R, ..., so state loads and stores coalesce, and the row's output is a
// shuffle reduction over the R lanes. Every lane of a warp reaches every shuffle (rows past the
// end only skip their loads and stores), as __shfl_xor_sync with a full mask requires.

#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "mcv/cuda/context.cuh"
#include "ssm_step/ssm_step_params.h"

namespace mcv::kernels::ssm_step_detail {

namespace {

constexpr int kThreads = 128;

template <typename T>
__global__ void state_update_kernel(StepParams p, int lanes) {
  const T* x = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  const T* B = static_cast<const T*>(p.B);
  const T* C = static_cast<const T*>(p.C);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  const int rows_per_block = blockDim.x / lanes;
  const int lane = threadIdx.x % lanes;
  const std::int64_t rows = p.batch * p.heads * p.headdim;
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * rows_per_block + threadIdx.x / lanes;
  const bool active = r < rows;

  float y = 0.0f, xv = 0.0f;
  std::int64_t b = 0, h = 0, pp = 0;
  if (active) {
    pp = r % p.headdim;
    h = r / p.headdim % p.heads;
    b = r / (p.headdim * p.heads);
    const std::int64_t g = h / (p.heads / p.ngroups);
    float dt = cuda::to_float(dt_in[b * p.dt_b + h * p.dt_h + pp * p.dt_p]);
    if (p.dt_bias) dt += p.dt_bias[h * p.db_h];
    if (p.softplus) dt = cuda::softplus(dt);
    if (p.clamp) dt = fminf(fmaxf(dt, p.dt_min), p.dt_max);
    xv = cuda::to_float(x[b * p.x_b + h * p.x_h + pp * p.x_p]);
    const float dtx = dt * xv;
    float* s = p.state + b * p.st_b + h * p.st_h + pp * p.st_p;
    const float* a = p.A + h * p.A_h + pp * p.A_p;
    const T* bb = B + b * p.B_b + g * p.B_g;
    const T* cc = C + b * p.C_b + g * p.C_g;
    for (std::int64_t n = lane; n < p.dstate; n += lanes) {
      const float sn = s[n * p.st_n] * expf(dt * a[n * p.A_n]) + dtx * cuda::to_float(bb[n * p.B_n]);
      s[n * p.st_n] = sn;
      y += sn * cuda::to_float(cc[n * p.C_n]);
    }
  }
  for (int offset = lanes / 2; offset > 0; offset /= 2) y += __shfl_xor_sync(0xffffffffu, y, offset, lanes);
  if (active && lane == 0) {
    if (p.D) y += xv * p.D[h * p.D_h + pp * p.D_p];
    if (p.z) y *= cuda::silu(cuda::to_float(z[b * p.z_b + h * p.z_h + pp * p.z_p]));
    out[b * p.o_b + h * p.o_h + pp * p.o_p] = cuda::from_float<T>(y);
  }
}

}  // namespace

void state_update_cuda(Context& ctx, const StepParams& p) {
  Context::Cuda& c = ctx.cuda();
  CudaDeviceGuard guard(c.device);
  int lanes = 1;
  while (lanes < 32 && lanes < p.dstate) lanes *= 2;
  const std::int64_t rows = p.batch * p.heads * p.headdim;
  const int rows_per_block = kThreads / lanes;
  const std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  if (blocks > 0x7fffffff) throw Error("ssm state update", "too many rows for one launch");
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    state_update_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, c.stream>>>(p, lanes);
    cuda_check_launch("state_update_kernel");
  });
}

}  // namespace mcv::kernels::ssm_step_detail
