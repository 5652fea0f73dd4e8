// Vision Mamba forward pass, token-major (B, L, D) throughout, following the official fused CUDA
// path of hustvl/Vim: PatchEmbed -> class token(s) inserted -> + pos_embed -> Blocks (fused
// add + RMSNorm, bidirectional Mamba "v2" mixer) -> final fused add + norm -> class token -> head.

#include <algorithm>
#include <cmath>
#include <string>

#include "mcv/kernels/conv1d.h"
#include "mcv/kernels/nn.h"
#include "mcv/kernels/selective_scan.h"
#include "mcv/kernels/token_ops.h"
#include "vim/vim.h"

namespace mcv::vision::vim {

namespace k = mcv::kernels;

namespace {

/// -exp(A_log) in f32 on A_log's device (the official `A = -torch.exp(self.A_log.float())`).
Tensor negative_exp(const Tensor& a_log) {
  Tensor host = a_log.to(Device::cpu());
  float* p = host.data<float>();
  for (std::int64_t i = 0, n = host.numel(); i < n; ++i) p[i] = -std::exp(p[i]);
  return a_log.device().is_cpu() ? host : host.to(a_log.device());
}

Tensor value_or_none(const Param* p) { return p ? p->value : Tensor(); }

}  // namespace

// ---- Modules ----------------------------------------------------------------------------------

Linear::Linear(std::int64_t in, std::int64_t out, bool has_bias) {
  weight = &param("weight", {out, in});
  // Biases stay f32: the ops take them so, and it costs nothing.
  if (has_bias) bias = &param("bias", {out}, ParamKind::f32);
}

Norm::Norm(std::int64_t dim, bool rms, double eps) : rms_(rms), eps_(static_cast<float>(eps)) {
  weight = &param("weight", {dim}, ParamKind::f32);
  // mamba_ssm's RMSNorm registers bias = None, so only LayerNorm has one in the state dict.
  if (!rms) bias = &param("bias", {dim}, ParamKind::f32);
}

void Norm::run(Context& ctx, const Tensor& x, const Tensor& residual, const Tensor& out,
               const Tensor& residual_out) const {
  k::NormArgs a;
  a.x = x;
  a.residual = residual;
  a.weight = weight->value;
  a.bias = value_or_none(bias);
  a.eps = eps_;
  a.out = out;
  a.residual_out = residual_out;
  if (rms_)
    k::rms_norm(ctx, a);
  else
    k::layer_norm(ctx, a);
}

DepthwiseConv1d::DepthwiseConv1d(std::int64_t channels, std::int64_t width, bool has_bias) {
  weight = &param("weight", {channels, 1, width}, ParamKind::f32);
  if (has_bias) bias = &param("bias", {channels}, ParamKind::f32);
}

Mixer::Mixer(const VimConfig& c)
    : d_inner_(c.d_inner),
      dt_rank_(c.dt_rank),
      d_state_(c.d_state),
      two_branches_(c.bimamba_v2 && c.use_fast_path),
      divide_out_(c.divide_out) {
  const std::int64_t d = c.embed_dim, di = c.d_inner, r = c.dt_rank, n = c.d_state;
  if (c.has_layer_scale) gamma_ = &param("gamma", {d}, ParamKind::f32);
  in_proj_ = &make_child<Linear>("in_proj", d, 2 * di, c.bias);
  const char* suffix[2] = {"", "_b"};
  for (int b = 0; b < (c.bimamba_v2 ? 2 : 1); ++b) {
    const std::string s = suffix[b];
    Branch& br = branch_[b];
    br.conv = &make_child<DepthwiseConv1d>("conv1d" + s, di, c.d_conv, c.conv_bias);
    br.x_proj = &make_child<Linear>("x_proj" + s, di, r + 2 * n, false);
    br.dt_proj = &make_child<Linear>("dt_proj" + s, r, di, true);
    br.A_log = &param(b == 0 ? "A_log" : "A_b_log", {di, n}, ParamKind::f32);
    br.D = &param("D" + s, {di}, ParamKind::f32);
  }
  out_proj_ = &make_child<Linear>("out_proj", di, d, c.bias);
}

namespace {

/// (2, ...) tensor holding a and b (same shape, dtype and device), copied on their device.
Tensor stack_slots(const Tensor& a, const Tensor& b) {
  Shape shape = a.shape();
  shape.insert(shape.begin(), 2);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  out.select(0, 0).copy_from(a);
  out.select(0, 1).copy_from(b);
  return out;
}

}  // namespace

void Mixer::on_loaded(Context&) {
  for (int b = 0; b < (two_branches_ ? 2 : 1); ++b) branch_[b].A = negative_exp(branch_[b].A_log->value);
  if (!two_branches_) return;
  for (int order = 0; order < 2; ++order) {
    const Branch& f = branch_[order];  // scans forward
    const Branch& r = branch_[1 - order];
    stacked_[order].A = stack_slots(f.A, r.A);
    stacked_[order].D = stack_slots(f.D->value, r.D->value);
    stacked_[order].delta_bias = stack_slots(f.dt_proj->bias->value, r.dt_proj->bias->value);
    stacked_[order].x_proj_w = stack_slots(f.x_proj->weight->value, r.x_proj->weight->value);
    stacked_[order].dt_proj_w = stack_slots(f.dt_proj->weight->value, r.dt_proj->weight->value);
  }
}

MixerBuffers Mixer::make_buffers(std::int64_t batch, std::int64_t len, DType dtype, Device device) const {
  MixerBuffers buf;
  const std::int64_t slots = two_branches_ ? 2 : 1;
  buf.xz = Tensor::empty({batch, len, 2 * d_inner_}, dtype, device);
  buf.xc_all = Tensor::empty({slots, batch, len, d_inner_}, dtype, device);
  buf.xdbl_all = Tensor::empty({slots, batch, len, dt_rank_ + 2 * d_state_}, dtype, device);
  buf.dt_all = Tensor::empty({slots, batch, len, d_inner_}, dtype, device);
  for (std::int64_t s = 0; s < slots; ++s) {
    buf.xc[s] = buf.xc_all.select(0, s);
    buf.xdbl[s] = buf.xdbl_all.select(0, s);
    buf.dt[s] = buf.dt_all.select(0, s);
  }
  buf.y = Tensor::empty({batch, len, d_inner_}, dtype, device);
  return buf;
}

void Mixer::conv_branch(Context& ctx, const Branch& br, const Tensor& x, int slot, bool reverse_conv,
                        MixerBuffers& buf) const {
  // u = silu(conv1d(x)): the causal conv, or for a reverse-scanning branch the anti-causal one,
  // which is the official flip -> causal_conv1d -> flip without the copies.
  k::Conv1dArgs conv;
  conv.x = x;
  conv.weight = br.conv->weight->value;
  conv.bias = value_or_none(br.conv->bias);
  conv.out = buf.xc[slot];
  conv.layout = k::Conv1dLayout::token_major;
  conv.padding = k::Conv1dPadding::causal;
  conv.reverse = reverse_conv;
  conv.silu = true;
  k::conv1d(ctx, conv);
}

void Mixer::forward(Context& ctx, const Tensor& x, const Tensor& out, MixerBuffers& buf, bool reversed) const {
  k::LinearArgs in;
  in.x = x;
  in.weight = in_proj_->weight->value;
  in.bias = value_or_none(in_proj_->bias);
  in.out = buf.xz;
  k::linear(ctx, in);
  const Tensor xs = buf.xz.slice(2, 0, d_inner_);
  const Tensor z = buf.xz.slice(2, d_inner_, 2 * d_inner_);
  const std::int64_t r = dt_rank_, n = d_state_;

  k::SelectiveScanArgs s;
  s.z = z.transpose(1, 2);
  s.delta_softplus = true;
  s.out = buf.y.transpose(1, 2);
  if (two_branches_) {
    // Both branches in one bidirectional scan: slot 0 scans forward, slot 1 in reverse, each
    // with its own u, delta, B, C, A, D and delta_bias; the sum (y_f + y_b) [/ 2] is gated once
    // ((y_f + y_b) / 2 == y_f / 2 + y_b / 2 exactly: a power-of-two scale before the gate).
    const int order = reversed ? 1 : 0;
    const Stacked& st = stacked_[order];
    conv_branch(ctx, branch_[order], xs, 0, /*reverse_conv=*/false, buf);
    conv_branch(ctx, branch_[1 - order], xs, 1, /*reverse_conv=*/true, buf);
    // (dt | B | C) = x_proj(u) and delta = dt_proj.weight @ dt for both slots, each as one
    // batched matmul over the slot axis (every token is projected at its natural position, which
    // is what the flipped official branch computes too; dt_proj.bias is added inside the scan,
    // as mamba_inner_fn does).
    const std::int64_t rows = buf.xz.size(0) * buf.xz.size(1);
    k::MatmulArgs xp;
    xp.a = buf.xc_all.view({2, rows, d_inner_});
    xp.b = st.x_proj_w.transpose(1, 2);
    xp.out = buf.xdbl_all.view({2, rows, r + 2 * n});
    k::matmul(ctx, xp);
    k::MatmulArgs dp;
    dp.a = buf.xdbl_all.view({2, rows, r + 2 * n}).slice(2, 0, r);
    dp.b = st.dt_proj_w.transpose(1, 2);
    dp.out = buf.dt_all.view({2, rows, d_inner_});
    k::matmul(ctx, dp);
    s.u = buf.xc_all.permute({1, 0, 3, 2});
    s.delta = buf.dt_all.permute({1, 0, 3, 2});
    s.B = buf.xdbl_all.slice(3, r, r + n).permute({1, 0, 3, 2});
    s.C = buf.xdbl_all.slice(3, r + n, r + 2 * n).permute({1, 0, 3, 2});
    s.A = stacked_[order].A;
    s.D = stacked_[order].D;
    s.delta_bias = stacked_[order].delta_bias;
    s.directions = k::ScanDirections::bidirectional;
    s.out_scale = divide_out_ ? 0.5f : 1.0f;
  } else {
    const Branch& br = branch_[0];
    // On a flipped sequence (reversed) the causal conv becomes anti-causal, the scan reverse.
    conv_branch(ctx, br, xs, 0, reversed, buf);
    k::LinearArgs xp;
    xp.x = buf.xc[0];
    xp.weight = br.x_proj->weight->value;
    xp.out = buf.xdbl[0];
    k::linear(ctx, xp);
    k::LinearArgs dp;
    dp.x = buf.xdbl[0].slice(2, 0, r);
    dp.weight = br.dt_proj->weight->value;
    dp.out = buf.dt[0];
    k::linear(ctx, dp);
    s.u = buf.xc[0].transpose(1, 2);
    s.delta = buf.dt[0].transpose(1, 2);
    s.B = buf.xdbl[0].slice(2, r, r + n).permute({0, 2, 1});
    s.C = buf.xdbl[0].slice(2, r + n, r + 2 * n).permute({0, 2, 1});
    s.A = br.A;
    s.D = br.D->value;
    s.delta_bias = br.dt_proj->bias->value;
    s.directions = reversed ? k::ScanDirections::reverse : k::ScanDirections::forward;
  }
  k::selective_scan(ctx, s);

  k::LinearArgs o;
  o.x = buf.y;
  o.weight = out_proj_->weight->value;
  o.bias = value_or_none(out_proj_->bias);
  o.out = out;
  k::linear(ctx, o);
  if (gamma_) k::mul(ctx, out, gamma_->value, out);
}

Block::Block(const VimConfig& c) {
  mixer = &make_child<Mixer>("mixer", c);
  norm = &make_child<Norm>("norm", c.embed_dim, c.rms_norm, c.norm_eps);
}

// ---- VisionMamba ------------------------------------------------------------------------------

VisionMamba::VisionMamba(const VimConfig& c) : config_(c) {
  const std::int64_t d = c.embed_dim;
  proj_weight_ = &param("patch_embed.proj.weight", {d, c.channels, c.patch_h, c.patch_w});
  proj_bias_ = &param("patch_embed.proj.bias", {d}, ParamKind::f32);
  // Class tokens and the position embedding stay f32: the embedding adds them in f32 and rounds
  // once, and resizing the position embedding starts from the exact values.
  if (c.cls_token) {
    if (c.double_cls_token) {
      cls_token_head_ = &param("cls_token_head", {1, 1, d}, ParamKind::f32);
      cls_token_tail_ = &param("cls_token_tail", {1, 1, d}, ParamKind::f32);
    } else {
      cls_token_ = &param("cls_token", {1, 1, d}, ParamKind::f32);
    }
  }
  if (c.abs_pos_embed) pos_embed_ = &param("pos_embed", {1, c.num_patches() + c.num_tokens, d}, ParamKind::f32);
  if (c.num_classes > 0) head_ = &make_child<Linear>("head", d, c.num_classes, true);
  for (std::int64_t i = 0; i < c.depth; ++i) layers_.push_back(&make_child<Block>("layers." + std::to_string(i), c));
  norm_f_ = &make_child<Norm>("norm_f", d, c.rms_norm, c.norm_eps);
}

void VisionMamba::on_loaded(Context&) {
  proj_weight_ohwi_ = k::conv_weight_ohwi(proj_weight_->value);
  if (config_.cls_token) {
    const std::int64_t d = config_.embed_dim;
    if (config_.double_cls_token) {
      Tensor host = Tensor::empty({2, d}, DType::f32);
      host.select(0, 0).copy_from(cls_token_head_->value.view({d}).to(Device::cpu()));
      host.select(0, 1).copy_from(cls_token_tail_->value.view({d}).to(Device::cpu()));
      cls_tokens_ = device().is_cpu() ? host : host.to(device());
    } else {
      cls_tokens_ = cls_token_->value.view({1, d});
    }
  }
  std::lock_guard<std::mutex> lock(pos_mutex_);
  resized_pos_.clear();
}

DType VisionMamba::compute_dtype() const { return proj_weight_->value.dtype(); }
Device VisionMamba::device() const { return proj_weight_->value.device(); }

void VisionMamba::check_input(const Shape& s) const {
  if (s.size() != 4) throw Error("images", "expected shape (batch, channels, height, width), got " + shape_str(s));
  if (s[0] < 1) throw Error("images", "the batch is empty (shape " + shape_str(s) + ")");
  if (s[1] != config_.channels)
    throw Error("images", "have " + std::to_string(s[1]) + " channels; the model takes " +
                              std::to_string(config_.channels));
  if (s[2] < config_.patch_h || s[3] < config_.patch_w)
    throw Error("images", std::to_string(s[2]) + "x" + std::to_string(s[3]) + " is smaller than one " +
                              std::to_string(config_.patch_h) + "x" + std::to_string(config_.patch_w) + " patch");
  // Every size of at least one patch works: the patch grid follows the input and the position
  // embedding is resized to it.
}

void VisionMamba::check_images(const Tensor& images) const {
  if (!proj_weight_->value.defined()) throw Error("vim", "the model's weights are not loaded");
  if (!images.defined()) throw Error("images", "undefined tensor");
  check_input(images.shape());
  if (images.dtype() != DType::f32)
    throw Error("images", std::string("have dtype ") + dtype_name(images.dtype()) + ", expected f32");
  if (!(images.device() == device()))
    throw Error("images", "are on " + images.device().str() + " but the model is on " + device().str());
}

Tensor VisionMamba::pos_embed_for(Context& ctx, std::int64_t gh, std::int64_t gw) {
  if (!pos_embed_) return Tensor();
  const VimConfig& c = config_;
  const std::int64_t d = c.embed_dim;
  if (gh == c.grid_h && gw == c.grid_w) return pos_embed_->value.view({c.num_patches() + c.num_tokens, d});
  std::lock_guard<std::mutex> lock(pos_mutex_);
  auto it = resized_pos_.find({gh, gw});
  if (it != resized_pos_.end()) return it->second;

  // Split the trained embedding into class-token rows and the patch grid (the middle class
  // token's row sits inside the sequence, so it is taken out by position, not as a prefix),
  // resize the grid as Vim's fine-tuning code does (F.interpolate bicubic, align_corners=False),
  // and put the class-token rows back at their positions in the new sequence.
  const std::int64_t m0 = c.num_patches(), l0 = m0 + c.num_tokens, m1 = gh * gw;
  const Tensor old = pos_embed_->value.view({l0, d}).to(Device::cpu());
  const std::vector<std::int64_t> pos0 = c.token_positions(m0), pos1 = c.token_positions(m1);
  Tensor grid = Tensor::empty({1, d, c.grid_h, c.grid_w}, DType::f32);
  Tensor tokens = Tensor::empty({std::max<std::int64_t>(c.num_tokens, 1), d}, DType::f32);
  {
    const float* src = old.data<float>();
    float* g = grid.data<float>();
    std::int64_t patch = 0, token = 0;
    for (std::int64_t row = 0; row < l0; ++row) {
      const bool is_token = token < static_cast<std::int64_t>(pos0.size()) && pos0[token] == row;
      for (std::int64_t ch = 0; ch < d; ++ch) {
        if (is_token)
          tokens.data<float>()[token * d + ch] = src[row * d + ch];
        else
          g[ch * m0 + patch] = src[row * d + ch];
      }
      if (is_token)
        ++token;
      else
        ++patch;
    }
  }
  Context cpu(Device::cpu());
  Tensor resized = Tensor::empty({1, d, gh, gw}, DType::f32);
  k::BicubicArgs bicubic;
  bicubic.x = grid;
  bicubic.out = resized;
  bicubic.align_corners = false;
  k::interpolate_bicubic(cpu, bicubic);
  Tensor out = Tensor::empty({1, m1 + c.num_tokens, d}, DType::f32);
  k::EmbedTokensArgs e;
  e.patches = resized.view({d, m1}).transpose(0, 1).contiguous().view({1, m1, d});
  if (c.num_tokens > 0) e.tokens = tokens;
  e.positions = pos1;
  e.out = out;
  k::embed_tokens(cpu, e);
  Tensor resident;
  {
    // Kept across forward passes, so never from a forward pass's arena.
    ContextScope no_arena(ctx, /*use_arena=*/false);
    resident = out.view({m1 + c.num_tokens, d}).to(device());
  }
  resized_pos_[{gh, gw}] = resident;
  return resident;
}

VisionMamba::Trunk VisionMamba::run_trunk(Context& ctx, const Tensor& images) {
  check_images(images);
  const VimConfig& c = config_;
  const std::int64_t d = c.embed_dim;
  const DType dtype = compute_dtype();
  const Device dev = device();
  Trunk t;
  t.batch = images.size(0);
  std::tie(t.grid_h, t.grid_w) = c.grid_for(images.size(2), images.size(3));
  const std::int64_t m = t.grid_h * t.grid_w, b = t.batch;
  t.len = m + c.num_tokens;
  t.positions = c.token_positions(m);

  // PatchEmbed: NCHW -> NHWC (converted to the compute dtype in the same copy), then the conv;
  // its NHWC output is already the token-major (B, M, D) patch sequence in row-major grid order.
  const Tensor nhwc_view = images.permute({0, 2, 3, 1});
  const Tensor nhwc = dtype == DType::f32 ? nhwc_view.contiguous() : nhwc_view.to(dtype);
  Tensor patches = Tensor::empty({b, t.grid_h, t.grid_w, d}, dtype, dev);
  k::Conv2dArgs conv;
  conv.x = nhwc;
  conv.weight = proj_weight_ohwi_;
  conv.bias = proj_bias_->value;
  conv.stride_h = conv.stride_w = static_cast<int>(c.stride);
  conv.out = patches;
  k::conv2d(ctx, conv);

  Tensor tokens = Tensor::empty({b, t.len, d}, dtype, dev);
  k::EmbedTokensArgs embed;
  embed.patches = patches.view({b, m, d});
  if (c.num_tokens > 0) embed.tokens = cls_tokens_;
  embed.positions = t.positions;
  embed.pos = pos_embed_for(ctx, t.grid_h, t.grid_w);
  embed.out = tokens;
  k::embed_tokens(ctx, embed);
  tap("tokens_in", tokens);

  const DType residual_dtype = c.residual_in_fp32 ? DType::f32 : dtype;
  Tensor normed = Tensor::empty({b, t.len, d}, dtype, dev);
  Tensor hidden = Tensor::empty({b, t.len, d}, dtype, dev);
  Tensor residual = Tensor::empty({b, t.len, d}, residual_dtype, dev);
  MixerBuffers buf = layers_[0]->mixer->make_buffers(b, t.len, dtype, dev);

  if (!c.bidirectional) {
    // Block: residual = hidden + residual (f32 when residual_in_fp32), hidden = mixer(norm(residual)).
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const Block& blk = *layers_[i];
      if (i == 0)
        blk.norm->run(ctx, tokens, Tensor(), normed, residual);
      else
        blk.norm->run(ctx, hidden, residual, normed, residual);
      blk.mixer->forward(ctx, normed, hidden, buf, /*reversed=*/false);
      if (taps) {
        // Later layers overwrite these buffers in place: record copies.
        const std::string name = "layer" + std::to_string(i);
        const Tensor h = hidden.clone();
        tap(name + ".mixer", h);
        tap(name + ".0", h);
        tap(name + ".1", residual.clone());
      }
    }
    t.hidden = hidden;
    t.residual = residual;
    return t;
  }

