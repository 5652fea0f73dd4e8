// VMamba: constructor arguments (forward_type decoding, unsupported values), the registry,
// strict and legacy-name loading, input checks, and other resolutions / non-square inputs and
// option combinations checked against an independent double-precision reference.
//
// The reference below follows classification/models/vmamba.py literally: CrossScan materialises
// the four scan orders as sequences, x_proj / dt_proj run per direction on the scanned sequence,
// the selective scan is the plain recurrence, and CrossMerge maps each direction back to grid
// positions. The port instead projects once on the grid and scans through index maps, so the two
// share no code path beyond the weights.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "mcv/checkpoint.h"
#include "mcv/error.h"
#include "mcv/vision.h"
#include "model.h"
#include "test_support.h"
#include "vmamba/vmamba.h"

namespace mcv::vision::test_vmamba {
namespace {

using Int = std::int64_t;
using Vec = std::vector<double>;
using Weights = std::map<std::string, Tensor>;

std::filesystem::path oracle_path(const char* name) { return test::oracle_dir() / name; }
const char* const kV0 = "vmamba_v0_tiny_small";
const char* const kV2 = "vmamba_v2_s1l8_small";

Json oracle_args(const char* name) {
  std::ifstream in(oracle_path(name) / "config.json");
  return Json::parse(in)["official"]["args"];
}

Weights oracle_weights(const char* name) {
  const Checkpoint ckpt = Checkpoint::open(oracle_path(name) / "weights.safetensors");
  return ckpt.tensors();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Checkpoint in_memory(const Weights& w, const std::string& name = "test.safetensors") {
  return Checkpoint::from_bytes(encode_safetensors(w), name);
}

std::unique_ptr<VisionModel> load_model(const Json& args, const Weights& w, Context& ctx) {
  auto model = build_vmamba(args);
  LoadOptions options;
  load_state_dict(*model, in_memory(w), ctx, options);
  return model;
}

// ---- The double-precision reference -----------------------------------------------------------

/// One image, NHWC: h x w positions of c channels.
struct Grid {
  Int h = 0, w = 0, c = 0;
  Vec v;
  double& at(Int i, Int j, Int k) { return v[(i * w + j) * c + k]; }
  double at(Int i, Int j, Int k) const { return v[(i * w + j) * c + k]; }
};

class Reference {
 public:
  Reference(const VmambaConfig& c, const Weights& w) : c_(c), w_(w) {}

  /// Logits of one image (C, H, W) given as a CHW block of floats.
  Vec logits(const float* chw, Int height, Int width) const {
    Grid x{height, width, c_.in_chans, Vec(height * width * c_.in_chans)};
    for (Int ch = 0; ch < x.c; ++ch)
      for (Int i = 0; i < height; ++i)
        for (Int j = 0; j < width; ++j) x.at(i, j, ch) = chw[(ch * height + i) * width + j];
    x = patch_embed(x);
    if (c_.posembed) {
      const Vec pos = get("pos_embed");
      for (Int i = 0; i < x.h; ++i)
        for (Int j = 0; j < x.w; ++j)
          for (Int ch = 0; ch < x.c; ++ch) x.at(i, j, ch) += pos[(ch * x.h + i) * x.w + j];
    }
    for (int s = 0; s < c_.num_stages(); ++s) {
      for (int b = 0; b < c_.depths[s]; ++b) block(x, "layers." + std::to_string(s) + ".blocks." + std::to_string(b) + ".", s);
      if (s + 1 < c_.num_stages()) x = downsample(x, "layers." + std::to_string(s) + ".downsample.");
    }
    norm(x, "classifier.norm.");
    Vec pooled(x.c, 0.0);
    for (Int p = 0; p < x.h * x.w; ++p)
      for (Int ch = 0; ch < x.c; ++ch) pooled[ch] += x.v[p * x.c + ch] / static_cast<double>(x.h * x.w);
    return linear(pooled, "classifier.head.", true);
  }

 private:
  Vec get(const std::string& name) const {
    auto it = w_.find(name);
    if (it == w_.end()) throw Error("reference", "no weight " + name);
    const std::vector<float> f = it->second.to_vector();
    return Vec(f.begin(), f.end());
  }
  bool has(const std::string& name) const { return w_.count(name) != 0; }

  static double act(kernels::Activation a, double x) {
    switch (a) {
      case kernels::Activation::silu: return x / (1.0 + std::exp(-x));
      case kernels::Activation::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
      case kernels::Activation::relu: return x > 0 ? x : 0.0;
      default: return x;
    }
  }

  /// nn.Linear on one vector.
  Vec linear(const Vec& x, const std::string& prefix, bool bias) const {
    const Vec w = get(prefix + "weight");
    const Int in = static_cast<Int>(x.size()), out = static_cast<Int>(w.size()) / in;
    Vec y = bias ? get(prefix + "bias") : Vec(out, 0.0);
    for (Int o = 0; o < out; ++o)
      for (Int i = 0; i < in; ++i) y[o] += w[o * in + i] * x[i];
    return y;
  }
  Grid linear(const Grid& x, const std::string& prefix, bool bias) const {
    Grid y{x.h, x.w, 0, {}};
    for (Int p = 0; p < x.h * x.w; ++p) {
      const Vec out = linear(Vec(x.v.begin() + p * x.c, x.v.begin() + (p + 1) * x.c), prefix, bias);
      y.c = static_cast<Int>(out.size());
      y.v.insert(y.v.end(), out.begin(), out.end());
    }
    return y;
  }

  /// nn.Conv2d (cross-correlation, zero padding).
  Grid conv(const Grid& x, const std::string& prefix, Int cout, Int k, Int stride, Int pad, Int groups) const {
    const Vec w = get(prefix + "weight");
    const Vec b = has(prefix + "bias") ? get(prefix + "bias") : Vec(cout, 0.0);
    const Int cin_g = x.c / groups, cout_g = cout / groups;
    Grid y{(x.h + 2 * pad - k) / stride + 1, (x.w + 2 * pad - k) / stride + 1, cout, {}};
    y.v.assign(y.h * y.w * cout, 0.0);
    for (Int i = 0; i < y.h; ++i)
      for (Int j = 0; j < y.w; ++j)
        for (Int o = 0; o < cout; ++o) {
          double s = b[o];
          const Int g = o / cout_g;
          for (Int ci = 0; ci < cin_g; ++ci)
            for (Int a = 0; a < k; ++a)
              for (Int bb = 0; bb < k; ++bb) {
                const Int si = i * stride - pad + a, sj = j * stride - pad + bb;
                if (si < 0 || sj < 0 || si >= x.h || sj >= x.w) continue;
                s += w[((o * cin_g + ci) * k + a) * k + bb] * x.at(si, sj, g * cin_g + ci);
              }
          y.at(i, j, o) = s;
        }
    return y;
  }

  void layer_norm(Grid& x, const std::string& prefix) const {
    const Vec g = get(prefix + "weight"), b = get(prefix + "bias");
    for (Int p = 0; p < x.h * x.w; ++p) {
      double* r = &x.v[p * x.c];
      double mean = 0, var = 0;
      for (Int ch = 0; ch < x.c; ++ch) mean += r[ch] / static_cast<double>(x.c);
      for (Int ch = 0; ch < x.c; ++ch) var += (r[ch] - mean) * (r[ch] - mean) / static_cast<double>(x.c);
      for (Int ch = 0; ch < x.c; ++ch) r[ch] = (r[ch] - mean) / std::sqrt(var + 1e-5) * g[ch] + b[ch];
    }
  }
  void norm(Grid& x, const std::string& prefix) const {
    if (c_.norm == VmambaNorm::layer_norm) return layer_norm(x, prefix);
    const Vec g = get(prefix + "weight"), b = get(prefix + "bias");
    const Vec m = get(prefix + "running_mean"), v = get(prefix + "running_var");
    for (Int p = 0; p < x.h * x.w; ++p)
      for (Int ch = 0; ch < x.c; ++ch) {
        double& e = x.v[p * x.c + ch];
        e = (e - m[ch]) / std::sqrt(v[ch] + 1e-5) * g[ch] + b[ch];
      }
  }

  Grid patch_embed(const Grid& x) const {
    const Int dim = c_.dims[0];
    if (c_.patchembed_version == "v1") {
      Grid y = conv(x, "patch_embed.0.", dim, c_.patch_size, c_.patch_size, 0, 1);
      if (c_.patch_norm) norm(y, "patch_embed.2.");
      return y;
    }
    const Int s = c_.patch_size / 2;
    Grid y = conv(x, "patch_embed.0.", dim / 2, s + 1, s, 1, 1);
    if (c_.patch_norm) norm(y, "patch_embed.2.");
    for (double& e : y.v) e = act(kernels::Activation::gelu, e);
    y = conv(y, "patch_embed.5.", dim, s + 1, s, 1, 1);
    if (c_.patch_norm) norm(y, "patch_embed.7.");
    return y;
  }

  Grid downsample(const Grid& x, const std::string& prefix) const {
    const Int out = static_cast<Int>(get(prefix + (c_.downsample_version == "v1" ? "reduction.weight" : "1.bias")).size() /
                                     (c_.downsample_version == "v1" ? 4 * x.c : 1));
    if (c_.downsample_version != "v1") {
      const bool v3 = c_.downsample_version == "v3";
      Grid y = conv(x, prefix + "1.", out, v3 ? 3 : 2, 2, v3 ? 1 : 0, 1);
      norm(y, prefix + "3.");
      return y;
    }
    // _patch_merging_pad: F.pad to even sizes, then cat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]).
    Grid m{(x.h + 1) / 2, (x.w + 1) / 2, 4 * x.c, {}};
    m.v.assign(m.h * m.w * m.c, 0.0);
    const Int di[4] = {0, 1, 0, 1}, dj[4] = {0, 0, 1, 1};
    for (Int i = 0; i < m.h; ++i)
      for (Int j = 0; j < m.w; ++j)
        for (int q = 0; q < 4; ++q)
          for (Int ch = 0; ch < x.c; ++ch) {
            const Int si = 2 * i + di[q], sj = 2 * j + dj[q];
            m.at(i, j, q * x.c + ch) = (si < x.h && sj < x.w) ? x.at(si, sj, ch) : 0.0;
          }
    norm(m, prefix + "norm.");
    return linear(m, prefix + "reduction.", false);
  }

  void block(Grid& x, const std::string& prefix, int stage) const {
    if (c_.ssm_branch()) {
      Grid h = x;
      norm(h, prefix + "norm.");
      const Grid y = ss2d(h, prefix + "op.", stage);
      for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] += y.v[i];
    }
    if (c_.mlp_branch()) {
      Grid h = x;
      norm(h, prefix + "norm2.");
      Grid a = linear(h, prefix + "mlp.fc1.", true);
      if (c_.gmlp) {
        Grid g{a.h, a.w, a.c / 2, {}};
        for (Int p = 0; p < a.h * a.w; ++p)
          for (Int ch = 0; ch < g.c; ++ch) g.v.push_back(a.v[p * a.c + ch] * act(c_.mlp_act, a.v[p * a.c + g.c + ch]));
        a = g;
      } else {
        for (double& e : a.v) e = act(c_.mlp_act, e);
      }
      const Grid y = linear(a, prefix + "mlp.fc2.", true);
      for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] += y.v[i];
    }
  }

