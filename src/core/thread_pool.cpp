#include "core/thread_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#define BRINGUP_PAUSE() _mm_pause()
#else
#define BRINGUP_PAUSE() ((void)0)
#endif

namespace bringup {

namespace {
constexpr int kSpinIterations = 20000;  // ~ tens of microseconds before sleeping
}

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks(int thread) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= job_tasks_) break;
    (*job_)(task, thread);
  }
}

void ThreadPool::parallel_for(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = timing_ ? Clock::now() : Clock::time_point();
  job_ = &fn;
  job_tasks_ = tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  const Clock::time_point t1 = timing_ ? Clock::now() : Clock::time_point();
  run_tasks(0);
  const Clock::time_point t2 = timing_ ? Clock::now() : Clock::time_point();
  while (pending_workers_.load(std::memory_order_acquire) != 0) BRINGUP_PAUSE();
  job_ = nullptr;
  if (timing_) {
    ++stats_.ops;
    stats_.dispatch_s += std::chrono::duration<double>(t1 - t0).count();
    stats_.wait_s += std::chrono::duration<double>(Clock::now() - t2).count();
  }
}

void ThreadPool::worker_loop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      BRINGUP_PAUSE();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_tasks(thread);
    pending_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace bringup
