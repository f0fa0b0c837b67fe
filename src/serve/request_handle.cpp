#include "serve/request_handle.h"

namespace braid::serve {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Error:
      return "error";
    case FinishReason::Cancelled:
      return "cancelled";
  }
  return "?";
}

void RequestHandle::push_text(std::string text) {
  if (append_text(std::move(text))) wake();
}

bool RequestHandle::append_text(std::string text) {
  if (text.empty()) return false;
  std::lock_guard lock(mutex_);
  text_ += text;
  return true;
}

void RequestHandle::wake() { changed_.notify_all(); }

void RequestHandle::finish(FinishReason reason, Usage usage, std::string error, std::vector<int32_t> tokens) {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    done_ = true;
    end_.done = true;
    end_.finish = reason;
    end_.usage = usage;
    end_.error = std::move(error);
    end_.tokens = std::move(tokens);
  }
  changed_.notify_all();
}

StreamUpdate RequestHandle::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return done_ || !text_.empty(); });
  StreamUpdate update;
  if (done_) update = end_;
  update.text = std::move(text_);
  text_.clear();
  return update;
}

StreamUpdate RequestHandle::wait_all() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return done_; });
  StreamUpdate update = end_;
  update.text = std::move(text_);
  text_.clear();
  return update;
}

}  // namespace braid::serve
