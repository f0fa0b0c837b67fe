#include "serve/step_pool.h"

namespace braid::serve {

StepPool::StepPool(int threads) {
  for (int i = 1; i < threads; ++i) threads_.emplace_back(&StepPool::worker, this);
}

StepPool::~StepPool() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void StepPool::take_items() {
  std::unique_lock lock(mutex_);
  while (next_ < count_) {
    const int i = next_++;
    lock.unlock();
    (*work_)(i);
    lock.lock();
    if (++finished_ == count_) done_.notify_all();
  }
}

void StepPool::worker() {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      start_.wait(lock, [&] { return quit_ || round_ != seen; });
      if (quit_) return;
      seen = round_;
    }
    take_items();
  }
}

void StepPool::run(int count, const std::function<void(int)>& work) {
  if (count <= 0) return;
  {
    std::lock_guard lock(mutex_);
    work_ = &work;
    count_ = count;
    next_ = 0;
    finished_ = 0;
    ++round_;
  }
  if (count > 1) start_.notify_all();
  take_items();
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return finished_ == count_; });
  work_ = nullptr;
}

}  // namespace braid::serve
