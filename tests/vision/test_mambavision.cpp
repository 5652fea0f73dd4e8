// MambaVision: constructor arguments, registry, strict loading, input checks, and any-resolution
// inputs checked against an independent double-precision reference of the official forward
// (written here from mamba_vision.py, loop by loop: zero padding to whole windows, window
// partition/reverse, the mixer with its doubled dt bias, attention, crop), using the oracle's
// small checkpoint with window sizes that make several padded windows per stage.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "mambavision/mambavision.h"
#include "mcv/checkpoint.h"
#include "mcv/error.h"
#include "mcv/vision.h"
#include "model.h"
#include "preprocess.h"
#include "test_support.h"

namespace mcv::vision::test_mambavision {
namespace {

using Int = std::int64_t;

std::filesystem::path oracle_folder() { return test::oracle_dir() / "mambavision_t_small"; }

Json oracle_args() {
  std::ifstream in(oracle_folder() / "config.json");
  return Json::parse(in)["official"]["args"];
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- Arguments --------------------------------------------------------------------------------

TEST(MambaVisionArgs, OracleArgumentsBuild) {
  const MambaVisionConfig c = parse_mambavision_args(oracle_args());
  EXPECT_EQ(c.dim, 24);
  EXPECT_EQ(c.num_features(), 192);
  EXPECT_FALSE(c.layer_scale);
  EXPECT_TRUE(c.qkv_bias);
}

TEST(MambaVisionArgs, AttentionBlocksAreTheSecondHalf) {
  using V = std::vector<int>;
  EXPECT_EQ(MambaVisionConfig::attention_blocks(1), V{});
  EXPECT_EQ(MambaVisionConfig::attention_blocks(2), V{1});
  EXPECT_EQ(MambaVisionConfig::attention_blocks(5), (V{3, 4}));
  EXPECT_EQ(MambaVisionConfig::attention_blocks(8), (V{4, 5, 6, 7}));
  EXPECT_EQ(MambaVisionConfig::attention_blocks(11), (V{6, 7, 8, 9, 10}));
}

TEST(MambaVisionArgs, UnsupportedArgumentsNameTheArgument) {
  struct Case {
    const char* name;
    Json value;
  };
  const std::vector<Case> cases = {
      {"use_hfe_branch", true},           // unknown to the official constructor
      {"depths", Json::array({1, 1, 2})},  // not four stages
      {"num_heads", Json::array({2, 4, 7, 16})},  // 96 channels not divisible by 7 heads
      {"window_size", Json::array({8, 8, 0, 7})},
      {"dim", -3},
      {"num_classes", 0},
      {"qk_scale", "yes"},
      {"layer_scale", "1e-5"},
      {"mlp_ratio", "four"},
  };
  for (const Case& c : cases) {
    Json args = oracle_args();
    args[c.name] = c.value;
    const std::string msg = error_of([&] { build_mambavision(args); });
    EXPECT_NE(msg.find(std::string("argument ") + c.name), std::string::npos) << c.name << ": " << msg;
  }
  Json args = oracle_args();
  args.erase("dim");
  EXPECT_NE(error_of([&] { build_mambavision(args); }).find("argument dim"), std::string::npos);
}

TEST(MambaVisionArgs, LayerScaleAndQkNormAddTheirParameters) {
  Json args = oracle_args();
  args["layer_scale"] = 1e-5;
  args["layer_scale_conv"] = 1e-5;
  args["qk_scale"] = true;
  args["qkv_bias"] = false;
  auto model = build_mambavision(args);
  std::set<std::string> names;
  model->visit_params([&](const std::string& n, Param&) { names.insert(n); });
  for (const char* n : {"levels.0.blocks.0.gamma", "levels.2.blocks.0.gamma_1", "levels.3.blocks.1.gamma_2",
                        "levels.2.blocks.1.mixer.q_norm.weight", "levels.3.blocks.1.mixer.k_norm.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("levels.2.blocks.1.mixer.qkv.bias"));
  // Python semantics: only a number creates gamma (a boolean is neither int nor float there).
  args["layer_scale"] = true;
  names.clear();
  build_mambavision(args)->visit_params([&](const std::string& n, Param&) { names.insert(n); });
  EXPECT_FALSE(names.count("levels.2.blocks.0.gamma_1"));
}

// ---- Registry ---------------------------------------------------------------------------------

TEST(MambaVisionRegistry, ReleasedVariants) {
  struct Expect {
    const char* name;
    const char* alias;
    double params_m;  // README #Params(M)
    double top1;
    int size;
    double crop_pct;
    const char* crop_mode;
  };
  const Expect expected[] = {
      {"mamba_vision_T", "mambavision-t", 31.8, 82.3, 224, 1.0, "center"},
      {"mamba_vision_T2", "mambavision-t2", 35.1, 82.7, 224, 0.98, "center"},
      {"mamba_vision_S", "MambaVision-S-1K", 50.1, 83.3, 224, 0.93, "center"},
      {"mamba_vision_B", "mambavision-b", 97.7, 84.2, 224, 1.0, "center"},
      {"mamba_vision_L", "mambavision-l", 227.9, 85.0, 224, 1.0, "center"},
      {"mamba_vision_L2", "mambavision-l2", 241.5, 85.3, 224, 1.0, "center"},
      {"mamba_vision_B_21k", "mambavision-b-21k", 97.7, 84.9, 224, 1.0, "center"},
      {"mamba_vision_L_21k", "mambavision-l-21k", 227.9, 86.1, 224, 1.0, "center"},
      {"mamba_vision_L2_512_21k", "mambavision-l2-512-21k", 241.5, 87.3, 512, 0.93, "squash"},
      {"mamba_vision_L3_256_21k", "mambavision-l3-256-21k", 739.6, 87.3, 256, 1.0, "center"},
      {"mamba_vision_L3_512_21k", "MambaVision-L3-512-21K", 739.6, 88.1, 512, 0.93, "squash"},
  };
  for (const Expect& e : expected) {
    SCOPED_TRACE(e.name);
    const ModelInfo info = find_model(e.alias);
    EXPECT_EQ(info.name, e.name);
    EXPECT_EQ(info.family, "mambavision");
    EXPECT_NEAR(info.parameters / 1e6, e.params_m, 0.1);
    EXPECT_DOUBLE_EQ(info.published_top1, e.top1);
    EXPECT_EQ(info.preprocess.input_height, e.size);
    EXPECT_EQ(info.preprocess.input_width, e.size);
    EXPECT_DOUBLE_EQ(info.preprocess.crop_pct, e.crop_pct);
    EXPECT_EQ(info.preprocess.crop_mode, e.crop_mode);
    EXPECT_EQ(info.preprocess.interpolation, "bicubic");
    EXPECT_FALSE(info.checkpoint.empty());
    EXPECT_EQ(find_spec(e.name).key_prefix, "model.");
  }
}

TEST(MambaVisionRegistry, SquashPreprocessScalesBothSides) {
  // timm crop_mode='squash': Resize((floor(512 / 0.93),) * 2) ignoring the aspect ratio, then
  // CenterCrop(512); a 2:1 image keeps its whole width, unlike the default centre mode.
  Image image = Image::allocate(300, 150, 3);
  for (int y = 0; y < 150; ++y)
    for (int x = 0; x < 300; ++x)
      for (int c = 0; c < 3; ++c) image.set_sample(x, y, c, (x * 7 + y * 3 + c * 50) % 256);
  const Preprocess p = find_model("mambavision-l3-512-21k").preprocess;
  const Tensor got = preprocess_image(image, p);
  ASSERT_EQ(got.shape(), (Shape{3, 512, 512}));
  const Image resized = pil_resize(image, 550, 550, "bicubic");
  double max_err = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 512; y += 37)
      for (int x = 0; x < 512; x += 41) {
        const double v = (resized.sample(x + 19, y + 19, c) / 255.0 - p.mean[c]) / p.std[c];
        max_err = std::max(max_err, std::abs(got.item((c * 512 + y) * 512 + x) - v));
      }
  EXPECT_LT(max_err, 1e-5);
  Preprocess bad = p;
  bad.crop_mode = "border";
  EXPECT_THROW(preprocess_image(image, bad), Error);
}

// ---- Loading ----------------------------------------------------------------------------------

std::map<std::string, Tensor> oracle_weights() {
  const Checkpoint ck = Checkpoint::open(oracle_folder() / "weights.safetensors");
  return ck.tensors();
}

Checkpoint in_memory(const std::map<std::string, Tensor>& tensors, const std::string& name) {
  return Checkpoint::from_bytes(encode_safetensors(tensors), name);
}

TEST(MambaVisionLoad, StrictErrorsListEveryProblemByName) {
  auto tensors = oracle_weights();
  tensors.erase("levels.2.blocks.0.mixer.A_log");
  tensors["levels.3.blocks.1.mixer.qkv.weight_renamed"] = tensors.at("levels.3.blocks.1.mixer.qkv.weight");
  tensors.erase("levels.3.blocks.1.mixer.qkv.weight");
  tensors["head.weight"] = Tensor::zeros({1000, 191}, DType::f32);
  auto model = build_mambavision(oracle_args());
  Context ctx;
  const std::string msg = error_of([&] { load_state_dict(*model, in_memory(tensors, "bad.safetensors"), ctx, {}); });
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  for (const char* n : {"levels.2.blocks.0.mixer.A_log", "levels.3.blocks.1.mixer.qkv.weight",
                        "levels.3.blocks.1.mixer.qkv.weight_renamed", "head.weight"})
    EXPECT_NE(msg.find(n), std::string::npos) << n << " not in: " << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos);
  EXPECT_NE(msg.find("unexpected"), std::string::npos);
  EXPECT_NE(msg.find("mis-shaped"), std::string::npos);
}

TEST(MambaVisionLoad, BatchNormCountersAreOptional) {
  auto tensors = oracle_weights();
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.find("num_batches_tracked") != std::string::npos ? tensors.erase(it) : std::next(it);
  auto model = build_mambavision(oracle_args());
  Context ctx;
  EXPECT_NO_THROW(load_state_dict(*model, in_memory(tensors, "no_counters.safetensors"), ctx, {}));
}

// Random weights for a registered variant, under the official names; bf16 (the loader converts)
// to halve the bytes a full-size checkpoint writes.
std::map<std::string, Tensor> random_weights(VisionModel& model, std::uint64_t seed) {
  std::map<std::string, Tensor> out;
  std::uint64_t state = seed;
  auto uniform = [&state] {  // a cheap LCG: 32M draws must not dominate the test
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(state >> 40) / float(1 << 24) * 2.0f - 1.0f;
  };
  model.visit_params([&](const std::string& name, Param& p) {
    if (p.kind == ParamKind::ignored) return;
    Tensor t = Tensor::empty(p.shape, DType::bf16);
    BFloat16* d = t.data<BFloat16>();
    const bool is_var = name.find("running_var") != std::string::npos;
    const bool is_scale = name.ends_with("norm1.weight") || name.ends_with("norm2.weight") ||
                          name.ends_with("norm.weight") || name.find("conv_down.1.weight") != std::string::npos ||
                          name.find("conv_down.4.weight") != std::string::npos;
    for (Int i = 0; i < t.numel(); ++i) {
      const float r = uniform();
      d[i] = to_bf16(is_var ? 1.0f + 0.1f * std::abs(r) : is_scale ? 1.0f + 0.05f * r : 0.03f * r);
    }
    out[name] = t;
  });
  return out;
}

TEST(MambaVisionLoad, HuggingFacePrefixIsStrippedWhenEveryNameHasIt) {
  const ModelSpec& spec = find_spec("mambavision-t");
  auto reference = build_mambavision(spec.args);
  const auto plain = random_weights(*reference, 7);
  std::map<std::string, Tensor> prefixed;
  for (const auto& [name, t] : plain) prefixed["model." + name] = t;
  const auto dir = test::temp_dir();
  save_safetensors(dir / "official.safetensors", plain);
  save_safetensors(dir / "model.safetensors", prefixed);
  Model a = Model::load("mambavision-t", dir / "official.safetensors");
  Model b = Model::load("mambavision-t", dir / "model.safetensors");
  // Non-square, not a multiple of any window.
  const Tensor images = test::random_tensor({1, 3, 40, 56}, DType::f32, 3);
  const test::Diff d = test::compare(a.logits(images), b.logits(images));
  EXPECT_EQ(d.max_abs, 0.0);
  EXPECT_EQ(d.non_finite, 0);

  // A file where only some names carry the prefix is not silently half-stripped.
  auto mixed = prefixed;
  mixed["head.bias"] = mixed.at("model.head.bias");
  mixed.erase("model.head.bias");
  save_safetensors(dir / "mixed.safetensors", mixed);
  const std::string msg = error_of([&] { Model::load("mambavision-t", dir / "mixed.safetensors"); });
  EXPECT_NE(msg.find("unexpected [model."), std::string::npos) << msg;
}

TEST(MambaVisionArgs, CheckOracleRejectsAnUnsupportedArgumentWithExitCode2) {
  const auto dir = test::temp_dir() / "mv_bad_args";
  std::filesystem::create_directories(dir);
  std::ifstream in(oracle_folder() / "config.json");
  Json config = Json::parse(in);
  config["official"]["args"]["use_hfe_branch"] = true;
  test::write_file(dir / "config.json", config.dump());
  for (const char* f : {"io.safetensors", "weights.safetensors"})
    std::filesystem::copy_file(oracle_folder() / f, dir / f);
  std::string out;
  EXPECT_EQ(test::run_cli({"check-oracle", dir.string()}, &out), 2) << out;
  EXPECT_NE(out.find("argument use_hfe_branch"), std::string::npos) << out;
}

// ---- Inputs -----------------------------------------------------------------------------------

std::unique_ptr<VisionModel> loaded_oracle_model(const Json& args, Context& ctx) {
  auto model = build_mambavision(args);
  load_state_dict(*model, Checkpoint::open(oracle_folder() / "weights.safetensors"), ctx, {});
  return model;
}

TEST(MambaVisionInput, BadShapesAreClearErrors) {
  Context ctx;
  auto model = loaded_oracle_model(oracle_args(), ctx);
  for (const Shape& s : std::vector<Shape>{{3, 32, 32}, {1, 1, 32, 32}, {1, 4, 32, 32}, {0, 3, 32, 32},
                                            {1, 3, 0, 32}, {1, 3, 4, 20000}}) {
    const std::string msg = error_of([&] { model->check_input(s); });
    EXPECT_NE(msg.find("images"), std::string::npos) << shape_str(s) << ": " << msg;
    const Tensor t = Tensor::zeros(s, DType::f32);
    EXPECT_THROW(model->forward(ctx, t), Error) << shape_str(s);
  }
  EXPECT_NO_THROW(model->check_input({1, 3, 1, 1}));
}

TEST(MambaVisionInput, ForwardFeaturesShapes) {
  Context ctx;
  auto model = loaded_oracle_model(oracle_args(), ctx);
  const Tensor images = test::random_tensor({2, 3, 50, 83}, DType::f32, 5);
  const auto f = model->forward_features(ctx, images);
  ASSERT_EQ(f.size(), 4u);
  // Stage outputs before downsampling: (B, dim * 2^i, ...) at H/4, H/8, H/16, H/32 (ceil).
  EXPECT_EQ(f[0].shape(), (Shape{2, 24, 13, 21}));
  EXPECT_EQ(f[1].shape(), (Shape{2, 48, 7, 11}));
  EXPECT_EQ(f[2].shape(), (Shape{2, 96, 4, 6}));
  EXPECT_EQ(f[3].shape(), (Shape{2, 192, 2, 3}));
  for (const Tensor& t : f) EXPECT_EQ(test::compare(t, t).non_finite, 0);
  EXPECT_EQ(model->forward(ctx, images).shape(), (Shape{2, 1000}));
}

// ---- Independent reference --------------------------------------------------------------------

/// The official forward in double precision, NCHW, plain loops.
class Reference {
 public:
  Reference(const Checkpoint& ck, const MambaVisionConfig& c) : ck_(ck), c_(c) {}

  std::vector<double> forward(const std::vector<double>& images, Int B, Int H, Int W) {
    Map x{images, B, c_.in_chans, H, W};
    x = conv(x, "patch_embed.conv_down.0", 2, false);
    x = relu(bn(x, "patch_embed.conv_down.1", 1e-4));
    x = conv(x, "patch_embed.conv_down.3", 2, false);
    x = relu(bn(x, "patch_embed.conv_down.4", 1e-4));
    for (int i = 0; i < 4; ++i) {
      const std::string lv = "levels." + std::to_string(i);
      if (i < 2) {
        for (int j = 0; j < c_.depths[i]; ++j) x = conv_block(x, lv + ".blocks." + std::to_string(j));
      } else {
        x = token_level(x, i, lv);
      }
      if (i < 3) x = conv(x, lv + ".downsample.reduction.0", 2, false);
    }
    x = bn(x, "norm", 1e-5);
    std::vector<double> pooled(x.b * x.c, 0.0);
    for (Int b = 0; b < x.b; ++b)
      for (Int ch = 0; ch < x.c; ++ch) {
        double s = 0;
        for (Int p = 0; p < x.h * x.w; ++p) s += x.v[(b * x.c + ch) * x.h * x.w + p];
        pooled[b * x.c + ch] = s / double(x.h * x.w);
      }
    return linear(pooled, x.b, "head", true);
  }

 private:
  struct Map {
    std::vector<double> v;
    Int b, c, h, w;
    double& at(Int n, Int ch, Int y, Int x) { return v[((n * c + ch) * h + y) * w + x]; }
  };

  std::vector<double> w(const std::string& name) const {
    const std::vector<float> f = ck_.at(name).to_vector();
    return {f.begin(), f.end()};
  }
  Int dim0(const std::string& name) const { return ck_.at(name).size(0); }

  Map conv(Map& x, const std::string& p, int stride, bool bias) {
    const auto wt = w(p + ".weight");
    const auto bs = bias ? w(p + ".bias") : std::vector<double>();
    const Int co = dim0(p + ".weight");
    const Int oh = (x.h - 1) / stride + 1, ow = (x.w - 1) / stride + 1;
    Map y{std::vector<double>(x.b * co * oh * ow), x.b, co, oh, ow};
    for (Int n = 0; n < x.b; ++n)
      for (Int o = 0; o < co; ++o)
        for (Int i = 0; i < oh; ++i)
          for (Int j = 0; j < ow; ++j) {
            double s = bias ? bs[o] : 0.0;
            for (Int ci = 0; ci < x.c; ++ci)
              for (Int ki = 0; ki < 3; ++ki)
                for (Int kj = 0; kj < 3; ++kj) {
                  const Int yy = i * stride - 1 + ki, xx = j * stride - 1 + kj;
                  if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w) continue;
                  s += wt[((o * x.c + ci) * 3 + ki) * 3 + kj] * x.at(n, ci, yy, xx);
                }
            y.at(n, o, i, j) = s;
          }
    return y;
  }
  Map bn(Map x, const std::string& p, double eps) {
    const auto g = w(p + ".weight"), b = w(p + ".bias"), m = w(p + ".running_mean"), v = w(p + ".running_var");
    for (Int n = 0; n < x.b; ++n)
      for (Int ch = 0; ch < x.c; ++ch)
        for (Int i = 0; i < x.h * x.w; ++i) {
          double& e = x.v[(n * x.c + ch) * x.h * x.w + i];
          e = (e - m[ch]) / std::sqrt(v[ch] + eps) * g[ch] + b[ch];
        }
    return x;
  }
  static Map relu(Map x) {
    for (double& e : x.v) e = std::max(e, 0.0);
    return x;
  }
  static double gelu_tanh(double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  }
  static double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
  static double silu(double x) { return x / (1 + std::exp(-x)); }
  static double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }

