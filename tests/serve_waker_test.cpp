// The waker that wakes HTTP handlers off the engine's thread (serve/waker.h): text appended
// without a wake reaches a waiting handler once the waker has run, and nothing queued is
// lost when the waker ends.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "serve/request_handle.h"
#include "serve/waker.h"

namespace braid::serve {
namespace {

using namespace std::chrono_literals;

// A handler waiting for text, as the HTTP route waits: the text it got, and how long it waited.
std::future<std::pair<std::string, std::chrono::steady_clock::duration>> wait_for_text(RequestHandle& handle) {
  return std::async(std::launch::async, [&handle] {
    const auto start = std::chrono::steady_clock::now();
    const StreamUpdate update = handle.next(60s);
    return std::make_pair(update.text, std::chrono::steady_clock::now() - start);
  });
}

TEST(ServeWaker, AppendedTextWaitsForTheWake) {
  Waker waker;
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<std::future<std::pair<std::string, std::chrono::steady_clock::duration>>> waiting;
  for (RequestId id = 1; id <= 4; ++id) {
    handles.push_back(std::make_shared<RequestHandle>(id));
    waiting.push_back(wait_for_text(*handles.back()));
  }
  std::this_thread::sleep_for(20ms);  // (the handlers are asleep)
  for (size_t i = 0; i < handles.size(); ++i) EXPECT_TRUE(handles[i]->append_text("token " + std::to_string(i)));
  EXPECT_FALSE(handles[0]->append_text(""));
  waker.wake_later(handles);
  for (size_t i = 0; i < waiting.size(); ++i) {
    ASSERT_EQ(waiting[i].wait_for(10s), std::future_status::ready);
    const auto [text, waited] = waiting[i].get();
    EXPECT_EQ(text, "token " + std::to_string(i));
    EXPECT_LT(waited, 30s);  // woken, not timed out
  }
}

TEST(ServeWaker, EndingWakesWhatIsQueued) {
  auto handle = std::make_shared<RequestHandle>(1);
  auto waiting = wait_for_text(*handle);
  std::this_thread::sleep_for(20ms);
  {
    Waker waker;
    handle->append_text("last");
    waker.wake_later({handle});
  }
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiting.get().first, "last");
}

}  // namespace
}  // namespace braid::serve
