// What a request's HTTP handler and the engine share: the engine pushes text and, once,
// the end; the handler waits for them (with a timeout, so that it can look at its client
// in between). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "serve/scheduler.h"

namespace braid::serve {

enum class FinishReason { Stop, Length, Error, Cancelled };
std::string_view finish_reason_name(FinishReason reason);  // OpenAI's "stop", "length"; "error", "cancelled"

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// Text that came and whether the request ended (then with why and its usage).
struct StreamUpdate {
  std::string text;
  bool done = false;
  FinishReason finish = FinishReason::Stop;
  Usage usage;
  std::string error;  // with FinishReason::Error: what went wrong
  std::vector<int32_t> tokens;  // with done: every generated token (tests compare them)
};

class RequestHandle {
 public:
  explicit RequestHandle(RequestId id) : id_(id) {}
  RequestId id() const { return id_; }

  // Engine side. push_text adds text and wakes the handler; append_text only adds it (true
  // when there was text to add), for a wake() later from another thread (serve/waker.h).
  void push_text(std::string text);
  bool append_text(std::string text);
  void wake();
  void finish(FinishReason reason, Usage usage, std::string error = {}, std::vector<int32_t> tokens = {});

  // Handler side: what came since the last call, waiting up to `timeout` for something.
  // An update with done set is the last.
  StreamUpdate next(std::chrono::milliseconds timeout);
  // Everything up to the end (a non-streaming request).
  StreamUpdate wait_all();

 private:
  const RequestId id_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  bool done_ = false;
  StreamUpdate end_;
};

}  // namespace braid::serve
