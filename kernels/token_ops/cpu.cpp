// CPU token ops: one task per output row (embed) or per batch row (max) on the context's pool.
// Both are pure data movement plus one add or compare per element, so a plain loop that the
// compiler vectorises for f32 is all they need.

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/context.h"
#include "mcv/thread_pool.h"
#include "token_ops/token_ops_params.h"

namespace mcv::kernels::token_ops_detail {

using cpu::load_element;
using cpu::store_element;

void embed_tokens_cpu(Context& ctx, const EmbedParams& p) {
  const std::int64_t rows = p.batch * p.len;
  const std::int64_t grain = std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(p.channels, 1));
  ctx.threads().parallel_for(rows, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t b = r / p.len, t = r % p.len;
      const std::int64_t src = embed_source(p, t);
      const void* from;
      DType from_t;
      std::int64_t from_off;
      if (src >= 0) {
        from = p.tok;
        from_t = p.tok_f32 ? DType::f32 : p.io;
        from_off = src * p.tok_sr;
      } else {
        from = p.x;
        from_t = p.io;
        from_off = b * p.x_sb + (-1 - src) * p.x_st;
      }
      const std::int64_t out_off = b * p.o_sb + t * p.o_st;
      const DType pos_t = p.pos_f32 ? DType::f32 : p.io;
      if (p.io == DType::f32 && from_t == DType::f32 && (!p.pos || pos_t == DType::f32)) {
        const float* s = static_cast<const float*>(from) + from_off;
        float* o = static_cast<float*>(p.out) + out_off;
        if (p.pos) {
          const float* q = static_cast<const float*>(p.pos) + t * p.pos_sr;
          for (std::int64_t c = 0; c < p.channels; ++c) o[c] = s[c] + q[c];
        } else {
          for (std::int64_t c = 0; c < p.channels; ++c) o[c] = s[c];
        }
        continue;
      }
      for (std::int64_t c = 0; c < p.channels; ++c) {
        float v = load_element(from, from_t, from_off + c);
        if (p.pos) v += load_element(p.pos, pos_t, t * p.pos_sr + c);
        store_element(p.out, p.io, out_off + c, v);
      }
    }
  });
}

void max_tokens_cpu(Context& ctx, const MaxParams& p) {
  ctx.threads().parallel_for(p.batch, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> acc(static_cast<std::size_t>(p.channels));
    for (std::int64_t b = begin; b < end; ++b) {
      for (std::int64_t t = 0; t < p.len; ++t) {
        const std::int64_t off = b * p.x_sb + t * p.x_st;
        for (std::int64_t c = 0; c < p.channels; ++c) {
          const float v = load_element(p.x, p.io, off + c);
          float& a = acc[static_cast<std::size_t>(c)];
          // NaN wins, as in torch.max; comparisons with NaN are false, so test it explicitly.
          if (t == 0 || std::isnan(v) || (!std::isnan(a) && v > a)) a = v;
        }
      }
      for (std::int64_t c = 0; c < p.channels; ++c) store_element(p.out, p.io, b * p.o_sb + c, acc[static_cast<std::size_t>(c)]);
    }
  });
}

}  // namespace mcv::kernels::token_ops_detail
