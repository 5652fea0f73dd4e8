#pragma once
// Oracle-parity helpers shared by the family suites (header-only: only suites that link
// mcv_oracle include it). The oracle folders are test data: a missing one fails, never skips.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "oracle.h"
#include "test_support.h"

namespace mcv::oracle::test_support {

/// Every oracle folder under test::oracle_dir() whose config.json names `family`, sorted.
inline std::vector<std::filesystem::path> oracle_folders(const std::string& family) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(mcv::test::oracle_dir(), ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(mcv::test::oracle_dir())) {
    if (!e.is_directory() || !std::filesystem::exists(e.path() / "config.json")) continue;
    std::ifstream in(e.path() / "config.json");
    const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_object() && config.value("family", "") == family) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Runs one folder and expects every check to pass, with every intermediate the oracle recorded
/// produced by the port (none silently skipped).
inline void expect_oracle_passes(const std::filesystem::path& dir, Device device, DType dtype) {
  SCOPED_TRACE(dir.filename().string() + " [" + device.str() + ", " + dtype_name(dtype) + "]");
  const OracleResult result = run_oracle(dir, {device, dtype});
  int outputs = 0, intermediates = 0;
  for (const TensorCheck& c : result.checks) {
    ++(c.is_output ? outputs : intermediates);
    EXPECT_TRUE(c.passed) << c.name << ": max_abs " << c.max_abs << " (limit " << c.limit_max_abs << "), rel_l2 "
                          << c.rel_l2 << " (limit " << c.limit_rel_l2 << "), non-finite " << c.non_finite;
  }
  EXPECT_GE(outputs, 1);
  int recorded = 0;
  const OracleFolder folder = OracleFolder::open(dir);  // kept alive: the loop reads its tensor map
  for (const auto& [name, tensor] : folder.io.tensors()) recorded += name.rfind("feat.", 0) == 0;
  EXPECT_EQ(intermediates, recorded);
  EXPECT_TRUE(result.passed);
}

}  // namespace mcv::oracle::test_support
