#include <gtest/gtest.h>

#include "test_support.h"

namespace mcv::test_cli_selftest {
namespace {

TEST(CliSelftest, PassesOnThisMachine) {
  std::string out;
  EXPECT_EQ(test::run_cli({"selftest"}, &out), 0) << out;
  EXPECT_NE(out.find("selftest passed"), std::string::npos) << out;
  EXPECT_NE(out.find("cross2d fused vs explicit composition"), std::string::npos) << out;
}

TEST(CliSelftest, BadDeviceIsExitTwo) {
  std::string out;
  EXPECT_EQ(test::run_cli({"selftest", "--device", "tpu:0"}, &out), 2) << out;
  EXPECT_NE(out.find("mcv: tpu:0: unknown device"), std::string::npos) << out;
}

}  // namespace
}  // namespace mcv::test_cli_selftest
