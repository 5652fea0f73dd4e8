#include "mcv/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace mcv {

namespace {
thread_local bool tls_inside_pool_task = false;

int default_thread_count() {
  if (const char* env = std::getenv("MCV_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int n = threads > 0 ? threads : default_thread_count();
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& w : workers_) w.join();
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool pool;
  return pool;
}

void ThreadPool::worker_loop() {
  std::uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] { return stop_ || (generation_ != seen && next_chunk_ < chunks_total_); });
    if (stop_) return;
    seen = generation_;
    while (next_chunk_ < chunks_total_) {
      const std::int64_t c = next_chunk_++;
      const auto* job = job_;
      const std::int64_t begin = c * job_chunk_, end = std::min(job_n_, begin + job_chunk_);
      lock.unlock();
      std::exception_ptr err;
      tls_inside_pool_task = true;
      try {
        (*job)(begin, end);
      } catch (...) {
        err = std::current_exception();
      }
      tls_inside_pool_task = false;
      lock.lock();
      if (err && !error_) error_ = err;
      if (++chunks_done_ == chunks_total_) work_done_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(std::int64_t n, std::int64_t grain,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  if (tls_inside_pool_task || workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  // About four chunks per thread balances uneven chunks without much scheduling overhead.
  const std::int64_t target_chunks = static_cast<std::int64_t>(size()) * 4;
  const std::int64_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  std::unique_lock<std::mutex> lock(mutex_);
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = chunk;
  next_chunk_ = 0;
  chunks_total_ = (n + chunk - 1) / chunk;
  chunks_done_ = 0;
  error_ = nullptr;
  ++generation_;
  work_ready_.notify_all();
  // The calling thread works too.
  while (next_chunk_ < chunks_total_) {
    const std::int64_t c = next_chunk_++;
    const std::int64_t begin = c * chunk, end = std::min(n, begin + chunk);
    lock.unlock();
    std::exception_ptr err;
    tls_inside_pool_task = true;
    try {
      fn(begin, end);
    } catch (...) {
      err = std::current_exception();
    }
    tls_inside_pool_task = false;
    lock.lock();
    if (err && !error_) error_ = err;
    ++chunks_done_;
  }
  work_done_.wait(lock, [&] { return chunks_done_ == chunks_total_; });
  job_ = nullptr;
  chunks_total_ = 0;
  if (error_) std::rethrow_exception(error_);
}

}  // namespace mcv
