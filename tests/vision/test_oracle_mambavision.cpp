// MambaVision oracle parity: every oracle folder whose config names the "mambavision" family
// passes the check-oracle rules (f32 outputs within the folder's tolerance, every intermediate
// within 20x its recorded f32-vs-f64 error) on the CPU, and on CUDA in f32 and bf16 where a GPU
// is. The oracles are test data: a missing folder fails.

#include <gtest/gtest.h>

#include <fstream>

#include "mcv/error.h"
#include "oracle_test_support.h"

namespace mcv::oracle::test_oracle_mambavision {
namespace {

std::vector<std::filesystem::path> mambavision_oracles() { return test_support::oracle_folders("mambavision"); }

using test_support::expect_oracle_passes;

TEST(MambaVisionOracle, FoldersArePresent) {
  ASSERT_TRUE(std::filesystem::is_directory(test::oracle_dir() / "mambavision_t_small"))
      << "missing oracle folder " << (test::oracle_dir() / "mambavision_t_small");
  EXPECT_FALSE(mambavision_oracles().empty());
}

TEST(MambaVisionOracle, Cpu) {
  const auto dirs = mambavision_oracles();
  ASSERT_FALSE(dirs.empty()) << "no mambavision oracle under " << test::oracle_dir();
  for (const auto& d : dirs) expect_oracle_passes(d, Device::cpu(), DType::f32);
}

TEST(MambaVisionOracle, CudaF32AndBf16) {
  MCV_REQUIRE_CUDA();
  const auto dirs = mambavision_oracles();
  ASSERT_FALSE(dirs.empty());
  for (const auto& d : dirs) {
    expect_oracle_passes(d, Device::cuda(), DType::f32);
    expect_oracle_passes(d, Device::cuda(), DType::bf16);
  }
}

}  // namespace
}  // namespace mcv::oracle::test_oracle_mambavision
