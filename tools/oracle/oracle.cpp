#include "oracle.h"

#include <chrono>
#include <cmath>

#include "mcv/error.h"
#include "mcv/file.h"

namespace mcv::oracle {

namespace {
std::map<std::string, FamilyRunner>& runners() {
  // Filled explicitly (not by static initialisers, which a static link may drop).
  static std::map<std::string, FamilyRunner> registry = [] {
    std::map<std::string, FamilyRunner> r;
    register_builtin_runners(r);
    return r;
  }();
  return registry;
}

struct Diff {
  double max_abs = 0, rel_l2 = 0;
  std::int64_t non_finite = 0;
};

Diff diff(const Tensor& got, const Tensor& want) {
  const std::vector<float> g = got.to_vector();
  const std::vector<float> w = want.to_vector();
  Diff d;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) {
      ++d.non_finite;
      continue;
    }
    const double e = double(g[i]) - double(w[i]);
    d.max_abs = std::max(d.max_abs, std::abs(e));
    num += e * e;
    den += double(w[i]) * double(w[i]);
  }
  d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return d;
}

bool is_output_name(const std::string& name) { return name.rfind("feat.", 0) != 0; }
}  // namespace

OracleFolder OracleFolder::open(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error(dir.string(), "not an oracle folder (no such directory)");
  OracleFolder f{dir, {}, {}, Checkpoint::open(dir / "io.safetensors"), std::nullopt};
  const auto config_path = dir / "config.json";
  try {
    f.config = nlohmann::json::parse(read_file_bytes(config_path, 16u << 20));
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path.string(), std::string("invalid JSON: ") + e.what());
  }
  if (!f.config.is_object() || !f.config.contains("family") || !f.config["family"].is_string())
    throw Error(config_path.string(), "no \"family\" string");
  f.family = f.config["family"].get<std::string>();
  if (std::filesystem::exists(dir / "weights.safetensors")) f.weights = Checkpoint::open(dir / "weights.safetensors");
  return f;
}

const Tensor& OracleFolder::io_tensor(const std::string& name) const {
  if (!io.contains(name)) throw Error((dir / "io.safetensors").string(), "no tensor \"" + name + "\"");
  return io.at(name);
}

void judge(const OracleFolder& folder, const OracleOptions& options, OracleResult& result,
           const std::map<std::string, Tensor>& produced) {
  const auto& cfg = folder.config;
  const bool exact_precision = options.dtype == DType::f32;
  auto tolerance_of = [&](const std::string& key, double& max_abs, double& rel_l2) {
    if (cfg.contains(key) && cfg[key].is_object()) {
      max_abs = cfg[key].value("max_abs", 0.0);
      rel_l2 = cfg[key].value("rel_l2", 0.0);
      return true;
    }
    return false;
  };
  result.passed = true;
  for (const auto& [name, got] : produced) {
    TensorCheck c;
    c.name = name;
    c.is_output = is_output_name(name);
    const Tensor& want = folder.io_tensor(name);
    if (got.shape() != want.shape())
      throw Error(folder.dir.string(), "port produced " + name + " with shape " + shape_str(got.shape()) +
                                           ", oracle has " + shape_str(want.shape()));
    const Diff d = diff(got, want);
    c.max_abs = d.max_abs;
    c.rel_l2 = d.rel_l2;
    c.non_finite = d.non_finite;
    if (!exact_precision) {
      if (c.is_output) c.limit_rel_l2 = 2e-2;
    } else if (c.is_output) {
      if (!(name == "last_state" && tolerance_of("tolerance_last_state", c.limit_max_abs, c.limit_rel_l2)))
        if (!tolerance_of("tolerance", c.limit_max_abs, c.limit_rel_l2))
          throw Error((folder.dir / "config.json").string(), "no tolerance for output " + name);
    } else {
      const std::string key = name.substr(5);
      const auto& observed = cfg.value("observed_fp32_gpu_vs_fp64_cpu", nlohmann::json::object());
      if (observed.contains(key)) {
        c.limit_max_abs = std::max(20 * observed[key].value("max_abs", 0.0), 1e-6);
        c.limit_rel_l2 = 20 * observed[key].value("rel_l2", 0.0);
      }
    }
    c.passed = d.non_finite == 0;
    if (c.limit_max_abs > 0 && c.max_abs > c.limit_max_abs) c.passed = false;
    // rel_l2 is not judged where every difference is under the absolute floor.
    if (c.limit_rel_l2 > 0 && c.rel_l2 > c.limit_rel_l2 && !(c.max_abs <= 1e-6 && !c.is_output)) c.passed = false;
    result.passed = result.passed && c.passed;
    result.checks.push_back(c);
  }
  bool any_output = false;
  for (const auto& c : result.checks) any_output = any_output || c.is_output;
  if (!any_output) throw Error(folder.dir.string(), "the port produced no output to compare");
}

OracleResult run_oracle(const std::filesystem::path& dir, const OracleOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const OracleFolder folder = OracleFolder::open(dir);
  auto it = runners().find(folder.family);
  if (it == runners().end()) throw Error(dir.string(), "unknown or not yet supported oracle family \"" + folder.family + "\"");
  Context ctx(options.device);
  std::map<std::string, Tensor> produced = it->second(folder, ctx, options);
  ctx.synchronize();
  OracleResult result;
  result.name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  result.family = folder.family;
  judge(folder, options, result, produced);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mcv::oracle
