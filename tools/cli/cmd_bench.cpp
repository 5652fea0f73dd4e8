// mcv bench kernels | mcv bench model NAME : benchmarks (not timed tests). Prints a table and
// optionally writes JSON.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "command.h"
#include "mcv/error.h"
#include "mcv/file.h"
#include "mcv/kernels/selective_scan_bench.h"
#include "mcv/vision_bench.h"

namespace mcv::cli::cmd_bench {
namespace {

struct BenchOptions {
  std::string what, model, device = "cuda", json, dtypes = "bf16,f32", only;
  std::vector<int> batches{128, 1};
  int runs = 50, warmup = 5;
  bool no_graph = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int bench_kernels(const BenchOptions& o) {
  Context ctx(parse_device(o.device));
  kernels::ScanBenchOptions options;
  options.runs = o.runs;
  options.warmup = o.warmup;
  const auto dtypes = split_list(o.dtypes);
  options.bf16 = std::find(dtypes.begin(), dtypes.end(), "bf16") != dtypes.end();
  options.f32 = std::find(dtypes.begin(), dtypes.end(), "f32") != dtypes.end();
  options.only = split_list(o.only);
  const auto results = kernels::bench_selective_scan(ctx, options);
  std::printf("%s", kernels::format_scan_bench(results).c_str());
  if (!o.json.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : results)
      j.push_back({{"name", r.name}, {"dtype", r.dtype}, {"shape", r.shape}, {"ms", r.ms}, {"bytes", r.bytes},
                   {"gbps", r.gbps}, {"floor_ms", r.floor_ms}, {"ratio_to_floor", r.ratio},
                   {"official_ms", r.reference_ms}, {"note", r.note}});
    write_file_atomic(o.json, j.dump(2) + "\n");
  }
  return kExitOk;
}

int bench_model(const BenchOptions& o) {
  nlohmann::json j = nlohmann::json::array();
  std::printf("%-40s %-7s %-6s %6s %10s %10s %12s %10s %s\n", "model", "device", "dtype", "batch", "median ms",
              "min ms", "images/s", "peak MiB", "graph");
  bool finite = true;
  for (const std::string& dtype : split_list(o.dtypes)) {
    for (int batch : o.batches) {
      vision::ModelBenchOptions options;
      options.device = parse_device(o.device);
      options.dtype = parse_dtype(dtype);
      options.batch = batch;
      options.runs = o.runs;
      options.warmup = o.warmup;
      options.cuda_graph = !o.no_graph;
      const auto r = vision::bench_model(o.model, options);
      std::printf("%-40s %-7s %-6s %6d %10.3f %10.3f %12.1f %10.1f %s%s\n", r.model.substr(0, 40).c_str(),
                  r.device.c_str(), r.dtype.c_str(), r.batch, r.median_ms, r.min_ms, r.images_per_second,
                  r.peak_memory_bytes / 1048576.0, r.cuda_graph ? "yes" : "no", r.finite ? "" : "  NON-FINITE LOGITS");
      std::fflush(stdout);
      finite = finite && r.finite;
      j.push_back({{"model", r.model}, {"device", r.device}, {"dtype", r.dtype}, {"batch", r.batch},
                   {"height", r.height}, {"width", r.width}, {"median_ms", r.median_ms}, {"min_ms", r.min_ms},
                   {"images_per_second", r.images_per_second}, {"peak_memory_bytes", r.peak_memory_bytes},
                   {"cuda_graph", r.cuda_graph}, {"finite", r.finite}});
    }
  }
  if (!o.json.empty()) write_file_atomic(o.json, j.dump(2) + "\n");
  return finite ? kExitOk : kExitCheckFailed;
}

const McvCommand kCommand("bench", "Benchmark the kernels or a model", [](CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.require_subcommand(1);
  auto* kernels = app.add_subcommand("kernels", "Selective-scan shapes S1-S6 and the fused model compositions");
  auto* model = app.add_subcommand("model", "A registered model with random weights");
  model->add_option("name", o->model, "Model name or alias")->required();
  for (auto* sub : {kernels, model}) {
    sub->add_option("--device", o->device, "cpu, cuda or cuda:N");
    sub->add_option("--json", o->json, "Write the results as JSON");
    sub->add_option("--runs", o->runs, "Timed runs (median)");
    sub->add_option("--warmup", o->warmup, "Warm-up runs");
    sub->add_option("--dtypes", o->dtypes, "Comma-separated dtypes (bf16,f16,f32)");
  }
  kernels->add_option("--only", o->only, "Comma-separated shape names (e.g. S1,S6)");
  model->add_option("--batch", o->batches, "Batch sizes (repeatable)")->delimiter(',');
  model->add_flag("--no-graph", o->no_graph, "Launch the forward pass eagerly instead of replaying a CUDA graph");
  return [o, kernels] { return kernels->parsed() ? bench_kernels(*o) : bench_model(*o); };
});

}  // namespace
}  // namespace mcv::cli::cmd_bench
