// Runner of the selective-scan benchmark (disabled: run it on purpose, on a GPU machine):
//   mcv_kernels_tests --gtest_also_run_disabled_tests --gtest_filter='SelectiveScanBench.*'
// MCV_SCAN_BENCH_ONLY=S1,S6,vim,vmamba limits the shapes; MCV_SCAN_BENCH_VARIANTS=1 adds each
// single-call shape reversed and without z (and the short ones at L = 200, whose rows are 16-byte
// aligned: what the aligned kernels would give them). DISABLED_Tune times the launch
// heuristics' alternatives (lanes per channel, L-chunk counts) on the shapes they affect.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

#include "mcv/context.h"
#include "mcv/kernels/selective_scan_bench.h"
#include "test_support.h"

namespace mcv::kernels {
namespace {

Device bench_device() { return test::have_cuda() ? Device::cuda(0) : Device::cpu(); }

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  if (!s) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
  return out;
}

TEST(SelectiveScanBench, DISABLED_Run) {
  Context ctx(bench_device());
  ScanBenchOptions opt;
  opt.only = split(std::getenv("MCV_SCAN_BENCH_ONLY"));
  opt.variants = std::getenv("MCV_SCAN_BENCH_VARIANTS") != nullptr;  // S* also reversed, without z, at L = 200, token-major
  // MCV_SCAN_BENCH_PAD_MB: a device allocation of that size held through the run, so that the
  // benchmark's tensors land elsewhere (placement comparisons).
  const char* pad_mb = std::getenv("MCV_SCAN_BENCH_PAD_MB");
  const Tensor pad = pad_mb ? Tensor::empty({std::atoll(pad_mb) << 20}, DType::u8, ctx.device()) : Tensor();
  const auto results = bench_selective_scan(ctx, opt);
  std::printf("%s", format_scan_bench(results).c_str());
}

TEST(SelectiveScanBench, DISABLED_Tune) {
  MCV_REQUIRE_CUDA();
  Context ctx(Device::cuda(0));
  auto run = [&](const char* lanes, const char* chunks, std::vector<std::string> only) {
    if (lanes) setenv("MCV_SCAN_LANES", lanes, 1); else unsetenv("MCV_SCAN_LANES");
    if (chunks) setenv("MCV_SCAN_CHUNKS", chunks, 1); else unsetenv("MCV_SCAN_CHUNKS");
    ScanBenchOptions opt;
    opt.f32 = false;
    opt.compositions = false;
    opt.only = std::move(only);
    opt.runs = 30;
    const auto results = bench_selective_scan(ctx, opt);
    std::printf("-- lanes=%s chunks=%s\n%s", lanes ? lanes : "auto", chunks ? chunks : "auto",
                format_scan_bench(results).c_str());
  };
  for (const char* lanes : {"1", "2"}) run(lanes, nullptr, {"S1", "S5"});
  for (auto [lanes, chunks] : {std::pair{"2", "8"}, {"2", "11"}, {"2", "16"}, {"4", "11"}, {"1", "22"}})
    run(lanes, chunks, {"S6"});
  for (const char* lanes : {"2", "4"}) {
    setenv("MCV_SCAN_LANES", lanes, 1);
    unsetenv("MCV_SCAN_CHUNKS");
    ScanBenchOptions opt;
    opt.f32 = false;
    opt.only = {"vmamba"};
    opt.runs = 30;
    std::printf("-- lanes=%s\n%s", lanes, format_scan_bench(bench_selective_scan(ctx, opt)).c_str());
  }
  unsetenv("MCV_SCAN_LANES");
  unsetenv("MCV_SCAN_CHUNKS");
}

}  // namespace
}  // namespace mcv::kernels