  /// Grid position visited at step t by direction k (CrossScan / cross_scan_fwd `scans`).
  Int scan_position(int k, Int t, Int H, Int W) const {
    const Int L = H * W;
    switch (c_.ssm.scan) {
      case VmambaScanMode::cross2d: {
        const Int s = k >= 2 ? L - 1 - t : t;
        return (k & 1) ? (s % H) * W + s / H : s;
      }
      case VmambaScanMode::unidi: return t;
      case VmambaScanMode::bidi: return k >= 2 ? L - 1 - t : t;
    }
    return t;
  }

  Grid ss2d(const Grid& in, const std::string& prefix, int stage) const {
    const Ss2dOptions& o = c_.ssm;
    const Int D = c_.d_inner(stage), N = o.d_state, R = c_.dt_rank(stage), L = in.h * in.w, K = 4;
    const Grid xz = linear(in, prefix + "in_proj.", false);
    Grid x{in.h, in.w, D, {}}, z{in.h, in.w, D, {}};
    for (Int p = 0; p < L; ++p)
      for (Int d = 0; d < D; ++d) {
        x.v.push_back(xz.v[p * xz.c + d]);
        if (o.z_gate) z.v.push_back(o.z_act ? act(o.act, xz.v[p * xz.c + D + d]) : xz.v[p * xz.c + D + d]);
      }
    if (o.d_conv > 1) x = conv(x, prefix + "conv2d.", D, o.d_conv, 1, (o.d_conv - 1) / 2, D);
    for (double& e : x.v) e = act(o.act, e);

    const Vec xw = get(prefix + "x_proj_weight"), dw = get(prefix + "dt_projs_weight");
    const Vec db = get(prefix + "dt_projs_bias"), alog = get(prefix + "A_logs"), ds = get(prefix + "Ds");
    Grid y{in.h, in.w, D, Vec(L * D, 0.0)};
    for (int k = 0; k < K; ++k) {
      // CrossScan: the k-th sequence, materialised.
      std::vector<Vec> xs(L);
      std::vector<Int> pos(L);
      for (Int t = 0; t < L; ++t) {
        pos[t] = scan_position(k, t, in.h, in.w);
        xs[t] = Vec(x.v.begin() + pos[t] * D, x.v.begin() + (pos[t] + 1) * D);
      }
      std::vector<Vec> h(D, Vec(N, 0.0));
      for (Int t = 0; t < L; ++t) {
        Vec dbl(R + 2 * N, 0.0);
        for (Int r = 0; r < R + 2 * N; ++r)
          for (Int d = 0; d < D; ++d) dbl[r] += xw[(k * (R + 2 * N) + r) * D + d] * xs[t][d];
        for (Int d = 0; d < D; ++d) {
          double delta = db[k * D + d];
          for (Int r = 0; r < R; ++r) delta += dw[(k * D + d) * R + r] * dbl[r];
          delta = delta > 20 ? delta : std::log1p(std::exp(delta));
          double out = ds[k * D + d] * xs[t][d];
          for (Int n = 0; n < N; ++n) {
            const double a = -std::exp(alog[(k * D + d) * N + n]);
            h[d][n] = std::exp(delta * a) * h[d][n] + delta * dbl[R + n] * xs[t][d];
            out += dbl[R + N + n] * h[d][n];
          }
          y.v[pos[t] * D + d] += out;  // CrossMerge
        }
      }
    }
    switch (o.out_norm) {
      case VmambaOutNorm::layer_norm: layer_norm(y, prefix + "out_norm."); break;
      case VmambaOutNorm::none: break;
      case VmambaOutNorm::dwconv3: y = conv(y, prefix + "out_norm.1.", D, 3, 1, 1, D); break;
      case VmambaOutNorm::cnorm:
        layer_norm(y, prefix + "out_norm.0.");
        y = conv(y, prefix + "out_norm.2.", D, 3, 1, 1, D);
        break;
    }
    if (o.out_act)
      for (double& e : y.v) e = act(kernels::Activation::gelu, e);
    if (o.z_gate)
      for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] *= z.v[i];
    return linear(y, prefix + "out_proj.", false);
  }

