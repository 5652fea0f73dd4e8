// mcv eval --model NAME --weights FILE --data DIR : top-1 / top-5 / per-class accuracy and
// throughput. Images are decoded and preprocessed by worker threads a few batches ahead so the
// device stays busy; unreadable images are skipped and counted, never fatal.

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "command.h"
#include "eval_dataset.h"
#include "mcv/error.h"
#include "mcv/file.h"
#include "mcv/progress.h"
#include "mcv/vision.h"

namespace mcv::cli::cmd_eval {
namespace {

struct EvalOptions {
  std::string model, weights, data, labels, json, device = "cpu", dtype = "f32";
  int batch = 32, workers = 0;
  long long limit = 0;
  bool quiet = false;
};

// Decodes samples into a ring of `depth` batch buffers. Workers claim sample indices in order and
// wait while their batch is more than `depth` batches ahead of the consumer.
class Prefetcher {
 public:
  Prefetcher(const std::vector<EvalSample>& samples, const vision::Model& model, int batch, int depth, int workers)
      : samples_(samples), model_(model), batch_(batch), depth_(depth) {
    const auto& p = model.info().preprocess;
    for (int i = 0; i < depth; ++i) {
      slots_.push_back(Slot{Tensor::empty({batch, 3, p.input_height, p.input_width}, DType::f32),
                            std::vector<bool>(batch, false), 0});
    }
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  struct Batch {
    Tensor images;            // (n, 3, H, W)
    std::vector<bool> valid;  // decoded successfully
    std::int64_t first = 0;   // index of the first sample
  };

  /// Waits for batch `b` (consumed in order) and returns it; release() frees its slot.
  Batch wait(std::int64_t b) {
    const std::int64_t first = b * batch_;
    const std::int64_t n = std::min<std::int64_t>(batch_, static_cast<std::int64_t>(samples_.size()) - first);
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& slot = slots_[b % depth_];
    cv_.wait(lock, [&] { return slot.done == n; });
    return Batch{slot.images.slice(0, 0, n), slot.valid, first};
  }
  void release(std::int64_t b) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Slot& slot = slots_[b % depth_];
      slot.done = 0;
      std::fill(slot.valid.begin(), slot.valid.end(), false);
      consumed_ = b + 1;
    }
    cv_.notify_all();
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }

 private:
  struct Slot {
    Tensor images;
    std::vector<bool> valid;
    std::int64_t done;
  };

  void work() {
    while (true) {
      const std::int64_t i = next_.fetch_add(1);
      if (i >= static_cast<std::int64_t>(samples_.size())) return;
      const std::int64_t b = i / batch_;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || b < consumed_ + depth_; });
        if (stop_) return;
      }
      Slot& slot = slots_[b % depth_];
      const std::int64_t row = i % batch_;
      bool ok = true;
      std::string error;
      try {
        const Tensor pixels = model_.preprocess(load_image(samples_[i].path));
        slot.images.select(0, row).copy_from(pixels);
      } catch (const std::exception& e) {
        ok = false;
        error = e.what();
        slot.images.select(0, row).fill(0);
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot.valid[row] = ok;
        if (!ok) errors_.push_back(error);
        ++slot.done;
      }
      cv_.notify_all();
    }
  }

  const std::vector<EvalSample>& samples_;
  const vision::Model& model_;
  const int batch_, depth_;
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::atomic<std::int64_t> next_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::int64_t consumed_ = 0;
  bool stop_ = false;
  std::vector<std::string> errors_;
};

