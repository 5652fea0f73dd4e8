// Vim: the port against an independent float64 reference written from the official code as it
// reads (flip -> causal conv -> scan -> flip for the backward branch, torch.cat for the class
// tokens, the if_bidirectional layer pairs with flipped copies, F.interpolate bicubic for the
// position embedding), on small random models covering the constructor options, at the trained
// resolution and at other, non-square ones; strict loading; constructor-argument errors (also as
// the CLI's exit 2); bad input shapes; the registered variants.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mcv/checkpoint.h"
#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/vision.h"
#include "model.h"
#include "test_support.h"
#include "vim/vim.h"

namespace mcv::vision::test_vim {
namespace {

using Json = nlohmann::json;
using Vec = std::vector<double>;

// ---- Random weights -----------------------------------------------------------------------------

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Plausible random values for every parameter of `model`, by official name.
std::map<std::string, Tensor> random_weights(Module& model, std::uint64_t seed) {
  std::map<std::string, Tensor> w;
  model.visit_params([&](const std::string& name, Param& p) {
    ++seed;
    Tensor t;
    if (ends_with(name, "A_log") || ends_with(name, "A_b_log")) {
      t = test::random_tensor(p.shape, DType::f32, seed, 0.3f, 0.7f);  // A = -exp(.) around -2
    } else if (ends_with(name, "dt_proj.bias") || ends_with(name, "dt_proj_b.bias")) {
      t = test::random_tensor(p.shape, DType::f32, seed, 0.5f, -2.5f);  // softplus -> ~0.08
    } else if (ends_with(name, ".D") || ends_with(name, ".D_b") || ends_with(name, "norm.weight") ||
               ends_with(name, "norm_f.weight")) {
      t = test::random_tensor(p.shape, DType::f32, seed, 0.1f, 1.0f);
    } else if (ends_with(name, "gamma")) {
      t = test::random_tensor(p.shape, DType::f32, seed, 0.1f, 0.5f);
    } else {
      t = test::random_tensor(p.shape, DType::f32, seed, 0.25f);
    }
    w[name] = t;
  });
  return w;
}

Checkpoint as_checkpoint(const std::map<std::string, Tensor>& w, const std::string& name = "random.safetensors") {
  return Checkpoint::from_bytes(encode_safetensors(w), name);
}

Vec values(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  return Vec(f.begin(), f.end());
}

// ---- The float64 reference ------------------------------------------------------------------------

using Seq = std::vector<Vec>;  // L rows of D values

struct Reference {
  const vim::VimConfig& c;
  std::map<std::string, Vec> w;

  Reference(const vim::VimConfig& config, const std::map<std::string, Tensor>& weights) : c(config) {
    for (const auto& [name, t] : weights) w[name] = values(t);
  }
  const Vec& at(const std::string& name) const { return w.at(name); }
  bool has(const std::string& name) const { return w.count(name) != 0; }

  static Seq flip(Seq s) { return Seq(s.rbegin(), s.rend()); }
  static double silu(double x) { return x / (1 + std::exp(-x)); }
  static double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }

  /// nn.Linear on every row.
  Seq linear(const Seq& x, const std::string& name, std::int64_t out) const {
    const Vec& wt = at(name + ".weight");
    const std::int64_t in = static_cast<std::int64_t>(x[0].size());
    Seq y(x.size(), Vec(out, 0.0));
    for (std::size_t t = 0; t < x.size(); ++t)
      for (std::int64_t o = 0; o < out; ++o) {
        double acc = has(name + ".bias") ? at(name + ".bias")[o] : 0.0;
        for (std::int64_t i = 0; i < in; ++i) acc += wt[o * in + i] * x[t][i];
        y[t][o] = acc;
      }
    return y;
  }

  Seq norm(const Seq& x, const std::string& name) const {
    const Vec& g = at(name + ".weight");
    Seq y = x;
    for (auto& row : y) {
      const double n = static_cast<double>(row.size());
      if (c.rms_norm) {
        double ss = 0;
        for (double v : row) ss += v * v;
        const double r = 1 / std::sqrt(ss / n + c.norm_eps);
        for (std::size_t i = 0; i < row.size(); ++i) row[i] = row[i] * r * g[i];
      } else {
        double mean = 0, var = 0;
        for (double v : row) mean += v / n;
        for (double v : row) var += (v - mean) * (v - mean) / n;
        const double r = 1 / std::sqrt(var + c.norm_eps);
        const Vec& b = at(name + ".bias");
        for (std::size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) * r * g[i] + b[i];
      }
    }
    return y;
  }

