// The pool that splits one node's work (rows of a matrix product, heads of attention)
// over the cores. It is shared by every executable and every plan stream: a stream thread
// that runs a node submits its tasks here and works on them itself, and idle workers join
// in. A plan with branches therefore never runs more busy threads than cores plus
// streams, and the threads of one node never wait for another node's tasks.
//
// Tasks are independent and each writes its own outputs, so a node's result does not
// depend on how its tasks were spread over the threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace braid::cpu {

class ThreadPool {
 public:
  // workers: threads besides the callers (0: run every task on the caller).
  explicit ThreadPool(int workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // One worker fewer than the machine's hardware threads (the caller is the last one);
  // BRAID_CPU_THREADS=n sets the total instead.
  static ThreadPool& shared();

  // Calls task(i) for every i in [0, tasks) on the caller and idle workers, and returns
  // when all have finished. An exception from a task is rethrown here (the first one).
  void parallel_for(int64_t tasks, const std::function<void(int64_t)>& task);

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

 private:
  struct Job;
  void work();
  void remove(const Job* job);
  static void run_tasks(Job& job);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> jobs_;  // jobs that still have tasks nobody has taken
  std::atomic<int> pending_{0};            // jobs_.size(), read without the lock by spinning workers
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace braid::cpu
