#pragma once
// Shared test helpers: data locations, CUDA availability, random tensors, comparisons.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mcv/tensor.h"

namespace mcv::test {

std::filesystem::path source_dir();
std::filesystem::path oracle_dir();
std::filesystem::path fixture_dir();
std::filesystem::path cli_path();
/// A fresh empty folder under the system temp dir, removed at process exit.
std::filesystem::path temp_dir();

bool have_cuda();
/// In a test body: skips (reported as skipped, not passed) when no GPU can run.
#define MCV_REQUIRE_CUDA() \
  do { if (!::mcv::test::have_cuda()) GTEST_SKIP() << "no CUDA device"; } while (0)

/// Standard-normal (scaled) random CPU tensor of any float dtype.
Tensor random_tensor(const Shape& shape, DType dtype, std::uint64_t seed, float scale = 1.0f,
                     float offset = 0.0f);
/// Fills with NaN (floats) or 0xA5 bytes so unwritten elements fail comparisons.
void poison(Tensor& t);

struct Diff {
  double max_abs = 0, rel_l2 = 0;
  std::int64_t non_finite = 0;
};
/// Compares any two tensors of one shape (any dtype/device) in double precision.
Diff compare(const Tensor& got, const Tensor& want);

/// Runs the mcv CLI with arguments; returns exit code, captures stdout+stderr into `output`.
int run_cli(const std::vector<std::string>& args, std::string* output);

/// Writes bytes to a file (test fixtures made on the fly).
void write_file(const std::filesystem::path& path, const std::string& bytes);
std::string read_file(const std::filesystem::path& path);

}  // namespace mcv::test