  /// mamba_inner_fn_no_out_proj for one sequence: causal conv + SiLU, x_proj, dt_proj, z-gated scan.
  Seq inner(const Seq& x, const Seq& z, const std::string& m, const std::string& s) const {
    const std::int64_t L = static_cast<std::int64_t>(x.size()), Di = c.d_inner, N = c.d_state, R = c.dt_rank,
                       W = c.d_conv;
    const Vec& cw = at(m + ".conv1d" + s + ".weight");
    Seq u(L, Vec(Di));
    for (std::int64_t t = 0; t < L; ++t)
      for (std::int64_t d = 0; d < Di; ++d) {
        double acc = has(m + ".conv1d" + s + ".bias") ? at(m + ".conv1d" + s + ".bias")[d] : 0.0;
        for (std::int64_t k = 0; k < W; ++k) {
          const std::int64_t src = t - (W - 1) + k;
          if (src >= 0) acc += cw[d * W + k] * x[src][d];
        }
        u[t][d] = silu(acc);
      }
    const Seq xdbl = linear(u, m + ".x_proj" + s, R + 2 * N);
    const Vec& dtw = at(m + ".dt_proj" + s + ".weight");
    const Vec& dtb = at(m + ".dt_proj" + s + ".bias");
    const Vec& alog = at(m + (s.empty() ? ".A_log" : ".A_b_log"));
    const Vec& dskip = at(m + ".D" + s);
    Seq y(L, Vec(Di));
    for (std::int64_t d = 0; d < Di; ++d) {
      Vec h(N, 0.0);
      for (std::int64_t t = 0; t < L; ++t) {
        double dt = dtb[d];
        for (std::int64_t r = 0; r < R; ++r) dt += dtw[d * R + r] * xdbl[t][r];
        dt = softplus(dt);
        double out = dskip[d] * u[t][d];
        for (std::int64_t n = 0; n < N; ++n) {
          h[n] = std::exp(dt * -std::exp(alog[d * N + n])) * h[n] + dt * xdbl[t][R + n] * u[t][d];
          out += xdbl[t][R + N + n] * h[n];
        }
        y[t][d] = out * silu(z[t][d]);
      }
    }
    return y;
  }

  Seq mixer(const Seq& x, const std::string& m) const {
    const std::int64_t Di = c.d_inner;
    const Seq xz = linear(x, m + ".in_proj", 2 * Di);
    Seq xs, zs;
    for (const auto& row : xz) {
      xs.emplace_back(row.begin(), row.begin() + Di);
      zs.emplace_back(row.begin() + Di, row.end());
    }
    Seq y = inner(xs, zs, m, "");
    if (c.bimamba_v2 && c.use_fast_path) {
      const Seq yb = flip(inner(flip(xs), flip(zs), m, "_b"));
      for (std::size_t t = 0; t < y.size(); ++t)
        for (std::int64_t d = 0; d < Di; ++d) y[t][d] = c.divide_out ? (y[t][d] + yb[t][d]) / 2 : y[t][d] + yb[t][d];
    }
    Seq out = linear(y, m + ".out_proj", c.embed_dim);
    if (has(m + ".gamma"))
      for (auto& row : out)
        for (std::size_t i = 0; i < row.size(); ++i) row[i] *= at(m + ".gamma")[i];
    return out;
  }

  /// Block.forward: residual = residual + hidden (or hidden), hidden = mixer(norm(residual)).
  void block(std::int64_t i, Seq& hidden, Seq& residual, bool& has_residual) const {
    const std::string p = "layers." + std::to_string(i);
    if (has_residual)
      for (std::size_t t = 0; t < hidden.size(); ++t)
        for (std::size_t d = 0; d < hidden[t].size(); ++d) residual[t][d] += hidden[t][d];
    else
      residual = hidden;
    has_residual = true;
    hidden = mixer(norm(residual, p + ".norm"), p + ".mixer");
  }