  const VmambaConfig& c_;
  const Weights& w_;
};

/// Runs the port (CPU f32) and the reference on `images`; checks logits and returns rel_l2.
double compare_with_reference(const Json& args, const Weights& w, const Tensor& images) {
  Context ctx;
  auto model = load_model(args, w, ctx);
  model->check_input(images.shape());
  const Tensor got = model->forward(ctx, images);
  const VmambaConfig c = parse_vmamba_args(args);
  const Reference ref(c, w);
  const Int batch = images.size(0), height = images.size(2), width = images.size(3);
  EXPECT_EQ(got.shape(), (Shape{batch, c.num_classes}));
  const std::vector<float> img = images.to_vector(), out = got.to_vector();
  double num = 0, den = 0, max_abs = 0, ref_max = 0;
  for (Int b = 0; b < batch; ++b) {
    const Vec want = ref.logits(img.data() + b * images.size(1) * height * width, height, width);
    for (Int i = 0; i < c.num_classes; ++i) {
      const double e = out[b * c.num_classes + i] - want[i];
      num += e * e;
      den += want[i] * want[i];
      max_abs = std::max(max_abs, std::abs(e));
      ref_max = std::max(ref_max, std::abs(want[i]));
    }
  }
  const double rel = std::sqrt(num / den);
  EXPECT_LT(rel, 2e-5) << "max_abs " << max_abs << " (reference max " << ref_max << ")";
  EXPECT_LT(max_abs, 2e-5 * (1 + ref_max));
  return rel;
}