  Map conv_block(Map x, const std::string& p) {
    Map t = conv(x, p + ".conv1", 1, true);
    t = bn(t, p + ".norm1", 1e-5);
    for (double& e : t.v) e = gelu_tanh(e);
    t = conv(t, p + ".conv2", 1, true);
    t = bn(t, p + ".norm2", 1e-5);
    for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] += t.v[i];
    return x;
  }

  // Rows of `in` features -> rows of out features (nn.Linear).
  std::vector<double> linear(const std::vector<double>& x, Int rows, const std::string& p, bool bias) {
    const auto wt = w(p + ".weight");
    const Int out = dim0(p + ".weight"), in = Int(wt.size()) / out;
    const auto bs = bias ? w(p + ".bias") : std::vector<double>(out, 0.0);
    std::vector<double> y(rows * out);
    for (Int r = 0; r < rows; ++r)
      for (Int o = 0; o < out; ++o) {
        double s = bs[o];
        for (Int i = 0; i < in; ++i) s += wt[o * in + i] * x[r * in + i];
        y[r * out + o] = s;
      }
    return y;
  }
  std::vector<double> layer_norm(const std::vector<double>& x, Int rows, Int C, const std::string& p) {
    const auto g = w(p + ".weight"), b = w(p + ".bias");
    std::vector<double> y(x.size());
    for (Int r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (Int i = 0; i < C; ++i) mean += x[r * C + i];
      mean /= C;
      for (Int i = 0; i < C; ++i) var += (x[r * C + i] - mean) * (x[r * C + i] - mean);
      var /= C;
      for (Int i = 0; i < C; ++i) y[r * C + i] = (x[r * C + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
    }
    return y;
  }

  // (pad -> window_partition) -> blocks -> (window_reverse -> crop), as MambaVisionLayer.forward.
  Map token_level(Map x, int level, const std::string& p) {
    const Int ws = c_.window_size[level], C = x.c;
    const Int hp = x.h + (ws - x.h % ws) % ws, wp = x.w + (ws - x.w % ws) % ws;
    const Int nh = hp / ws, nw = wp / ws, L = ws * ws, bw = x.b * nh * nw;
    std::vector<double> t(bw * L * C, 0.0);
    for (Int n = 0; n < x.b; ++n)
      for (Int i = 0; i < nh; ++i)
        for (Int j = 0; j < nw; ++j)
          for (Int r = 0; r < ws; ++r)
            for (Int s = 0; s < ws; ++s)
              for (Int ch = 0; ch < C; ++ch) {
                const Int yy = i * ws + r, xx = j * ws + s;
                t[(((n * nh + i) * nw + j) * L + r * ws + s) * C + ch] =
                    yy < x.h && xx < x.w ? x.at(n, ch, yy, xx) : 0.0;
              }
    const auto attn = MambaVisionConfig::attention_blocks(c_.depths[level]);
    for (int j = 0; j < c_.depths[level]; ++j) {
      const std::string bp = p + ".blocks." + std::to_string(j);
      const bool is_attn = std::find(attn.begin(), attn.end(), j) != attn.end();
      auto h = layer_norm(t, bw * L, C, bp + ".norm1");
      const auto m = is_attn ? attention(h, bw, L, C, c_.num_heads[level], bp + ".mixer") : mixer(h, bw, L, C, bp + ".mixer");
      for (std::size_t i = 0; i < t.size(); ++i) t[i] += m[i];
      h = layer_norm(t, bw * L, C, bp + ".norm2");
      auto f = linear(h, bw * L, bp + ".mlp.fc1", true);
      for (double& e : f) e = gelu(e);
      f = linear(f, bw * L, bp + ".mlp.fc2", true);
      for (std::size_t i = 0; i < t.size(); ++i) t[i] += f[i];
    }
    for (Int n = 0; n < x.b; ++n)
      for (Int i = 0; i < nh; ++i)
        for (Int j = 0; j < nw; ++j)
          for (Int r = 0; r < ws; ++r)
            for (Int s = 0; s < ws; ++s) {
              const Int yy = i * ws + r, xx = j * ws + s;
              if (yy >= x.h || xx >= x.w) continue;
              for (Int ch = 0; ch < C; ++ch) x.at(n, ch, yy, xx) = t[(((n * nh + i) * nw + j) * L + r * ws + s) * C + ch];
            }
    return x;
  }

  std::vector<double> mixer(const std::vector<double>& h, Int bw, Int L, Int C, const std::string& p) {
    const Int half = C / 2, N = 8, R = (C + 15) / 16;
    const auto xz = linear(h, bw * L, p + ".in_proj", false);
    const auto wx = w(p + ".conv1d_x.weight"), wz = w(p + ".conv1d_z.weight");
    std::vector<double> xs(bw * L * half), zs(bw * L * half);
    for (Int b = 0; b < bw; ++b)
      for (Int l = 0; l < L; ++l)
        for (Int d = 0; d < half; ++d) {
          double sx = 0, sz = 0;
          for (Int k = 0; k < 3; ++k) {  // padding='same': one zero on each side
            const Int q = l - 1 + k;
            if (q < 0 || q >= L) continue;
            sx += wx[d * 3 + k] * xz[(b * L + q) * C + d];
            sz += wz[d * 3 + k] * xz[(b * L + q) * C + half + d];
          }
          xs[(b * L + l) * half + d] = silu(sx);
          zs[(b * L + l) * half + d] = silu(sz);
        }
    const auto dbl = linear(xs, bw * L, p + ".x_proj", false);
    std::vector<double> dt(bw * L * R);
    for (Int r = 0; r < bw * L; ++r)
      for (Int i = 0; i < R; ++i) dt[r * R + i] = dbl[r * (R + 2 * N) + i];
    const auto delta = linear(dt, bw * L, p + ".dt_proj", true);  // bias once here ...
    const auto bias = w(p + ".dt_proj.bias"), a_log = w(p + ".A_log"), dskip = w(p + ".D");
    std::vector<double> cat(bw * L * C);
    for (Int b = 0; b < bw; ++b)
      for (Int d = 0; d < half; ++d) {
        std::vector<double> state(N, 0.0);
        for (Int l = 0; l < L; ++l) {
          const Int r = b * L + l;
          const double dtv = softplus(delta[r * half + d] + bias[d]);  // ... and again as delta_bias
          const double u = xs[r * half + d];
          double y = dskip[d] * u;
          for (Int n = 0; n < N; ++n) {
            const double A = -std::exp(a_log[d * N + n]);
            state[n] = std::exp(dtv * A) * state[n] + dtv * dbl[r * (R + 2 * N) + R + n] * u;
            y += dbl[r * (R + 2 * N) + R + N + n] * state[n];
          }
          cat[r * C + d] = y;
          cat[r * C + half + d] = zs[r * half + d];
        }
      }
    return linear(cat, bw * L, p + ".out_proj", false);
  }

  std::vector<double> attention(const std::vector<double>& h, Int bw, Int L, Int C, Int heads, const std::string& p) {
    const Int hd = C / heads;
    const auto qkv = linear(h, bw * L, p + ".qkv", true);
    std::vector<double> o(bw * L * C), score(L);
    for (Int b = 0; b < bw; ++b)
      for (Int hh = 0; hh < heads; ++hh)
        for (Int i = 0; i < L; ++i) {
          double mx = -1e300;
          for (Int j = 0; j < L; ++j) {
            double s = 0;
            for (Int d = 0; d < hd; ++d) s += qkv[(b * L + i) * 3 * C + hh * hd + d] * qkv[(b * L + j) * 3 * C + C + hh * hd + d];
            score[j] = s / std::sqrt(double(hd));
            mx = std::max(mx, score[j]);
          }
          double z = 0;
          for (Int j = 0; j < L; ++j) z += (score[j] = std::exp(score[j] - mx));
          for (Int d = 0; d < hd; ++d) {
            double s = 0;
            for (Int j = 0; j < L; ++j) s += score[j] * qkv[(b * L + j) * 3 * C + 2 * C + hh * hd + d];
            o[(b * L + i) * C + hh * hd + d] = s / z;
          }
        }
    return linear(o, bw * L, p + ".proj", true);
  }

  const Checkpoint& ck_;
  MambaVisionConfig c_;
};

void check_against_reference(const Json& args, const Shape& shape) {
  SCOPED_TRACE(args["window_size"].dump() + " input " + shape_str(shape));
  Context ctx;
  auto model = loaded_oracle_model(args, ctx);
  const Checkpoint ck = Checkpoint::open(oracle_folder() / "weights.safetensors");
  const Tensor images = test::random_tensor(shape, DType::f32, 11);
  const Tensor got = model->forward(ctx, images);
  ASSERT_EQ(got.shape(), (Shape{shape[0], 1000}));
  const std::vector<float> in = images.to_vector();
  Reference ref(ck, parse_mambavision_args(args));
  const std::vector<double> want = ref.forward({in.begin(), in.end()}, shape[0], shape[2], shape[3]);
  Tensor want_t = Tensor::empty({shape[0], 1000}, DType::f32);
  for (std::size_t i = 0; i < want.size(); ++i) want_t.data<float>()[i] = static_cast<float>(want[i]);
  const test::Diff d = test::compare(got, want_t);
  EXPECT_EQ(d.non_finite, 0);
  EXPECT_LT(d.rel_l2, 2e-6);
  EXPECT_LT(d.max_abs, 1e-5);
}

TEST(MambaVisionReference, NonSquarePaddedWindows) {
  // Windows 4 and 3 at stage sizes 5x7 and 3x4: several zero-padded windows per image.
  Json args = oracle_args();
  args["window_size"] = Json::array({8, 8, 4, 3});
  check_against_reference(args, {2, 3, 72, 104});
}

TEST(MambaVisionReference, WindowLargerThanTheMap) {
  // The released window sizes (14, 7) on a small non-square input: one padded window per stage.
  check_against_reference(oracle_args(), {1, 3, 45, 70});
}

}  // namespace
}  // namespace mcv::vision::test_mambavision
