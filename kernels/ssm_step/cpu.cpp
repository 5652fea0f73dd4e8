// CPU single-step state update: rows (b, h, p) in parallel, each a short loop over N. The work
// is one pass over the state (N multiply-adds per row), so it is bound by reading and writing
// the state, not by arithmetic.

#include <algorithm>
#include <cmath>

#include "common/cpu_dtype.h"
#include "common/cpu_math.h"
#include "mcv/context.h"
#include "mcv/thread_pool.h"
#include "ssm_step/ssm_step_params.h"

namespace mcv::kernels::ssm_step_detail {

namespace {

template <typename T>
void run(Context& ctx, const StepParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* dt_in = static_cast<const T*>(p.dt);
  const T* B = static_cast<const T*>(p.B);
  const T* C = static_cast<const T*>(p.C);
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  const std::int64_t rows = p.batch * p.heads * p.headdim;
  const std::int64_t heads_per_group = p.heads / p.ngroups;
  const std::int64_t grain = std::max<std::int64_t>(1, 4096 / p.dstate);
  ctx.threads().parallel_for(rows, grain, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t pp = r % p.headdim, h = r / p.headdim % p.heads, b = r / (p.headdim * p.heads);
      const std::int64_t g = h / heads_per_group;
      float dt = cpu::to_f32(dt_in[b * p.dt_b + h * p.dt_h + pp * p.dt_p]);
      if (p.dt_bias) dt += p.dt_bias[h * p.db_h];
      if (p.softplus) dt = cpu::softplus(dt);
      if (p.clamp) dt = std::min(std::max(dt, p.dt_min), p.dt_max);
      const float xv = cpu::to_f32(x[b * p.x_b + h * p.x_h + pp * p.x_p]);
      const float dtx = dt * xv;
      float* s = p.state + b * p.st_b + h * p.st_h + pp * p.st_p;
      const float* a = p.A + h * p.A_h + pp * p.A_p;
      const T* bb = B + b * p.B_b + g * p.B_g;
      const T* cc = C + b * p.C_b + g * p.C_g;
      float y = 0.0f;
      for (std::int64_t n = 0; n < p.dstate; ++n) {
        float& sn = s[n * p.st_n];
        sn = sn * std::exp(dt * a[n * p.A_n]) + dtx * cpu::to_f32(bb[n * p.B_n]);
        y += sn * cpu::to_f32(cc[n * p.C_n]);
      }
      if (p.D) y += xv * p.D[h * p.D_h + pp * p.D_p];
      if (p.z) y *= cpu::silu(cpu::to_f32(z[b * p.z_b + h * p.z_h + pp * p.z_p]));
      out[b * p.o_b + h * p.o_h + pp * p.o_p] = cpu::from_f32<T>(y);
    }
  });
}

}  // namespace

void state_update_cpu(Context& ctx, const StepParams& p) {
  cpu::dispatch_io(p.io, [&](auto tag) { run<decltype(tag)>(ctx, p); });
}

}  // namespace mcv::kernels::ssm_step_detail