/// Random weights for every parameter of the model `args` builds, in the ranges the official
/// initialisation (plus training) produces: A_logs ~ log(1..N), dt biases well below zero,
/// norm scales near 1, other tensors ~ 1/sqrt(fan_in).
Weights random_weights(const Json& args, std::uint64_t seed) {
  auto model = build_vmamba(args);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Weights w;
  model->visit_params([&](const std::string& name, Param& p) {
    if (p.kind == ParamKind::ignored) return;
    Tensor t = Tensor::empty(p.shape, DType::f32);
    float* v = t.data<float>();
    const Int n = t.numel();
    const auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    const Int fan_in = p.shape.size() > 1 ? n / p.shape[0] : 1;
    for (Int i = 0; i < n; ++i) {
      const float r = normal(rng);
      if (ends_with("A_logs"))
        v[i] = std::log(static_cast<float>(i % p.shape[1] + 1)) + 0.1f * r;
      else if (ends_with("Ds"))
        v[i] = 1.0f + 0.1f * r;
      else if (ends_with("dt_projs_bias"))
        v[i] = -4.0f + 0.5f * r;
      else if (ends_with("running_var"))
        v[i] = std::exp(0.2f * r);
      else if (p.shape.size() == 1 && ends_with("weight"))
        v[i] = 1.0f + 0.1f * r;
      else if (p.shape.size() == 1)
        v[i] = 0.1f * r;
      else if (ends_with("pos_embed"))
        v[i] = 0.1f * r;
      else
        v[i] = r / std::sqrt(static_cast<float>(fan_in));
    }
    w[name] = t;
  });
  return w;
}