int run_eval(const EvalOptions& o) {
  if (o.batch < 1 || o.batch > 4096) throw Error("--batch " + std::to_string(o.batch), "must be in 1..4096");
  vision::ModelOptions options;
  options.device = parse_device(o.device);
  options.dtype = parse_dtype(o.dtype);
  vision::Model model = vision::Model::load(o.model, o.weights, options);
  const auto& info = model.info();
  const auto& labels = vision::class_labels(info.labels);
  EvalDataset data = read_eval_dataset(o.data, o.labels, info.num_classes, labels);
  if (o.limit > 0 && static_cast<long long>(data.samples.size()) > o.limit) data.samples.resize(o.limit);
  const std::int64_t total = static_cast<std::int64_t>(data.samples.size());
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int workers = o.workers > 0 ? o.workers : (options.device.is_cuda() ? std::max(1, hw - 1) : std::max(1, hw / 2));

  std::vector<std::int64_t> class_count(info.num_classes, 0), class_top1(info.num_classes, 0);
  std::int64_t top1 = 0, top5 = 0, evaluated = 0;
  double model_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  {
    Prefetcher prefetch(data.samples, model, o.batch, 3, workers);
    Progress progress("eval " + info.name, total);
    progress.set_enabled(!o.quiet);
    const std::int64_t batches = (total + o.batch - 1) / o.batch;
    for (std::int64_t b = 0; b < batches; ++b) {
      Prefetcher::Batch batch = prefetch.wait(b);
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor logits = model.logits(batch.images);
      model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const int classes = static_cast<int>(logits.size(1));
      for (std::int64_t r = 0; r < batch.images.size(0); ++r) {
        if (!batch.valid[r]) continue;
        const int label = data.samples[batch.first + r].label;
        const auto top = vision::top_k(logits.data<float>() + r * classes, classes, 5, {});
        ++evaluated;
        ++class_count[label];
        if (top[0].class_index == label) {
          ++top1;
          ++class_top1[label];
        }
        for (const auto& p : top) top5 += p.class_index == label;
      }
      prefetch.release(b);
      progress.advance(batch.images.size(0));
    }
    progress.finish();
    for (const auto& e : prefetch.errors()) std::fprintf(stderr, "mcv: skipped: %s\n", e.c_str());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::int64_t skipped = total - evaluated;
  const double acc1 = evaluated ? 100.0 * top1 / evaluated : 0, acc5 = evaluated ? 100.0 * top5 / evaluated : 0;
  std::printf("model %s  device %s  dtype %s\n", info.name.c_str(), o.device.c_str(), o.dtype.c_str());
  std::printf("images %lld evaluated, %lld skipped (unreadable)\n", static_cast<long long>(evaluated), static_cast<long long>(skipped));
  std::printf("top-1 %.2f%%  top-5 %.2f%%\n", acc1, acc5);
  std::printf("throughput %.1f img/s end to end, %.1f img/s in the model\n", evaluated / seconds,
              model_seconds > 0 ? evaluated / model_seconds : 0.0);
  if (!o.json.empty()) {
    nlohmann::json report = {{"model", info.name}, {"weights", o.weights}, {"data", o.data}, {"device", o.device},
                             {"dtype", o.dtype}, {"images", evaluated}, {"skipped", skipped}, {"top1", acc1},
                             {"top5", acc5}, {"seconds", seconds}, {"images_per_second", evaluated / seconds},
                             {"model_images_per_second", model_seconds > 0 ? evaluated / model_seconds : 0.0}};
    nlohmann::json per_class = nlohmann::json::array();
    for (int c = 0; c < info.num_classes; ++c) {
      if (!class_count[c]) continue;
      per_class.push_back({{"class", c}, {"name", c < static_cast<int>(data.class_names.size()) ? data.class_names[c] : ""},
                           {"images", class_count[c]}, {"top1", 100.0 * class_top1[c] / class_count[c]}});
    }
    report["per_class"] = per_class;
    write_file_atomic(o.json, report.dump(2) + "\n");
  }
  if (evaluated == 0) throw Error(o.data, "no image could be read");
  return skipped ? kExitCheckFailed : kExitOk;
}

const McvCommand kCommand("eval", "Evaluate a model on a labelled image folder", [](CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  app.add_option("--model", o->model, "Model name or alias (see mcv models)")->required();
  app.add_option("--weights", o->weights, "Checkpoint")->required();
  app.add_option("--data", o->data, "ImageFolder tree, or a flat folder with --labels")->required();
  app.add_option("--labels", o->labels, "Labels file: `relative/path label` per line");
  app.add_option("--batch", o->batch, "Batch size");
  app.add_option("--device", o->device, "cpu, cuda or cuda:N");
  app.add_option("--dtype", o->dtype, "f32, bf16 or f16");
  app.add_option("--workers", o->workers, "Decoding threads (default: from the core count)");
  app.add_option("--limit", o->limit, "Evaluate only the first N images");
  app.add_option("--json", o->json, "Write a JSON report here");
  app.add_flag("--quiet", o->quiet, "No progress bar");
  return [o] { return run_eval(*o); };
});

}  // namespace
}  // namespace mcv::cli::cmd_eval
