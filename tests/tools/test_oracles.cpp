// Every oracle folder of a family this build supports passes `mcv check-oracle` rules on the CPU
// (and on CUDA where a GPU is). A missing oracle folder fails: it is test data, not optional.

#include <gtest/gtest.h>

#include "mcv/error.h"
#include "oracle.h"
#include "test_support.h"

namespace mcv::oracle {
namespace {

std::vector<std::filesystem::path> oracle_folders(const std::string& prefix) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(test::oracle_dir()))
    if (e.is_directory() && e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void expect_passes(const std::filesystem::path& dir, Device device, DType dtype) {
  SCOPED_TRACE(dir.filename().string() + " on " + device.str() + " " + dtype_name(dtype));
  const OracleResult r = run_oracle(dir, {device, dtype});
  for (const auto& c : r.checks)
    EXPECT_TRUE(c.passed) << c.name << ": max_abs " << c.max_abs << " (limit " << c.limit_max_abs << "), rel_l2 "
                          << c.rel_l2 << " (limit " << c.limit_rel_l2 << "), non-finite " << c.non_finite;
  EXPECT_TRUE(r.passed);
}

TEST(Oracles, FolderIsPresent) {
  ASSERT_TRUE(std::filesystem::is_directory(test::oracle_dir())) << "missing oracle folder " << test::oracle_dir();
}

TEST(Oracles, SelectiveScanCpu) {
  const auto dirs = oracle_folders("selective_scan_");
  ASSERT_EQ(dirs.size(), 6u);
  for (const auto& d : dirs) expect_passes(d, Device::cpu(), DType::f32);
}

TEST(Oracles, SelectiveScanCuda) {
  MCV_REQUIRE_CUDA();
  for (const auto& d : oracle_folders("selective_scan_")) {
    expect_passes(d, Device::cuda(), DType::f32);
    expect_passes(d, Device::cuda(), DType::bf16);
    expect_passes(d, Device::cuda(), DType::f16);
  }
}

TEST(Oracles, UnknownFamilyIsAnError) {
  const auto dir = test::temp_dir();
  test::write_file(dir / "config.json", R"({"family": "transformer_xl"})");
  std::filesystem::copy_file(test::oracle_dir() / "selective_scan_l7_n1_plain" / "io.safetensors", dir / "io.safetensors");
  EXPECT_THROW(run_oracle(dir, {}), Error);
}

}  // namespace
}  // namespace mcv::oracle
