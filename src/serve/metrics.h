// Counters of `braid serve` for GET /metrics, in Prometheus' text format. The engine and
// the HTTP handlers update them from their own threads; every member is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace braid::serve {

class Metrics {
 public:
  // A finished HTTP request to a generation route, by its status code.
  void count_request(int status);
  void add_prompt_tokens(int n) { prompt_tokens_ += static_cast<uint64_t>(n); }
  void add_generated_tokens(int n);
  void observe_time_to_first_token(double seconds);
  void set_scheduler(int waiting, int running, int slots);
  // One engine step: the tokens it evaluated, the batch size it ran at (its bucket, padding
  // included), the seconds the model took (inputs, graph, logits back), the seconds spent
  // sampling and handing the tokens to the clients, and whether it read back whole rows of
  // logits (a request's sampling needed more than the best ones: Sampler::needs_whole_row).
  void count_step(int tokens, int bucket, double evaluate_seconds, double sample_seconds, bool whole_rows);
  void count_cancelled() { ++cancelled_; }

  int running() const { return running_; }
  int waiting() const { return waiting_; }
  // Generated tokens per second over the last ten seconds.
  double tokens_per_second() const;
  std::string prometheus_text() const;

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mutex_;  // guards the map, the window and the sums of seconds
  std::map<int, uint64_t> requests_;
  mutable std::deque<std::pair<Clock::time_point, int>> window_;  // generated tokens by time
  double ttft_sum_ = 0;
  uint64_t ttft_count_ = 0;
  double ttft_max_ = 0;
  double evaluate_seconds_ = 0, sample_seconds_ = 0;
  std::atomic<uint64_t> prompt_tokens_{0}, generated_tokens_{0}, steps_{0}, step_tokens_{0}, step_bucket_tokens_{0},
      cancelled_{0}, whole_row_steps_{0};
  std::atomic<int> waiting_{0}, running_{0}, slots_{0};
};

}  // namespace braid::serve
