// mcv bench model: random weights of the right scale for each parameter role, random inputs, the
// forward pass timed on the device (CUDA events; a captured CUDA graph by default).

#include <algorithm>
#include <cmath>
#include <random>

#include "mcv/cuda_graph.h"
#include "mcv/error.h"
#include "mcv/vision_bench.h"
#include "model.h"

namespace mcv::vision {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Initialises like the official code would, so activations stay in range and timing runs on
// realistic, finite values: A_log = log(1..N), D = 1, dt bias = softplus^-1(0.01), norm weights
// 1, biases and running means 0, running variances 1, everything else N(0, 0.02).
std::map<std::string, Tensor> random_weights(Module& model) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::map<std::string, Tensor> out;
  model.visit_params([&](const std::string& name, Param& p) {
    Tensor t = Tensor::empty(p.shape, p.kind == ParamKind::ignored ? DType::i64 : DType::f32);
    if (p.kind == ParamKind::ignored) {
      t.fill(0);
      out[name] = t;
      return;
    }
    float* v = t.data<float>();
    const std::int64_t n = t.numel();
    const std::int64_t last = p.shape.empty() ? 1 : p.shape.back();
    if (ends_with(name, "A_log") || ends_with(name, "A_logs") || ends_with(name, "A_b_log")) {
      for (std::int64_t i = 0; i < n; ++i) v[i] = std::log(static_cast<float>(i % last + 1));
    } else if (ends_with(name, "running_var")) {
      std::fill(v, v + n, 1.0f);
    } else if (ends_with(name, "running_mean") || ends_with(name, "bias") || ends_with(name, "_bias")) {
      const bool dt_bias = name.find("dt_proj") != std::string::npos || ends_with(name, "dt_bias");
      std::fill(v, v + n, dt_bias ? std::log(std::expm1(0.01f)) : 0.0f);
    } else if (p.shape.size() == 1 && (ends_with(name, ".D") || ends_with(name, "Ds") || ends_with(name, "D_b") ||
                                       ends_with(name, "weight") || ends_with(name, "gamma"))) {
      std::fill(v, v + n, 1.0f);
    } else {
      for (std::int64_t i = 0; i < n; ++i) v[i] = normal(rng);
    }
    out[name] = t;
  });
  return out;
}

}  // namespace

ModelBenchResult bench_model(const std::string& name, const ModelBenchOptions& options) {
  MCV_CHECK(options.batch >= 1, "--batch ", options.batch, ": must be at least 1");
  MCV_CHECK(options.runs >= 1 && options.warmup >= 0, "bench: runs must be >= 1");
  const ModelSpec& spec = find_spec(name);
  const Family& family = find_family(spec.info.family);
  std::unique_ptr<VisionModel> model = family.build(spec.args);
  Context ctx(options.device);
  LoadOptions load;
  load.device = options.device;
  load.dtype = options.dtype;
  load_state_dict(*model, random_weights(*model), "random weights", ctx, load);

  ModelBenchResult r;
  r.model = spec.info.name;
  r.device = options.device.str();
  r.dtype = dtype_name(options.dtype);
  r.batch = options.batch;
  r.height = options.height > 0 ? options.height : spec.info.preprocess.input_height;
  r.width = options.width > 0 ? options.width : spec.info.preprocess.input_width;
  const Shape input_shape{options.batch, 3, r.height, r.width};
  model->check_input(input_shape);

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor host = Tensor::empty(input_shape, DType::f32);
  for (std::int64_t i = 0; i < host.numel(); ++i) host.data<float>()[i] = normal(rng);
  const Tensor input = host.to(options.device);

  Tensor logits;
  std::vector<double> times;
  DeviceTimer timer(ctx);
  {
    // Every activation comes from the context's arena: the first pass sizes it, the reset after
    // it makes one block of the high-water size, so later passes (and a captured graph)
    // allocate nothing.
    ContextScope scope(ctx, /*use_arena=*/true);
    auto pass = [&] {
      ctx.workspace().reset();
      logits = model->forward(ctx, input);
    };
    for (int i = 0; i < std::max(options.warmup, 2); ++i) pass();
    ctx.synchronize();
    std::unique_ptr<CudaGraph> graph;
    if (options.device.is_cuda() && options.cuda_graph) {
      ctx.workspace().reset();
      graph = std::make_unique<CudaGraph>(ctx);
      graph->begin();
      logits = model->forward(ctx, input);
      graph->end();
      graph->replay();
      ctx.synchronize();
      r.cuda_graph = true;
    }
    // Peak memory of the steady state (weights, input, the arena sized by the warm-up passes and
    // whatever the timed passes add), not of the warm-up that sizes the arena.
    if (options.device.is_cuda()) reset_cuda_peak_memory(options.device.index);
    for (int i = 0; i < options.runs; ++i) {
      timer.start();
      if (graph)
        graph->replay();
      else
        pass();
      times.push_back(timer.stop_ms());
    }
    ctx.synchronize();
  }
  std::sort(times.begin(), times.end());
  r.median_ms = times[times.size() / 2];
  r.min_ms = times.front();
  r.images_per_second = options.batch / (r.median_ms / 1000.0);
  if (options.device.is_cuda()) r.peak_memory_bytes = cuda_memory_stats(options.device.index).peak_in_use;
  for (float v : logits.to_vector()) r.finite = r.finite && std::isfinite(v);
  return r;
}

}  // namespace mcv::vision
