#pragma once
/// \file
/// A fixed pool of worker threads with a blocking parallel_for. Nested calls from inside a task
/// run serially on the calling thread, so a kernel that parallelises inside a parallel model
/// loop cannot deadlock.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mcv {

class ThreadPool {
 public:
  /// `threads` <= 0 means one per hardware thread (or MCV_NUM_THREADS when set).
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(begin, end) on disjoint chunks covering [0, n), each at least `grain` long (except
  /// the last), on the workers and the calling thread; returns when all are done. The first
  /// exception thrown by a chunk is rethrown here after the others finish.
  void parallel_for(std::int64_t n, std::int64_t grain,
                    const std::function<void(std::int64_t, std::int64_t)>& fn);

  /// The process-wide pool for CPU kernels (created on first use).
  static ThreadPool& shared();

 private:
  void worker_loop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_, work_done_;
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t job_n_ = 0, job_chunk_ = 0, next_chunk_ = 0, chunks_total_ = 0, chunks_done_ = 0;
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  std::mutex run_mutex_;  // one parallel_for at a time per pool
  bool stop_ = false;
};

}  // namespace mcv
