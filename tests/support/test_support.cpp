#include "test_support.h"

#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "mcv/device.h"

namespace mcv::test {

std::filesystem::path source_dir() { return MCV_SOURCE_DIR; }
std::filesystem::path oracle_dir() { return MCV_ORACLE_DIR; }
std::filesystem::path fixture_dir() { return MCV_FIXTURE_DIR; }
std::filesystem::path cli_path() { return MCV_CLI_PATH; }

std::filesystem::path temp_dir() {
  static const std::filesystem::path root = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "mcv-test-XXXXXX").string();
    const char* made = mkdtemp(pattern.data());
    if (!made) throw std::runtime_error("mkdtemp failed");
    std::filesystem::path p = made;
    static struct Cleanup {
      std::filesystem::path p;
      ~Cleanup() { std::error_code ec; std::filesystem::remove_all(p, ec); }
    } cleanup{p};
    return p;
  }();
  static int counter = 0;
  auto dir = root / std::to_string(counter++);
  std::filesystem::create_directories(dir);
  return dir;
}

bool have_cuda() { return cuda_device_count() > 0; }

Tensor random_tensor(const Shape& shape, DType dtype, std::uint64_t seed, float scale, float offset) {
  Tensor f = Tensor::empty(shape, DType::f32);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* p = f.data<float>();
  for (std::int64_t i = 0; i < f.numel(); ++i) p[i] = offset + scale * normal(rng);
  return dtype == DType::f32 ? f : f.to(dtype);
}

void poison(Tensor& t) {
  if (is_floating(t.dtype()))
    t.fill(std::nan(""));
  else
    t.fill(-91);  // 0xA5 in a byte
}

Diff compare(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(shape_str(got.shape()), shape_str(want.shape()));
  Diff d;
  if (got.shape() != want.shape()) {
    d.max_abs = d.rel_l2 = INFINITY;
    return d;
  }
  const Tensor g = got.device().is_cpu() ? got : got.to(Device::cpu());
  const Tensor w = want.device().is_cpu() ? want : want.to(Device::cpu());
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    const double a = g.item(i), b = w.item(i);
    if (!std::isfinite(a)) {
      ++d.non_finite;
      continue;
    }
    d.max_abs = std::max(d.max_abs, std::abs(a - b));
    num += (a - b) * (a - b);
    den += b * b;
  }
  d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (d.non_finite) d.max_abs = d.rel_l2 = INFINITY;
  return d;
}

int run_cli(const std::vector<std::string>& args, std::string* output) {
  std::string cmd = "'" + cli_path().string() + "'";
  for (const auto& a : args) {
    std::string quoted;
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " '" + quoted + "'";
  }
  cmd += " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace mcv::test
