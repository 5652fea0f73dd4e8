// Selective scan against the official selective_scan_ref oracles (../shared/oracles/selective_scan_*):
// out and last_state within the folder's tolerance (max_abs AND rel_l2) on the CPU and on CUDA;
// in bf16 the output within rel_l2 2e-2 (the project's 16-bit rule). A missing folder fails.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "mcv/checkpoint.h"
#include "mcv/context.h"
#include "mcv/kernels/selective_scan.h"
#include "test_support.h"

namespace mcv::test {
namespace {

const char* const kOracles[] = {
    "selective_scan_l1024_grouped",    "selective_scan_l197_full", "selective_scan_l197_n1_grp_nozD",
    "selective_scan_l1_step",          "selective_scan_l7_fixedBC", "selective_scan_l7_n1_plain",
};

struct Oracle {
  Checkpoint io;
  nlohmann::json config;
};

Oracle load(const std::string& name) {
  const std::filesystem::path dir = oracle_dir() / name;
  std::ifstream f(dir / "config.json");
  if (!f) throw std::runtime_error("missing oracle " + dir.string());
  return {Checkpoint::open(dir / "io.safetensors"), nlohmann::json::parse(f)};
}

double rel_l2(const Tensor& got, const Tensor& want, double* max_abs) {
  const std::vector<float> g = got.to(Device::cpu()).to_vector(), w = want.to_vector();
  double num = 0, den = 0;
  *max_abs = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double d = std::isfinite(g[i]) ? std::abs(static_cast<double>(g[i]) - w[i]) : INFINITY;
    *max_abs = std::max(*max_abs, d);
    num += d * d;
    den += static_cast<double>(w[i]) * w[i];
  }
  return std::sqrt(num / den);
}

void run_oracle(const std::string& name, Device device, DType dtype) {
  const Oracle o = load(name);
  Context ctx(device);
  auto get = [&](const char* key, bool io_dtype) {
    if (!o.io.contains(key)) return Tensor();
    Tensor t = o.io.at(key).to(device);
    return io_dtype && dtype != DType::f32 ? t.to(dtype) : t;
  };
  kernels::SelectiveScanArgs a;
  a.u = get("u", true);
  a.delta = get("delta", true);
  a.A = get("A", false);
  a.B = get("B", true);
  a.C = get("C", true);
  a.D = get("D", false);
  a.z = get("z", true);
  a.delta_bias = get("delta_bias", false);
  a.delta_softplus = o.config["official"]["args"]["delta_softplus"].get<bool>();
  a.out = Tensor::empty(a.u.shape(), dtype, device);
  poison(a.out);
  const Tensor& want_state = o.io.at("last_state");
  a.final_state = Tensor::empty(want_state.shape(), DType::f32, device);
  poison(a.final_state);
  kernels::selective_scan(ctx, a);
  ctx.synchronize();

  double max_abs = 0;
  const double rel = rel_l2(a.out, o.io.at("out"), &max_abs);
  if (dtype == DType::f32) {
    const auto& tol = o.config["tolerance"];
    EXPECT_LE(max_abs, tol["max_abs"].get<double>()) << name << " out";
    EXPECT_LE(rel, tol["rel_l2"].get<double>()) << name << " out";
    double smax = 0;
    const double srel = rel_l2(a.final_state, want_state, &smax);
    const auto& stol = o.config["tolerance_last_state"];
    EXPECT_LE(smax, stol["max_abs"].get<double>()) << name << " last_state";
    EXPECT_LE(srel, stol["rel_l2"].get<double>()) << name << " last_state";
  } else {
    EXPECT_LE(rel, 2e-2) << name << " out in " << dtype_name(dtype);
  }
}

class SelectiveScanOracle : public ::testing::TestWithParam<const char*> {};

TEST_P(SelectiveScanOracle, CpuF32) { run_oracle(GetParam(), Device::cpu(), DType::f32); }
TEST_P(SelectiveScanOracle, CpuBf16) { run_oracle(GetParam(), Device::cpu(), DType::bf16); }
TEST_P(SelectiveScanOracle, CudaF32) {
  MCV_REQUIRE_CUDA();
  run_oracle(GetParam(), Device::cuda(0), DType::f32);
}
TEST_P(SelectiveScanOracle, CudaBf16) {
  MCV_REQUIRE_CUDA();
  run_oracle(GetParam(), Device::cuda(0), DType::bf16);
}

INSTANTIATE_TEST_SUITE_P(Folders, SelectiveScanOracle, ::testing::ValuesIn(kOracles),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

}  // namespace
}  // namespace mcv::test
