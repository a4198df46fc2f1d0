// A fixed pool of worker threads for data-parallel kernels. The calling thread works too, so a
// pool of n threads starts n - 1 workers. Workers spin briefly before sleeping, because a decode
// step issues hundreds of short parallel ops back to back.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bringup {

// What synchronising the threads cost, counted while a pool's timing is on: parallel ops run,
// seconds the calling thread spent handing each op out, and seconds it waited, its own share
// done, for the slowest thread (imbalance included: what a barrier costs).
struct SyncStats {
  uint64_t ops = 0;
  double dispatch_s = 0, wait_s = 0;
};

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, tasks), spread over the threads; returns when
  // all are done. Tasks are handed out dynamically, so uneven tasks balance. Not reentrant.
  void parallel_for(int64_t tasks, const std::function<void(int64_t, int)>& fn);

  // Starts (zeroing the counts) or stops counting SyncStats; two clock reads per op while on.
  void time_sync(bool on) {
    timing_ = on;
    if (on) stats_ = {};
  }
  SyncStats sync_stats() const { return stats_; }

 private:
  void worker_loop(int thread);
  void run_tasks(int thread);

  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> pending_workers_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool timing_ = false;
  SyncStats stats_;
};

}  // namespace bringup