// ---- Arguments ------------------------------------------------------------------------------

TEST(VmambaArgs, OracleArgumentsDecode) {
  const VmambaConfig v0 = parse_vmamba_args(oracle_args(kV0));
  EXPECT_TRUE(v0.ssm.v0);
  EXPECT_TRUE(v0.ssm.z_gate);
  EXPECT_FALSE(v0.channel_first);
  EXPECT_FALSE(v0.mlp_branch());
  EXPECT_EQ(v0.dims, (std::vector<int>{24, 48, 96, 192}));
  const VmambaConfig v2 = parse_vmamba_args(oracle_args(kV2));
  EXPECT_FALSE(v2.ssm.v0);
  EXPECT_FALSE(v2.ssm.z_gate);
  EXPECT_TRUE(v2.channel_first);
  EXPECT_EQ(v2.ssm.out_norm, VmambaOutNorm::layer_norm);
  EXPECT_EQ(v2.ssm.scan, VmambaScanMode::cross2d);
  // The config.json "derived" block.
  for (const char* name : {kV0, kV2}) {
    std::ifstream in(oracle_path(name) / "config.json");
    const Json derived = Json::parse(in)["derived"];
    const VmambaConfig c = parse_vmamba_args(oracle_args(name));
    for (int s = 0; s < 4; ++s) {
      EXPECT_EQ(c.dims[s], derived["stage_dims"][s].get<int>()) << name;
      EXPECT_EQ(c.d_inner(s), derived["d_inner_per_stage"][s].get<int>()) << name;
      EXPECT_EQ(c.dt_rank(s), derived["dt_rank_per_stage"][s].get<int>()) << name;
    }
    EXPECT_EQ(c.channel_first, derived["channel_first"].get<bool>()) << name;
  }
}

TEST(VmambaArgs, ForwardTypePostfixes) {
  auto decode = [](const std::string& ft) {
    Json args = oracle_args(kV2);
    args["forward_type"] = ft;
    return parse_vmamba_args(args).ssm;
  };
  Ss2dOptions o = decode("v05_oncnorm_nozact_oact");
  EXPECT_TRUE(o.z_gate);
  EXPECT_FALSE(o.z_act);
  EXPECT_TRUE(o.out_act);
  EXPECT_EQ(o.out_norm, VmambaOutNorm::cnorm);
  o = decode("v2_no32");
  EXPECT_TRUE(o.z_gate && o.z_act && !o.out_act);
  EXPECT_EQ(o.out_norm, VmambaOutNorm::layer_norm);
  EXPECT_EQ(decode("v051d_onnone").scan, VmambaScanMode::unidi);
  EXPECT_EQ(decode("v051d_onnone").out_norm, VmambaOutNorm::none);
  EXPECT_EQ(decode("v052d_ondwconv3_noz").scan, VmambaScanMode::bidi);
  EXPECT_EQ(decode("v3_torch").scan, VmambaScanMode::cross2d);
  // SS2Dv0 ignores the ssm_* options.
  Json args = oracle_args(kV0);
  args["ssm_conv"] = 1;
  args["ssm_conv_bias"] = false;
  args["ssm_act_layer"] = "relu";
  const VmambaConfig v0 = parse_vmamba_args(args);
  EXPECT_EQ(v0.ssm.d_conv, 3);
  EXPECT_TRUE(v0.ssm.conv_bias);
  EXPECT_EQ(v0.ssm.act, kernels::Activation::silu);
}