  // if_bidirectional: layers 2i and 2i+1 see the same input, the second one flipped; the pair's
  // output is the mean of the two (flipped back). A flipped layer is the same layer with its scan
  // and conv directions reversed, so nothing is flipped in memory. The mean of the two residuals
  // is the residual itself. An odd last layer is never run, as in the official loop.
  Tensor normed_b = Tensor::empty({b, t.len, d}, dtype, dev);
  Tensor hidden_b = Tensor::empty({b, t.len, d}, dtype, dev);
  Tensor residuals[2] = {residual, Tensor::empty({b, t.len, d}, residual_dtype, dev)};
  Tensor cur_hidden = tokens, cur_residual;
  for (std::size_t i = 0; i + 1 < layers_.size(); i += 2) {
    const Block& fwd = *layers_[i];
    const Block& bwd = *layers_[i + 1];
    const Tensor next_residual = residuals[(i / 2) % 2];
    bwd.norm->run(ctx, cur_hidden, cur_residual, normed_b, Tensor());
    fwd.norm->run(ctx, cur_hidden, cur_residual, normed, next_residual);
    fwd.mixer->forward(ctx, normed, hidden, buf, /*reversed=*/false);
    bwd.mixer->forward(ctx, normed_b, hidden_b, buf, /*reversed=*/true);
    k::add(ctx, hidden, hidden_b, hidden);
    k::scale(ctx, hidden, 0.5f, hidden);
    cur_hidden = hidden;
    cur_residual = next_residual;
  }
  t.hidden = cur_hidden;
  t.residual = cur_residual;
  return t;
}

