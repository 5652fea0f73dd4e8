// Vim oracle parity: every oracle folder whose config names the "vim" family passes the
// check-oracle rules (f32 outputs within the folder's tolerance, every recorded intermediate within
// 20x its float32-vs-float64 error) on the CPU, and on CUDA in f32 and bf16 where a GPU is. The
// oracles are test data: a missing folder fails.

#include <gtest/gtest.h>

#include <fstream>

#include "oracle_test_support.h"

namespace mcv::oracle::test_oracle_vim {
namespace {

std::vector<std::filesystem::path> vim_oracles() { return test_support::oracle_folders("vim"); }

using test_support::expect_oracle_passes;

TEST(VimOracle, FoldersArePresent) {
  ASSERT_TRUE(std::filesystem::is_directory(test::oracle_dir() / "vim_tiny_d4"))
      << "missing oracle folder " << (test::oracle_dir() / "vim_tiny_d4");
  EXPECT_FALSE(vim_oracles().empty());
}

TEST(VimOracle, Cpu) {
  const auto dirs = vim_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vim oracle under " << test::oracle_dir();
  for (const auto& d : dirs) expect_oracle_passes(d, Device::cpu(), DType::f32);
}

TEST(VimOracle, CudaF32AndBf16) {
  MCV_REQUIRE_CUDA();
  const auto dirs = vim_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vim oracle under " << test::oracle_dir();
  for (const auto& d : dirs) {
    expect_oracle_passes(d, Device::cuda(), DType::f32);
    expect_oracle_passes(d, Device::cuda(), DType::bf16);
  }
}

}  // namespace
}  // namespace mcv::oracle::test_oracle_vim