TEST(VmambaArgs, UnsupportedArgumentsNameTheArgument) {
  struct Case {
    const char* name;
    Json value;
    const char* base = kV2;
  };
  const std::vector<Case> cases = {
      {"window_size", 7},                       // not a VSSM argument
      {"norm_layer", "gn"},
      {"forward_type", "xv1a"},
      {"forward_type", "m0_noz"},
      {"forward_type", "v052dc"},
      {"forward_type", "v05_onsoftmax"},
      {"forward_type", "v9"},
      {"forward_type", "v0"},                   // SS2Dv0 with a channel-first norm
      {"ssm_act_layer", "sigmoid"},
      {"mlp_act_layer", "tanh"},
      {"downsample_version", "none"},
      {"patchembed_version", "v3"},
      {"ssm_conv", 4},
      {"ssm_init", "v3"},
      {"ssm_d_state", 0},
      {"ssm_d_state", 1000},
      {"ssm_dt_rank", "half"},
      {"ssm_ratio", 0.01},
      {"dims", Json::array({24, 48})},
      {"depths", Json::array()},
      {"num_classes", 0},
      {"gmlp", "yes"},
      {"patch_size", 1},                        // patch embedding v2 needs stride >= 1
  };
  for (const Case& c : cases) {
    Json args = oracle_args(c.base);
    args[c.name] = c.value;
    const std::string msg = error_of([&] { build_vmamba(args); });
    EXPECT_NE(msg.find(std::string("argument ") + c.name), std::string::npos) << c.name << "=" << c.value << ": " << msg;
  }
}

// ---- Registry -----------------------------------------------------------------------------------

TEST(VmambaRegistry, ReleasedVariants) {
  struct Expect {
    const char* name;
    const char* alias;
    double params_m;  // README #params (rounded to 1M)
    double top1;
  };
  const Expect expected[] = {
      {"vssm_tiny", "vmambav0_tiny_224", 22, 82.2},           {"vssm_small", "vanilla_vmamba_small", 44, 83.5},
      {"vssm_base", "vmamba-v0-b", 76, 83.7},                 {"vmambav2_tiny_224", "vmamba_tiny_s2l5", 31, 82.5},
      {"vmambav2_small_224", "vmamba-s", 50, 83.6},          {"vmambav2_base_224", "vmamba-b", 89, 83.9},
      {"vmambav2v_tiny_224", "vmamba-t", 30, 82.6},          {"vmambav2v_small_224", "vmamba_small_s1l20", 49, 83.3},
      {"vmambav2v_base_224", "vssm1_base_0229s", 87, 83.8},
  };
  for (const Expect& e : expected) {
    const ModelInfo info = find_model(e.alias);
    EXPECT_EQ(info.name, e.name);
    EXPECT_EQ(info.family, "vmamba");
    EXPECT_DOUBLE_EQ(info.published_top1, e.top1);
    EXPECT_NEAR(info.parameters / 1e6, e.params_m, 1.0) << e.name;
    EXPECT_FALSE(info.checkpoint.empty());
    EXPECT_EQ(info.preprocess.input_height, 224);
    EXPECT_DOUBLE_EQ(info.preprocess.crop_pct, 0.875);
    EXPECT_EQ(info.preprocess.interpolation, "bicubic");
  }
}

// ---- Loading ------------------------------------------------------------------------------------

TEST(VmambaLoading, StrictErrorsListEveryName) {
  Weights w = oracle_weights(kV2);
  w.erase("layers.1.blocks.0.op.Ds");
  w["layers.0.blocks.0.op.A_log"] = w.at("layers.0.blocks.0.op.A_logs");
  w.erase("layers.0.blocks.0.op.A_logs");
  w["classifier.head.weight"] = Tensor::zeros({10, 192}, DType::f32);
  Context ctx;
  const std::string msg = error_of([&] { load_model(oracle_args(kV2), w, ctx); });
  for (const char* name : {"layers.1.blocks.0.op.Ds", "layers.0.blocks.0.op.A_logs", "layers.0.blocks.0.op.A_log",
                           "classifier.head.weight"})
    EXPECT_NE(msg.find(name), std::string::npos) << name << " not in: " << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos);
  EXPECT_NE(msg.find("unexpected"), std::string::npos);
  EXPECT_NE(msg.find("mis-shaped"), std::string::npos);
}

