// embed_tokens / max_tokens entry points: validate everything, describe the call as plain params,
// route by device.

#include "mcv/kernels/token_ops.h"

#include <string>

#include "common/op_checks.h"
#include "token_ops/token_ops_params.h"

namespace mcv::kernels {

namespace {

using op_checks::Checker;
using token_ops_detail::EmbedParams;
using token_ops_detail::MaxParams;

}  // namespace

void embed_tokens(Context& ctx, const EmbedTokensArgs& a) {
  const Checker c("embed_tokens", ctx);
  c.present("patches", a.patches);
  c.dims("patches", a.patches, 3, "(batch, M, C)");
  c.io_dtype("patches", a.patches);
  c.unit_inner_stride("patches", a.patches);
  const DType io = a.patches.dtype();
  const std::int64_t batch = a.patches.size(0), m = a.patches.size(1), ch = a.patches.size(2);
  const auto inserted = static_cast<std::int64_t>(a.positions.size());
  if (inserted > kEmbedTokensMaxInserted)
    c.fail("positions", std::to_string(inserted) + " inserted tokens; at most " +
                            std::to_string(kEmbedTokensMaxInserted) + " are supported");
  const std::int64_t len = m + inserted;
  for (std::int64_t j = 0; j < inserted; ++j) {
    const std::int64_t p = a.positions[j];
    if (p < 0 || p >= len)
      c.fail("positions", "position " + std::to_string(p) + " is outside the sequence [0, " + std::to_string(len) + ")");
    if (j > 0 && p <= a.positions[j - 1]) c.fail("positions", "must be strictly increasing");
  }
  if (inserted > 0) {
    c.present("tokens", a.tokens);
    c.shape("tokens", a.tokens, {inserted, ch});
    c.dtype_f32_or("tokens", a.tokens, io);
    c.unit_inner_stride("tokens", a.tokens);
  } else if (a.tokens.defined()) {
    c.fail("tokens", "given but no insert positions");
  }
  if (a.pos.defined()) {
    c.present("pos", a.pos);
    c.shape("pos", a.pos, {len, ch});
    c.dtype_f32_or("pos", a.pos, io);
    c.unit_inner_stride("pos", a.pos);
  }
  c.present("out", a.out);
  c.shape("out", a.out, {batch, len, ch});
  c.dtype("out", a.out, io);
  c.unit_inner_stride("out", a.out);
  c.no_overlap("out", a.out, "patches", a.patches);
  c.no_overlap("out", a.out, "tokens", a.tokens);
  c.no_overlap("out", a.out, "pos", a.pos);

  EmbedParams p;
  p.io = io;
  p.batch = batch;
  p.patches = m;
  p.len = len;
  p.channels = ch;
  p.inserted = static_cast<int>(inserted);
  for (std::int64_t j = 0; j < inserted; ++j) p.positions[j] = a.positions[j];
  p.x = a.patches.raw_data();
  p.x_sb = a.patches.stride(0);
  p.x_st = a.patches.stride(1);
  if (inserted > 0) {
    p.tok = a.tokens.raw_data();
    p.tok_f32 = a.tokens.dtype() == DType::f32;
    p.tok_sr = a.tokens.stride(0);
  }
  if (a.pos.defined()) {
    p.pos = a.pos.raw_data();
    p.pos_f32 = a.pos.dtype() == DType::f32;
    p.pos_sr = a.pos.stride(0);
  }
  p.out = a.out.raw_data();
  p.o_sb = a.out.stride(0);
  p.o_st = a.out.stride(1);
  if (ctx.device().is_cpu()) {
    token_ops_detail::embed_tokens_cpu(ctx, p);
    return;
  }
#ifdef MCV_HAVE_CUDA
  token_ops_detail::embed_tokens_cuda(ctx, p);
#else
  c.no_cuda();
#endif
}

void max_tokens(Context& ctx, const Tensor& x, const Tensor& out) {
  const Checker c("max_tokens", ctx);
  c.present("x", x);
  c.dims("x", x, 3, "(batch, L, C)");
  c.io_dtype("x", x);
  c.unit_inner_stride("x", x);
  c.present("out", out);
  c.shape("out", out, {x.size(0), x.size(2)});
  c.dtype("out", out, x.dtype());
  c.unit_inner_stride("out", out);
  c.no_overlap("out", out, "x", x);

  MaxParams p;
  p.io = x.dtype();
  p.batch = x.size(0);
  p.len = x.size(1);
  p.channels = x.size(2);
  p.x = x.raw_data();
  p.x_sb = x.stride(0);
  p.x_st = x.stride(1);
  p.out = out.raw_data();
  p.o_sb = out.stride(0);
  if (ctx.device().is_cpu()) {
    token_ops_detail::max_tokens_cpu(ctx, p);
    return;
  }
#ifdef MCV_HAVE_CUDA
  token_ops_detail::max_tokens_cuda(ctx, p);
#else
  c.no_cuda();
#endif
}

}  // namespace mcv::kernels