void VisionMamba::final_norm_rows(Context& ctx, const Trunk& t, std::int64_t row, const Tensor& out) const {
  norm_f_->run(ctx, t.hidden.select(1, row), t.residual.defined() ? t.residual.select(1, row) : Tensor(), out,
               Tensor());
}

Tensor VisionMamba::forward(Context& ctx, const Tensor& images) {
  const Trunk t = run_trunk(ctx, images);
  const VimConfig& c = config_;
  const std::int64_t b = t.batch, d = c.embed_dim;
  const DType dtype = compute_dtype();
  const Device dev = device();
  auto to_f32 = [&](const Tensor& x) { return x.dtype() == DType::f32 ? x : x.to(DType::f32); };

  Tensor features = Tensor::empty({b, d}, dtype, dev);
  if (c.cls_token) {
    // Only the class-token rows go through norm_f: the rest of the sequence is never read.
    final_norm_rows(ctx, t, t.positions[0], features);
    if (c.double_cls_token) {
      Tensor tail = Tensor::empty({b, d}, dtype, dev);
      final_norm_rows(ctx, t, t.positions[1], tail);
      k::add(ctx, features, tail, features);
      k::scale(ctx, features, 0.5f, features);
    }
  } else if (c.final_pool == FinalPool::none) {
    final_norm_rows(ctx, t, t.len - 1, features);
  } else {
    Tensor normed = Tensor::empty({b, t.len, d}, dtype, dev);
    norm_f_->run(ctx, t.hidden, t.residual, normed, Tensor());
    if (c.final_pool == FinalPool::max) {
      // head on every token, then the max over tokens (forward's x.max(dim=1)).
      Tensor per_token = normed;
      if (head_) {
        per_token = Tensor::empty({b, t.len, c.num_classes}, dtype, dev);
        k::LinearArgs h;
        h.x = normed;
        h.weight = head_->weight->value;
        h.bias = head_->bias->value;
        h.out = per_token;
        k::linear(ctx, h);
      }
      Tensor pooled = Tensor::empty({b, per_token.size(2)}, dtype, dev);
      k::max_tokens(ctx, per_token, pooled);
      return to_f32(pooled);
    }
    k::mean_tokens(ctx, normed, features);
  }
  tap("features", features);
  if (!head_) return to_f32(features);
  Tensor logits = Tensor::empty({b, c.num_classes}, dtype, dev);
  k::LinearArgs h;
  h.x = features;
  h.weight = head_->weight->value;
  h.bias = head_->bias->value;
  h.out = logits;
  k::linear(ctx, h);
  return to_f32(logits);
}

std::vector<Tensor> VisionMamba::forward_features(Context& ctx, const Tensor& images) {
  const Trunk t = run_trunk(ctx, images);
  const std::int64_t b = t.batch, d = config_.embed_dim, m = t.grid_h * t.grid_w;
  Tensor normed = Tensor::empty({b, t.len, d}, compute_dtype(), device());
  norm_f_->run(ctx, t.hidden, t.residual, normed, Tensor());
  // The patch tokens (class tokens left out) as a (B, D, H', W') map, in f32.
  Tensor map = Tensor::empty({b, d, t.grid_h, t.grid_w}, DType::f32, device());
  const Tensor flat = map.view({b, d, m});
  std::int64_t patch = 0, row = 0;
  for (std::size_t j = 0; j <= t.positions.size(); ++j) {
    const std::int64_t end = j < t.positions.size() ? t.positions[j] : t.len;
    if (end > row) {
      flat.slice(2, patch, patch + (end - row)).copy_from(normed.slice(1, row, end).transpose(1, 2));
      patch += end - row;
    }
    row = end + 1;
  }
  return {map};
}

}  // namespace mcv::vision::vim
