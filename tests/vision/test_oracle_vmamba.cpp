// VMamba oracle parity: every oracle folder of the "vmamba" family (vanilla v0 and v05_noz/ln2d)
// passes the check-oracle rules on the CPU in f32 (logits within the folder's tolerance, every
// recorded intermediate within 20x its f32-vs-f64 error), and on CUDA in f32 and bf16 where a GPU
// is present. The oracle folders are test data: a missing one is a failure, not a skip.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "oracle_test_support.h"

namespace mcv::oracle::test_oracle_vmamba {
namespace {

const char* const kExpected[] = {"vmamba_v0_tiny_small", "vmamba_v2_s1l8_small"};

std::vector<std::filesystem::path> vmamba_oracles() { return test_support::oracle_folders("vmamba"); }

using test_support::expect_oracle_passes;

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
}  // namespace mcv::oracle::test_oracle_vmamba
