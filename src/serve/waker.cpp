#include "serve/waker.h"

namespace braid::serve {

Waker::Waker() : thread_(&Waker::loop, this) {}

Waker::~Waker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  thread_.join();
}

void Waker::wake_later(std::vector<std::shared_ptr<RequestHandle>> handles) {
  if (handles.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) {
      queue_ = std::move(handles);
    } else {
      queue_.insert(queue_.end(), std::make_move_iterator(handles.begin()), std::make_move_iterator(handles.end()));
    }
  }
  queued_.notify_one();
}

void Waker::loop() {
  std::vector<std::shared_ptr<RequestHandle>> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // (stopping, nothing left)
      batch.swap(queue_);
    }
    for (const auto& handle : batch) handle->wake();
    batch.clear();
  }
}

}  // namespace braid::serve
