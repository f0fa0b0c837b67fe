// A host-side event for the CPU backend: recorded once per run by the stream that ran
// the recording step, waited on by steps of other streams. A failed run poisons every
// event so no worker waits forever.
#pragma once

#include <condition_variable>
#include <mutex>

namespace braid::cpu {

class HostEvent {
 public:
  void reset() {
    std::lock_guard lock(mutex_);
    done_ = false;
  }
  void record() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace braid::cpu