// Linear2d (channel-first models) also loads 1x1 conv weights (out, in, 1, 1); nn.Linear does not.
TEST(VmambaLoading, Linear2dTakesConvShapedWeights) {
  const Checkpoint io = Checkpoint::open(oracle_path(kV2) / "io.safetensors");
  Weights w = oracle_weights(kV2);
  int reshaped = 0;
  for (auto& [name, t] : w)
    if (t.dim() == 2 && (name.find("in_proj") != std::string::npos || name.find("out_proj") != std::string::npos ||
                         name.find(".mlp.fc") != std::string::npos)) {
      t = t.contiguous().view({t.size(0), t.size(1), 1, 1});
      ++reshaped;
    }
  EXPECT_EQ(reshaped, 5 * 4);
  Context ctx;
  auto model = load_model(oracle_args(kV2), w, ctx);
  const test::Diff d = test::compare(model->forward(ctx, io.at("input")), io.at("output"));
  EXPECT_LT(d.max_abs, 2.3e-6);

  Weights v0 = oracle_weights(kV0);
  Tensor& t = v0.at("layers.0.blocks.0.op.in_proj.weight");
  t = t.contiguous().view({t.size(0), t.size(1), 1, 1});
  const std::string msg = error_of([&] { load_model(oracle_args(kV0), v0, ctx); });
  EXPECT_NE(msg.find("mis-shaped [layers.0.blocks.0.op.in_proj.weight"), std::string::npos) << msg;
}

TEST(VmambaLoading, LegacyNames) {
  EXPECT_EQ(vmamba_legacy_name("patch_embed.proj.weight"), "patch_embed.0.weight");
  EXPECT_EQ(vmamba_legacy_name("patch_embed.norm.bias"), "patch_embed.2.bias");
  EXPECT_EQ(vmamba_legacy_name("layers.2.blocks.11.ln_1.weight"), "layers.2.blocks.11.norm.weight");
  EXPECT_EQ(vmamba_legacy_name("layers.0.blocks.1.self_attention.A_logs"), "layers.0.blocks.1.op.A_logs");
  EXPECT_EQ(vmamba_legacy_name("norm.weight"), "classifier.norm.weight");
  EXPECT_EQ(vmamba_legacy_name("head.bias"), "classifier.head.bias");
  for (const char* current : {"patch_embed.0.weight", "layers.1.blocks.0.norm2.bias", "layers.0.downsample.norm.weight",
                              "classifier.head.weight", "layers.3.blocks.0.op.out_norm.weight"})
    EXPECT_EQ(vmamba_legacy_name(current), current);
}

// A checkpoint written by the first VMamba code (PatchEmbed2D, ln_1, self_attention, norm, head)
// loads through the public API exactly like the renamed one.
TEST(VmambaLoading, LegacyCheckpointThroughPublicApi) {
  Weights legacy;
  for (const auto& [name, t] : oracle_weights(kV0)) {
    std::string n = name;
    auto swap = [&](const std::string& from, const std::string& to) {
      const auto at = n.find(from);
      if (at != std::string::npos) n.replace(at, from.size(), to);
    };
    swap("patch_embed.0.", "patch_embed.proj.");
    swap("patch_embed.2.", "patch_embed.norm.");
    if (n.find(".blocks.") != std::string::npos) {
      swap(".op.", ".self_attention.");
      if (n.find(".norm.") != std::string::npos && n.find("out_norm") == std::string::npos) swap(".norm.", ".ln_1.");
    }
    swap("classifier.", "");
    ASSERT_EQ(vmamba_legacy_name(n), name);
    legacy[n] = t;
  }
  const auto file = test::temp_dir() / "vssm_legacy.safetensors";
  save_safetensors(file, legacy);
  Model model = Model::from_config(oracle_path(kV0) / "config.json", file);
  const Checkpoint io = Checkpoint::open(oracle_path(kV0) / "io.safetensors");
  const test::Diff d = test::compare(model.logits(io.at("input")), io.at("output"));
  EXPECT_LT(d.max_abs, 2.4e-6);
}

// ---- Inputs -------------------------------------------------------------------------------------

