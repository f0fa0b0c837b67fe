// Wakes the HTTP handlers of requests that got text in an engine step, on a thread of its
// own, so that the engine goes on to the next step meanwhile.
//
// Waking a handler is a system call, and the woken thread often takes the waker's core at
// once: paid on the engine's thread it was ~28 us a token (the CPU backend, 8 clients on 2
// cores), and at 64 sequences on the H200 sampling + streaming held the GPU idle for 0.46 ms
// of a 2.4 ms step. Handed over here, the engine pays one wake a step.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "serve/request_handle.h"

namespace braid::serve {

class Waker {
 public:
  Waker();
  ~Waker();  // wakes what is still queued, then ends the thread
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  // Wakes each handle's handler soon (RequestHandle::wake).
  void wake_later(std::vector<std::shared_ptr<RequestHandle>> handles);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable queued_;
  std::vector<std::shared_ptr<RequestHandle>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace braid::serve