  /// F.interpolate(mode='bicubic', align_corners=False) of a (D, h, w) grid to (D, oh, ow).
  static std::vector<Vec> bicubic(const std::vector<Vec>& grid, std::int64_t h, std::int64_t w, std::int64_t oh,
                                  std::int64_t ow) {
    auto taps = [](std::int64_t in, std::int64_t out, std::int64_t o, std::int64_t idx[4], double wt[4]) {
      const double src = static_cast<double>(in) / out * (o + 0.5) - 0.5;
      const double f = std::floor(src), t = src - f;
      const double A = -0.75;
      auto near = [&](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
      auto far = [&](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
      wt[0] = far(t + 1);
      wt[1] = near(t);
      wt[2] = near(1 - t);
      wt[3] = far(2 - t);
      for (int k = 0; k < 4; ++k)
        idx[k] = std::min<std::int64_t>(std::max<std::int64_t>(static_cast<std::int64_t>(f) - 1 + k, 0), in - 1);
    };
    std::vector<Vec> out(grid.size(), Vec(oh * ow));
    for (std::int64_t y = 0; y < oh; ++y)
      for (std::int64_t x = 0; x < ow; ++x) {
        std::int64_t iy[4], ix[4];
        double wy[4], wx[4];
        taps(h, oh, y, iy, wy);
        taps(w, ow, x, ix, wx);
        for (std::size_t d = 0; d < grid.size(); ++d) {
          double acc = 0;
          for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) acc += wy[a] * wx[b] * grid[d][iy[a] * w + ix[b]];
          out[d][y * ow + x] = acc;
        }
      }
    return out;
  }

  /// Inserts the class tokens as forward_features does (torch.cat) and returns their positions.
  std::vector<std::int64_t> insert_tokens(Seq& x, const Seq& tokens) const {
    const std::int64_t m = static_cast<std::int64_t>(x.size());
    if (!c.cls_token) return {};
    if (c.double_cls_token) {
      x.insert(x.begin(), tokens[0]);
      x.push_back(tokens[1]);
      return {0, m + 1};
    }
    const std::int64_t p = c.middle_cls_token ? m / 2 : 0;
    x.insert(x.begin() + p, tokens[0]);
    return {p};
  }

  Seq class_tokens() const {
    if (!c.cls_token) return {};
    if (c.double_cls_token) return {at("cls_token_head"), at("cls_token_tail")};
    return {at("cls_token")};
  }

  /// The position embedding for a grid: the parameter, or its patch part resized with the class
  /// rows put back at their new positions.
  Seq pos_embed(std::int64_t gh, std::int64_t gw) const {
    const Vec& pe = at("pos_embed");
    const std::int64_t D = c.embed_dim, L0 = static_cast<std::int64_t>(pe.size()) / D;
    Seq rows(L0);
    for (std::int64_t t = 0; t < L0; ++t) rows[t] = Vec(pe.begin() + t * D, pe.begin() + (t + 1) * D);
    if (gh == c.grid_h && gw == c.grid_w) return rows;
    // Take the class rows out at their trained positions (patches stay in order).
    Seq patches = rows, cls;
    const std::int64_t m0 = c.grid_h * c.grid_w;
    std::vector<std::int64_t> pos0 = c.double_cls_token ? std::vector<std::int64_t>{0, m0 + 1}
                                     : c.cls_token       ? std::vector<std::int64_t>{c.middle_cls_token ? m0 / 2 : 0}
                                                         : std::vector<std::int64_t>{};
    for (auto it = pos0.rbegin(); it != pos0.rend(); ++it) {
      cls.insert(cls.begin(), patches[*it]);
      patches.erase(patches.begin() + *it);
    }
    std::vector<Vec> grid(D, Vec(m0));
    for (std::int64_t j = 0; j < m0; ++j)
      for (std::int64_t d = 0; d < D; ++d) grid[d][j] = patches[j][d];
    const std::vector<Vec> resized = bicubic(grid, c.grid_h, c.grid_w, gh, gw);
    Seq out(gh * gw, Vec(D));
    for (std::int64_t j = 0; j < gh * gw; ++j)
      for (std::int64_t d = 0; d < D; ++d) out[j][d] = resized[d][j];
    insert_tokens(out, cls);
    return out;
  }

  /// VisionMamba.forward for one image (C, H, W) -> logits (or features when num_classes == 0).
  Vec forward(const Vec& img, std::int64_t H, std::int64_t W) const {
    const std::int64_t D = c.embed_dim, Cin = c.channels, ph = c.patch_h, pw = c.patch_w, s = c.stride;
    const std::int64_t gh = (H - ph) / s + 1, gw = (W - pw) / s + 1;
    const Vec& pw8 = at("patch_embed.proj.weight");
    const Vec& pb = at("patch_embed.proj.bias");
    Seq x;
    for (std::int64_t i = 0; i < gh; ++i)
      for (std::int64_t j = 0; j < gw; ++j) {
        Vec row(D);
        for (std::int64_t o = 0; o < D; ++o) {
          double acc = pb[o];
          for (std::int64_t ci = 0; ci < Cin; ++ci)
            for (std::int64_t a = 0; a < ph; ++a)
              for (std::int64_t b = 0; b < pw; ++b)
                acc += pw8[((o * Cin + ci) * ph + a) * pw + b] * img[(ci * H + i * s + a) * W + j * s + b];
          row[o] = acc;
        }
        x.push_back(row);
      }
    const std::vector<std::int64_t> positions = insert_tokens(x, class_tokens());
    if (c.abs_pos_embed) {
      const Seq pe = pos_embed(gh, gw);
      for (std::size_t t = 0; t < x.size(); ++t)
        for (std::int64_t d = 0; d < D; ++d) x[t][d] += pe[t][d];
    }

    Seq hidden = x, residual;
    bool has_residual = false;
    if (!c.bidirectional) {
      for (std::int64_t i = 0; i < c.depth; ++i) block(i, hidden, residual, has_residual);
    } else {
      for (std::int64_t i = 0; i + 1 < c.depth; i += 2) {
        Seq hf = hidden, rf = residual, hb = flip(hidden), rb = flip(residual);
        bool f_has = has_residual, b_has = has_residual;
        block(i, hf, rf, f_has);
        block(i + 1, hb, rb, b_has);
        hb = flip(hb);
        rb = flip(rb);
        for (std::size_t t = 0; t < hf.size(); ++t)
          for (std::int64_t d = 0; d < D; ++d) {
            hf[t][d] = (hf[t][d] + hb[t][d]) / 2;
            rf[t][d] = (rf[t][d] + rb[t][d]) / 2;
          }
        hidden = hf;
        residual = rf;
        has_residual = true;
      }
    }
    if (has_residual)
      for (std::size_t t = 0; t < hidden.size(); ++t)
        for (std::int64_t d = 0; d < D; ++d) residual[t][d] += hidden[t][d];
    else
      residual = hidden;
    const Seq out = norm(residual, "norm_f");

    const bool head = c.num_classes > 0;
    if (!c.cls_token && c.final_pool == vim::FinalPool::max) {
      const Seq per_token = head ? linear(out, "head", c.num_classes) : out;
      Vec m(per_token[0].size(), -INFINITY);
      for (const auto& row : per_token)
        for (std::size_t k = 0; k < row.size(); ++k) m[k] = std::max(m[k], row[k]);
      return m;
    }
    Vec f(D, 0.0);
    if (c.cls_token && c.double_cls_token) {
      for (std::int64_t d = 0; d < D; ++d) f[d] = (out[positions[0]][d] + out[positions[1]][d]) / 2;
    } else if (c.cls_token) {
      f = out[positions[0]];
    } else if (c.final_pool == vim::FinalPool::none) {
      f = out.back();
    } else {
      for (const auto& row : out)
        for (std::int64_t d = 0; d < D; ++d) f[d] += row[d] / static_cast<double>(out.size());
    }
    return head ? linear(Seq{f}, "head", c.num_classes)[0] : f;
  }
};

// ---- Small models over the constructor options ------------------------------------------------------

Json small_args() {
  // stride defaults to 16 whatever patch_size is (VisionMamba's signature), so it is set here.
  return {{"img_size", 16},   {"patch_size", 4},       {"stride", 4},            {"embed_dim", 16},   {"depth", 2},
          {"d_state", 4},     {"num_classes", 5},      {"rms_norm", true},       {"residual_in_fp32", true},
          {"fused_add_norm", true}, {"final_pool_type", "mean"}, {"if_abs_pos_embed", true},
          {"if_rope", false}, {"if_rope_residual", false}, {"bimamba_type", "v2"}, {"if_cls_token", true},
          {"if_divide_out", true}, {"use_middle_cls_token", true}};
}

struct SmallCase {
  std::string name;
  Json args;
};

std::vector<SmallCase> small_cases() {
  std::vector<SmallCase> cases;
  auto with = [](Json patch) {
    Json a = small_args();
    a.update(patch);
    return a;
  };
  cases.push_back({"released flags (middle cls, v2, div2, RMSNorm)", small_args()});
  cases.push_back({"overlapping patches (stride 2, like the + models)", with({{"stride", 2}})});
  cases.push_back({"leading cls, LayerNorm, bf16-style residual, no divide, layer scale, ssm_cfg",
                   with({{"use_middle_cls_token", false},
                         {"rms_norm", false},
                         {"residual_in_fp32", false},
                         {"fused_add_norm", false},
                         {"if_divide_out", false},
                         {"init_layer_scale", 0.1},
                         {"ssm_cfg", {{"d_conv", 3}, {"expand", 1.5}, {"dt_rank", 3}, {"bias", true}}}})});
  cases.push_back({"no cls, mean pool", with({{"if_cls_token", false}})});
  cases.push_back({"no cls, max pool", with({{"if_cls_token", false}, {"final_pool_type", "max"}})});
  cases.push_back({"no cls, last token, no pos embed, no head",
                   with({{"if_cls_token", false}, {"final_pool_type", "none"}, {"if_abs_pos_embed", false},
                         {"num_classes", 0}})});
  cases.push_back({"head + tail cls tokens", with({{"use_double_cls_token", true}})});
  cases.push_back({"if_bidirectional, odd depth", with({{"if_bidirectional", true}, {"depth", 3}})});
  cases.push_back({"plain Mamba mixer", with({{"bimamba_type", "none"}})});
  cases.push_back({"slow path (forward branch only)", with({{"ssm_cfg", {{"use_fast_path", false}}}})});
  return cases;
}

struct Built {
  std::unique_ptr<VisionModel> model;
  vim::VimConfig config;
  std::map<std::string, Tensor> weights;
};

Built build_small(const Json& args, std::uint64_t seed) {
  Built b;
  b.config = vim::parse_config(args);
  b.model = vim_family().build(args);
  b.weights = random_weights(*b.model, seed);
  Context ctx;
  load_state_dict(*b.model, as_checkpoint(b.weights), ctx, {});
  return b;
}

void expect_matches_reference(const Built& b, std::int64_t H, std::int64_t W, std::uint64_t seed) {
  SCOPED_TRACE("input " + std::to_string(H) + "x" + std::to_string(W));
  const std::int64_t batch = 2, C = b.config.channels;
  const Tensor images = test::random_tensor({batch, C, H, W}, DType::f32, seed);
  Context ctx;
  const Tensor got = b.model->forward(ctx, images);
  const std::int64_t classes = b.model->num_classes();
  ASSERT_EQ(got.shape(), (Shape{batch, classes}));
  ASSERT_EQ(got.dtype(), DType::f32);
  const Reference ref(b.config, b.weights);
  const Vec img = values(images);
  const Vec out = values(got);
  for (std::int64_t i = 0; i < batch; ++i) {
    const Vec want = ref.forward(Vec(img.begin() + i * C * H * W, img.begin() + (i + 1) * C * H * W), H, W);
    ASSERT_EQ(static_cast<std::int64_t>(want.size()), classes);
    double scale = 0, err = 0;
    for (std::int64_t k = 0; k < classes; ++k) {
      scale = std::max(scale, std::abs(want[k]));
      err = std::max(err, std::abs(out[i * classes + k] - want[k]));
    }
    EXPECT_LE(err, 2e-5 * (1 + scale)) << "image " << i << ": max error " << err << " (logit scale " << scale << ")";
  }
}

TEST(Vim, MatchesFloat64ReferenceAtOtherAndNonSquareResolutions) {
  std::uint64_t seed = 1000;
  for (const SmallCase& sc : small_cases()) {
    SCOPED_TRACE(sc.name);
    const Built b = build_small(sc.args, seed += 100);
    expect_matches_reference(b, 16, 16, seed + 1);  // the trained grid
    expect_matches_reference(b, 12, 20, seed + 2);  // non-square: position embedding resized
    expect_matches_reference(b, 23, 9, seed + 3);   // sizes that do not divide by the stride
  }
}

TEST(Vim, ReleasedStride8GeometryMatchesReference) {
  // Vim-T+'s registered arguments (patch 16, stride 8: 27 x 27 patches, class token at 364 of
  // 730) cut to one layer and ten classes, so the float64 reference stays cheap.
  Json args = find_spec("vim-t+").args;
  args["depth"] = 1;
  args["num_classes"] = 10;
  const Built b = build_small(args, 31);
  ASSERT_EQ(b.config.grid_h, 27);
  ASSERT_EQ(b.weights.at("pos_embed").shape(), (Shape{1, 730, 192}));
  const Tensor images = test::random_tensor({1, 3, 224, 224}, DType::f32, 32);
  Context ctx;
  const Vec got = values(b.model->forward(ctx, images));
  const Vec want = Reference(b.config, b.weights).forward(values(images), 224, 224);
  double err = 0, scale = 0;
  for (std::size_t k = 0; k < want.size(); ++k) {
    err = std::max(err, std::abs(got[k] - want[k]));
    scale = std::max(scale, std::abs(want[k]));
  }
  EXPECT_LE(err, 2e-5 * (1 + scale)) << "max error " << err << " (logit scale " << scale << ")";
}

TEST(Vim, ResizedPositionEmbeddingIsCachedPerGrid) {
  const Built b = build_small(small_args(), 7);
  Context ctx;
  const Tensor images = test::random_tensor({1, 3, 24, 12}, DType::f32, 8);
  const Tensor first = b.model->forward(ctx, images);
  const Tensor again = b.model->forward(ctx, images);
  EXPECT_EQ(first.to_vector(), again.to_vector());
}

TEST(Vim, FeatureMapHoldsTheNormalisedPatchTokens) {
  Json args = small_args();
  args["num_classes"] = 0;
  args["if_cls_token"] = false;
  args["final_pool_type"] = "mean";
  const Built b = build_small(args, 11);
  Context ctx;
  const Tensor images = test::random_tensor({2, 3, 16, 20}, DType::f32, 12);
  const std::vector<Tensor> maps = b.model->forward_features(ctx, images);
  ASSERT_EQ(maps.size(), 1u);
  ASSERT_EQ(maps[0].shape(), (Shape{2, 16, 4, 5}));
  // Without class tokens the mean of the map is what the mean-pool forward returns.
  const Tensor pooled = b.model->forward(ctx, images);
  const std::vector<float> m = maps[0].to_vector(), p = pooled.to_vector();
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t d = 0; d < 16; ++d) {
      double mean = 0;
      for (std::int64_t j = 0; j < 20; ++j) mean += m[(i * 16 + d) * 20 + j] / 20.0;
      EXPECT_NEAR(mean, p[i * 16 + d], 1e-5);
    }
  // With the middle class token the map leaves it out: 16 patches of a 16x16 input.
  const Built mid = build_small(small_args(), 13);
  const std::vector<Tensor> mid_maps = mid.model->forward_features(ctx, test::random_tensor({1, 3, 16, 16}, DType::f32, 14));
  EXPECT_EQ(mid_maps[0].shape(), (Shape{1, 16, 4, 4}));
}

// ---- Loading -----------------------------------------------------------------------------------

Json oracle_args() {
  std::ifstream in(test::oracle_dir() / "vim_tiny_d4" / "config.json");
  const Json config = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  return config.is_object() ? config["official"]["args"] : Json();
}

TEST(Vim, StrictLoadingListsEveryProblemByName) {
  const Json args = oracle_args();
  ASSERT_TRUE(args.is_object()) << "missing oracle vim_tiny_d4";
  const Checkpoint good = Checkpoint::open(test::oracle_dir() / "vim_tiny_d4" / "weights.safetensors");
  std::map<std::string, Tensor> w = good.tensors();
  ASSERT_EQ(w.erase("layers.0.mixer.D_b"), 1u);
  w["layers.2.mixer.x_proj_c.weight"] = w.at("layers.2.mixer.x_proj_b.weight");
  w.erase("layers.2.mixer.x_proj_b.weight");
  w["pos_embed"] = Tensor::zeros({1, 196, 192}, DType::f32);
  std::unique_ptr<VisionModel> model = vim_family().build(args);
  Context ctx;
  try {
    load_state_dict(*model, as_checkpoint(w, "edited.safetensors"), ctx, {});
    FAIL() << "an edited checkpoint loaded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* name : {"edited.safetensors", "layers.0.mixer.D_b", "layers.2.mixer.x_proj_b.weight",
                             "layers.2.mixer.x_proj_c.weight", "pos_embed", "[1, 196, 192]"})
      EXPECT_NE(msg.find(name), std::string::npos) << name << " not in: " << msg;
  }
}