TEST(VmambaInputs, BadShapesAreErrors) {
  Context ctx;
  auto model = load_model(oracle_args(kV0), oracle_weights(kV0), ctx);
  struct Case {
    Shape shape;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {{3, 64, 64}, "expected images"},
      {{1, 4, 64, 64}, "channels"},
      {{0, 3, 64, 64}, "empty batch"},
      {{1, 3, 3, 64}, "height 3"},
      {{1, 3, 64, 2}, "width 2"},
      {{1, 3, 20000, 64}, "above the supported"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of([&] { model->check_input(c.shape); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << shape_str(c.shape) << ": " << msg;
  }
  // forward checks as well: a bad tensor never reaches a kernel.
  const std::string msg = error_of([&] { model->forward(ctx, test::random_tensor({1, 3, 2, 64}, DType::f32, 1)); });
  EXPECT_NE(msg.find("height 2"), std::string::npos) << msg;
  // v2 downsampling (conv 2x2 stride 2) needs two rows per stage.
  Json args = oracle_args(kV2);
  args["downsample_version"] = "v2";
  args["patchembed_version"] = "v1";
  auto v2 = build_vmamba(args);
  EXPECT_NE(error_of([&] { v2->check_input({1, 3, 16, 64}); }).find("downsampling"), std::string::npos);
  EXPECT_EQ(error_of([&] { v2->check_input({1, 3, 32, 64}); }), "(no error)");
}

// Odd grids (PatchMerging2D pads 18x10 -> 9x5 -> 5x3 -> 3x2) with the vanilla oracle weights.
TEST(VmambaResolution, V0OddGridMatchesReference) {
  const Tensor images = test::random_tensor({2, 3, 72, 40}, DType::f32, 11);
  compare_with_reference(oracle_args(kV0), oracle_weights(kV0), images);
  // The oracle's directions differ only by small perturbations; random weights make every
  // direction's parameters (and so a wrong scan order) visible.
  compare_with_reference(oracle_args(kV0), random_weights(oracle_args(kV0), 21), images);
}

// Non-square input with the v05_noz / ln2d oracle weights; stage shapes follow the convs.
TEST(VmambaResolution, V2NonSquareMatchesReference) {
  const Tensor images = test::random_tensor({1, 3, 96, 160}, DType::f32, 12);
  compare_with_reference(oracle_args(kV2), oracle_weights(kV2), images);
  compare_with_reference(oracle_args(kV2), random_weights(oracle_args(kV2), 22), images);
  Context ctx;
  auto model = load_model(oracle_args(kV2), oracle_weights(kV2), ctx);
  const std::vector<Tensor> f = model->forward_features(ctx, images);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].shape(), (Shape{1, 24, 24, 40}));
  EXPECT_EQ(f[1].shape(), (Shape{1, 48, 12, 20}));
  EXPECT_EQ(f[2].shape(), (Shape{1, 96, 6, 10}));
  EXPECT_EQ(f[3].shape(), (Shape{1, 192, 3, 5}));
}

// Option combinations no oracle covers, with random weights: every scan mode, out norm, z
// variant, norm kind, MLP kind, stem and downsample version.
TEST(VmambaOptions, CombinationsMatchReference) {
  struct Case {
    const char* what;
    Json overrides;
    Shape input;
  };
  const std::vector<Case> cases = {
      {"unidi, dwconv3 out norm, GELU out act, bn, gMlp(silu), conv 5 + bias, posembed",
       {{"forward_type", "v051d_ondwconv3_oact"}, {"norm_layer", "bn"}, {"gmlp", true}, {"mlp_act_layer", "silu"},
        {"ssm_conv", 5}, {"ssm_conv_bias", true}, {"ssm_act_layer", "gelu"}, {"posembed", true}, {"imgsize", 48},
        {"patch_norm", false}, {"downsample_version", "v2"}, {"ssm_dt_rank", 3}, {"ssm_d_state", 3}},
       {1, 3, 48, 48}},
      {"bidi, cnorm out norm, ungated-activation z, ln2d, patch merging, no conv, relu MLP",
       {{"forward_type", "v052d_oncnorm_nozact"}, {"norm_layer", "ln2d"}, {"patchembed_version", "v1"},
        {"patch_size", 2}, {"downsample_version", "v1"}, {"ssm_conv", 1}, {"mlp_act_layer", "relu"}, {"ssm_d_state", 4}},
       {1, 3, 30, 22}},
      {"cross2d, no out norm, z gate, SS2D-only blocks, a stage without blocks",
       {{"forward_type", "v3_onnone"}, {"norm_layer", "ln"}, {"mlp_ratio", 0.0}, {"ssm_ratio", 1.5},
        {"depths", Json::array({1, 0, 1, 1})}, {"dims", Json::array({16, 24, 32, 40})}, {"ssm_d_state", 2}},
       {2, 3, 64, 32}},
      {"MLP-only blocks (ssm_ratio 0)", {{"ssm_ratio", 0.0}, {"forward_type", "v2"}}, {1, 3, 32, 32}},
  };
  std::uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Json args = oracle_args(kV2);
    args["depths"] = Json::array({1, 1, 1, 1});
    args["dims"] = 16;
    args["num_classes"] = 10;
    for (const auto& [key, value] : c.overrides.items()) args[key] = value;
    compare_with_reference(args, random_weights(args, seed++), test::random_tensor(c.input, DType::f32, seed++));
  }
}

}  // namespace
}  // namespace mcv::vision::test_vmamba
