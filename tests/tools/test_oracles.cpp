// Every oracle folder of a family this build supports passes `mcv check-oracle` rules on the CPU
// (and on CUDA where a GPU is). A missing oracle folder fails: it is test data, not optional.

#include <gtest/gtest.h>

#include "mcv/error.h"
#include "oracle_test_support.h"

namespace mcv::oracle::test_oracles {
namespace {

using test_support::expect_oracle_passes;
using test_support::oracle_folders;

TEST(Oracles, FolderIsPresent) {
  ASSERT_TRUE(std::filesystem::is_directory(test::oracle_dir())) << "missing oracle folder " << test::oracle_dir();
}

TEST(Oracles, SelectiveScanCpu) {
  const auto dirs = oracle_folders("selective_scan");
  ASSERT_EQ(dirs.size(), 6u);
  for (const auto& d : dirs) expect_oracle_passes(d, Device::cpu(), DType::f32);
}

TEST(Oracles, SelectiveScanCuda) {
  MCV_REQUIRE_CUDA();
  for (const auto& d : oracle_folders("selective_scan")) {
    expect_oracle_passes(d, Device::cuda(), DType::f32);
    expect_oracle_passes(d, Device::cuda(), DType::bf16);
    expect_oracle_passes(d, Device::cuda(), DType::f16);
  }
}

TEST(Oracles, UnknownFamilyIsAnError) {
  const auto dir = test::temp_dir();
  test::write_file(dir / "config.json", R"({"family": "transformer_xl"})");
  std::filesystem::copy_file(test::oracle_dir() / "selective_scan_l7_n1_plain" / "io.safetensors", dir / "io.safetensors");
  EXPECT_THROW(run_oracle(dir, {}), Error);
}

}  // namespace
}  // namespace mcv::oracle::test_oracles
