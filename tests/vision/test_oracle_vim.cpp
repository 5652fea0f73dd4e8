// Vim oracle parity: every oracle folder whose config names the "vim" family passes the
// check-oracle rules (f32 outputs within the folder's tolerance, every recorded intermediate within
// 20x its float32-vs-float64 error) on the CPU, and on CUDA in f32 and bf16 where a GPU is. The
// oracles are test data: a missing folder fails.

#include <gtest/gtest.h>

#include <fstream>

#include "oracle.h"
#include "test_support.h"

namespace mcv::oracle {
namespace {

std::vector<std::filesystem::path> vim_oracles() {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(test::oracle_dir(), ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(test::oracle_dir())) {
    if (!e.is_directory() || !std::filesystem::exists(e.path() / "config.json")) continue;
    std::ifstream in(e.path() / "config.json");
    const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_object() && config.value("family", "") == "vim") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void expect_passes(const std::filesystem::path& dir, Device device, DType dtype) {
  SCOPED_TRACE(dir.filename().string() + " on " + device.str() + " " + dtype_name(dtype));
  const OracleResult r = run_oracle(dir, {device, dtype});
  int outputs = 0, intermediates = 0;
  for (const auto& c : r.checks) {
    (c.is_output ? outputs : intermediates)++;
    EXPECT_TRUE(c.passed) << c.name << ": max_abs " << c.max_abs << " (limit " << c.limit_max_abs << "), rel_l2 "
                          << c.rel_l2 << " (limit " << c.limit_rel_l2 << "), non-finite " << c.non_finite;
  }
  EXPECT_EQ(outputs, 1);
  // Every intermediate the oracle recorded is produced by the port, none silently skipped.
  std::int64_t recorded = 0;
  const OracleFolder folder = OracleFolder::open(dir);  // kept alive: the loop reads its tensor map
  for (const auto& [name, t] : folder.io.tensors()) recorded += name.rfind("feat.", 0) == 0;
  EXPECT_EQ(intermediates, recorded);
  EXPECT_TRUE(r.passed);
}

TEST(VimOracle, FoldersArePresent) {
  ASSERT_TRUE(std::filesystem::is_directory(test::oracle_dir() / "vim_tiny_d4"))
      << "missing oracle folder " << (test::oracle_dir() / "vim_tiny_d4");
  EXPECT_FALSE(vim_oracles().empty());
}

TEST(VimOracle, Cpu) {
  const auto dirs = vim_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vim oracle under " << test::oracle_dir();
  for (const auto& d : dirs) expect_passes(d, Device::cpu(), DType::f32);
}

TEST(VimOracle, CudaF32AndBf16) {
  MCV_REQUIRE_CUDA();
  const auto dirs = vim_oracles();
  ASSERT_FALSE(dirs.empty()) << "no vim oracle under " << test::oracle_dir();
  for (const auto& d : dirs) {
    expect_passes(d, Device::cuda(), DType::f32);
    expect_passes(d, Device::cuda(), DType::bf16);
  }
}

}  // namespace
}  // namespace mcv::oracle
