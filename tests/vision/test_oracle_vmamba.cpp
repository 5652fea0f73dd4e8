// VMamba oracle parity: every oracle folder of the "vmamba" family (vanilla v0 and v05_noz/ln2d)
// passes the check-oracle rules on the CPU in f32 (logits within the folder's tolerance, every
// recorded intermediate within 20x its f32-vs-f64 error), and on CUDA in f32 and bf16 where a GPU
// is present. The oracle folders are test data: a missing one is a failure, not a skip.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "oracle.h"
#include "test_support.h"

namespace mcv::oracle {
namespace {

const char* const kExpected[] = {"vmamba_v0_tiny_small", "vmamba_v2_s1l8_small"};

std::vector<std::filesystem::path> vmamba_oracles() {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  if (!std::filesystem::is_directory(test::oracle_dir(), ec)) return found;
  for (const auto& entry : std::filesystem::directory_iterator(test::oracle_dir())) {
    const auto config_path = entry.path() / "config.json";
    if (!entry.is_directory() || !std::filesystem::exists(config_path)) continue;
    std::ifstream in(config_path);
    const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_object() && config.value("family", "") == "vmamba") found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

void expect_oracle_passes(const std::filesystem::path& dir, Device device, DType dtype) {
  SCOPED_TRACE(dir.filename().string() + " [" + device.str() + ", " + dtype_name(dtype) + "]");
  const OracleResult result = run_oracle(dir, {device, dtype});
  int outputs = 0, intermediates = 0;
  for (const TensorCheck& c : result.checks) {
    ++(c.is_output ? outputs : intermediates);
    EXPECT_TRUE(c.passed) << c.name << ": max_abs " << c.max_abs << " (limit " << c.limit_max_abs << "), rel_l2 "
                          << c.rel_l2 << " (limit " << c.limit_rel_l2 << "), non-finite " << c.non_finite;
  }
  EXPECT_EQ(outputs, 1);
  // The port taps every intermediate the oracle recorded, so none goes unchecked.
  int recorded = 0;
  const OracleFolder folder = OracleFolder::open(dir);
  for (const auto& [name, tensor] : folder.io.tensors()) recorded += name.rfind("feat.", 0) == 0;
  EXPECT_EQ(intermediates, recorded);
  EXPECT_TRUE(result.passed);
}

TEST(VmambaOracle, FoldersArePresent) {
  for (const char* name : kExpected)
    EXPECT_TRUE(std::filesystem::is_directory(test::oracle_dir() / name))
        << "missing oracle folder " << (test::oracle_dir() / name);
  EXPECT_GE(vmamba_oracles().size(), std::size(kExpected));
}

TEST(VmambaOracle, CpuF32) {
  const auto dirs = vmamba_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vmamba oracle under " << test::oracle_dir();
  for (const auto& dir : dirs) expect_oracle_passes(dir, Device::cpu(), DType::f32);
}

TEST(VmambaOracle, CudaF32AndBf16) {
  MCV_REQUIRE_CUDA();
  const auto dirs = vmamba_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vmamba oracle under " << test::oracle_dir();
  for (const auto& dir : dirs) {
    expect_oracle_passes(dir, Device::cuda(), DType::f32);
    expect_oracle_passes(dir, Device::cuda(), DType::bf16);
  }
}

}  // namespace
}  // namespace mcv::oracle