TEST(Vim, PublicApiRunsTheOracleModel) {
  const auto dir = test::oracle_dir() / "vim_tiny_d4";
  Model model = Model::from_config(dir / "config.json", dir / "weights.safetensors");
  const Checkpoint io = Checkpoint::open(dir / "io.safetensors");
  const Tensor logits = model.logits(io.at("input"));
  const test::Diff d = test::compare(logits, io.at("output"));
  EXPECT_LT(d.max_abs, 1.9e-5);
  EXPECT_LT(d.rel_l2, 1.1e-5);
}

// ---- Constructor arguments -----------------------------------------------------------------------

void expect_arg_error(const Json& patch, const std::string& needle) {
  Json args = small_args();
  args.update(patch);
  SCOPED_TRACE(patch.dump());
  try {
    vim_family().build(args);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Vim, UnsupportedConstructorArgumentsAreNamed) {
  expect_arg_error({{"if_rope", true}}, "argument if_rope");
  expect_arg_error({{"bimamba_type", "v1"}}, "argument bimamba_type");
  expect_arg_error({{"if_bimamba", true}}, "argument if_bimamba");
  expect_arg_error({{"final_pool_type", "max"}}, "argument final_pool_type");
  expect_arg_error({{"final_pool_type", "avg"}}, "argument final_pool_type");
  expect_arg_error({{"if_cls_token", false}, {"final_pool_type", "all"}}, "argument final_pool_type");
  expect_arg_error({{"flip_img_sequences_ratio", 0.5}}, "argument flip_img_sequences_ratio");
  expect_arg_error({{"ssm_cfg", {{"d_conv", 8}}}}, "argument ssm_cfg.d_conv");
  expect_arg_error({{"ssm_cfg", {{"d_state", 8}}}}, "argument ssm_cfg.d_state");
  expect_arg_error({{"ssm_cfg", {{"expand", "two"}}}}, "argument ssm_cfg.expand");
  expect_arg_error({{"ssm_cfg", 3}}, "argument ssm_cfg");
  expect_arg_error({{"img_size", "big"}}, "argument img_size");
  expect_arg_error({{"img_size", 2}}, "argument img_size");
  expect_arg_error({{"d_state", 300}}, "argument d_state");
  expect_arg_error({{"depth", 0}}, "argument depth");
  expect_arg_error({{"embed_dim", 16.5}}, "argument embed_dim");
  expect_arg_error({{"init_layer_scale", "x"}}, "argument init_layer_scale");
  expect_arg_error({{"not_an_argument", 1}}, "argument not_an_argument");
}

TEST(Vim, TrainingOnlyAndOfficiallyIgnoredArgumentsAreAccepted) {
  Json args = small_args();
  args.update({{"drop_rate", 0.1}, {"drop_path_rate", 0.05}, {"drop_block_rate", nullptr}, {"if_devide_out", true},
               {"initializer_cfg", nullptr}, {"ft_seq_len", nullptr}, {"pt_hw_seq_len", 14}, {"device", nullptr},
               {"dtype", nullptr}, {"ssm_cfg", {{"dt_min", 0.001}, {"dt_init", "random"}}}});
  EXPECT_NO_THROW(vim_family().build(args));
}

TEST(Vim, UnsupportedArgumentIsExit2InCheckOracle) {
  const auto src = test::oracle_dir() / "vim_tiny_d4";
  std::ifstream in(src / "config.json");
  Json config = Json::parse(in);
  config["official"]["args"]["if_rope"] = true;
  const auto dir = test::temp_dir();
  test::write_file(dir / "config.json", config.dump());
  std::filesystem::create_symlink(src / "io.safetensors", dir / "io.safetensors");
  std::filesystem::create_symlink(src / "weights.safetensors", dir / "weights.safetensors");
  std::string out;
  EXPECT_EQ(test::run_cli({"check-oracle", dir.string()}, &out), 2) << out;
  EXPECT_NE(out.find("argument if_rope"), std::string::npos) << out;
}

// ---- Inputs --------------------------------------------------------------------------------------

TEST(Vim, BadInputShapesAreErrors) {
  const Built b = build_small(small_args(), 21);
  Context ctx;
  auto expect_error = [&](const Tensor& images, const std::string& needle) {
    try {
      b.model->forward(ctx, images);
      ADD_FAILURE() << "accepted " << images.describe();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(Tensor::zeros({3, 16, 16}, DType::f32), "images");
  expect_error(Tensor::zeros({1, 1, 16, 16}, DType::f32), "channels");
  expect_error(Tensor::zeros({1, 4, 16, 16}, DType::f32), "channels");
  expect_error(Tensor::zeros({1, 3, 3, 16}, DType::f32), "smaller than one");
  expect_error(Tensor::zeros({1, 3, 16, 2}, DType::f32), "smaller than one");
  expect_error(Tensor::zeros({1, 3, 16, 16}, DType::bf16), "dtype");
  expect_error(Tensor(), "images");
  EXPECT_THROW(b.model->check_input({0, 3, 16, 16}), Error);
  EXPECT_NO_THROW(b.model->check_input({5, 3, 4, 97}));
}

TEST(Vim, ForwardWithoutWeightsIsAnError) {
  std::unique_ptr<VisionModel> model = vim_family().build(small_args());
  Context ctx;
  EXPECT_THROW(model->forward(ctx, Tensor::zeros({1, 3, 16, 16}, DType::f32)), Error);
}

// ---- Registry -------------------------------------------------------------------------------------

TEST(Vim, ReleasedVariantsAreRegistered) {
  struct Expect {
    const char* alias;
    const char* name;
    const char* checkpoint;
    double top1;
    double params_millions;
  };
  // Parameter counts: the README's 7M / 26M / 98M; the stride-8 models add (730 - 197) pos rows.
  const Expect expected[] = {
      {"vim-t", "vim_tiny_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
       "vim_t_midclstok_76p1acc.pth", 76.1, 7},
      {"vim-t+", "vim_tiny_patch16_stride8_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
       "vim_t_midclstok_ft_78p3acc.pth", 78.3, 7},
      {"vim-s", "vim_small_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
       "vim_s_midclstok_80p5acc.pth", 80.5, 26},
      {"vim-s+", "vim_small_patch16_stride8_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2",
       "vim_s_midclstok_ft_81p6acc.pth", 81.6, 26},
      {"vim-b", "vim_base_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_middle_cls_token_div2",
       "vim_b_midclstok_81p9acc.pth", 81.9, 98},
  };
  for (const Expect& e : expected) {
    SCOPED_TRACE(e.alias);
    const ModelInfo info = find_model(e.alias);
    EXPECT_EQ(info.name, e.name);
    EXPECT_EQ(find_model(e.name).name, e.name);
    EXPECT_EQ(info.family, "vim");
    EXPECT_EQ(info.checkpoint, e.checkpoint);
    EXPECT_DOUBLE_EQ(info.published_top1, e.top1);
    EXPECT_EQ(info.labels, "imagenet-1k");
    EXPECT_EQ(info.num_classes, 1000);
    EXPECT_NEAR(info.parameters / 1e6, e.params_millions, 0.6);
    EXPECT_EQ(info.preprocess.input_height, 224);
    EXPECT_DOUBLE_EQ(info.preprocess.crop_pct, 0.875);
    EXPECT_EQ(info.preprocess.interpolation, "bicubic");
  }
  EXPECT_EQ(find_model("vim-t+").parameters - find_model("vim-t").parameters, (730 - 197) * 192);
}

}  // namespace
}  // namespace mcv::vision::test_vim
