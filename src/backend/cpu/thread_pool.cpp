#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace braid::cpu {

// Shared by the caller and the workers that joined it, so that a worker that joins late
// (after the last task was taken) may still look at `next`. The caller waits only for the
// tasks taken, never for a worker that took none: on a busy machine that worker may not
// run again for a whole time slice.
struct ThreadPool::Job {
  const std::function<void(int64_t)>* task = nullptr;  // called only for a task taken
  int64_t tasks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};  // release-incremented after each task: its writes are visible
  std::mutex error_mutex;
  std::exception_ptr error;
};

ThreadPool::ThreadPool(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back(&ThreadPool::work, this);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool pool([] {
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (const char* env = std::getenv("BRAID_CPU_THREADS")) {
      // A value that is not a whole positive number is said, not read as 1 thread.
      const std::string_view text(env);
      int wanted = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), wanted);
      if (error == std::errc() && end == text.data() + text.size() && wanted >= 1) {
        threads = std::min(wanted, 1024);
      } else {
        std::fprintf(stderr, "braid: BRAID_CPU_THREADS='%s' is not a positive whole number; using %d threads\n", env,
                     threads);
      }
    }
    return threads - 1;
  }());
  return pool;
}

void ThreadPool::run_tasks(Job& job) {
  for (;;) {
    const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.tasks) return;
    try {
      (*job.task)(i);
    } catch (...) {
      std::lock_guard lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
    job.done.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::remove(const Job* job) {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& j) { return j.get() == job; });
  if (it != jobs_.end()) jobs_.erase(it);
  pending_.store(static_cast<int>(jobs_.size()), std::memory_order_relaxed);
}

void ThreadPool::parallel_for(int64_t tasks, const std::function<void(int64_t)>& task) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->task = &task;
  job->tasks = tasks;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(job);
    pending_.store(static_cast<int>(jobs_.size()), std::memory_order_relaxed);
  }
  wake_.notify_all();
  run_tasks(*job);
  remove(job.get());
  while (job->done.load(std::memory_order_acquire) != tasks) std::this_thread::yield();
  std::lock_guard lock(job->error_mutex);
  if (job->error) std::rethrow_exception(job->error);
}

// Between nodes a worker spins briefly before it sleeps: decode runs hundreds of small
// nodes per token, and a sleeping worker takes longer to wake than such a node takes.
void ThreadPool::work() {
  constexpr auto kSpin = std::chrono::microseconds(100);
  for (;;) {
    const auto idle_since = std::chrono::steady_clock::now();
    for (int i = 0; pending_.load(std::memory_order_relaxed) == 0; ++i) {
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - idle_since > kSpin) break;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = jobs_.front();
    }
    run_tasks(*job);
    remove(job.get());  // every task is taken: let nobody else join it
  }
}

}  // namespace braid::cpu
