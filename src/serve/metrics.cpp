#include "serve/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace braid::serve {
namespace {
constexpr std::chrono::seconds kRateWindow{10};
}

void Metrics::count_request(int status) {
  std::lock_guard lock(mutex_);
  ++requests_[status];
}

void Metrics::add_generated_tokens(int n) {
  generated_tokens_ += static_cast<uint64_t>(n);
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  window_.emplace_back(now, n);
  while (!window_.empty() && now - window_.front().first > kRateWindow) window_.pop_front();
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_sum_ += seconds;
  ++ttft_count_;
  ttft_max_ = std::max(ttft_max_, seconds);
}

void Metrics::set_scheduler(int waiting, int running, int slots) {
  waiting_ = waiting;
  running_ = running;
  slots_ = slots;
}

void Metrics::count_step(int tokens, int bucket, double evaluate_seconds, double sample_seconds, bool whole_rows) {
  ++steps_;
  if (whole_rows) ++whole_row_steps_;
  step_tokens_ += static_cast<uint64_t>(tokens);
  step_bucket_tokens_ += static_cast<uint64_t>(bucket);
  std::lock_guard lock(mutex_);
  evaluate_seconds_ += evaluate_seconds;
  sample_seconds_ += sample_seconds;
}

double Metrics::tokens_per_second() const {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  while (!window_.empty() && now - window_.front().first > kRateWindow) window_.pop_front();
  if (window_.empty()) return 0;
  int tokens = 0;
  for (const auto& [when, n] : window_) tokens += n;
  const double seconds = std::chrono::duration<double>(kRateWindow).count();
  return tokens / seconds;
}

std::string Metrics::prometheus_text() const {
  const double rate = tokens_per_second();
  std::lock_guard lock(mutex_);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  metric("braid_requests_total", "counter", "Generation requests answered, by HTTP status");
  if (requests_.empty()) out += "braid_requests_total{status=\"200\"} 0\n";
  for (const auto& [status, n] : requests_) out += fmt::format("braid_requests_total{{status=\"{}\"}} {}\n", status, n);
  metric("braid_requests_cancelled_total", "counter", "Requests whose client went away before the end");
  out += fmt::format("braid_requests_cancelled_total {}\n", cancelled_.load());
  metric("braid_prompt_tokens_total", "counter", "Prompt tokens evaluated");
  out += fmt::format("braid_prompt_tokens_total {}\n", prompt_tokens_.load());
  metric("braid_generated_tokens_total", "counter", "Tokens generated");
  out += fmt::format("braid_generated_tokens_total {}\n", generated_tokens_.load());
  metric("braid_queue_depth", "gauge", "Requests waiting for a slot");
  out += fmt::format("braid_queue_depth {}\n", waiting_.load());
  metric("braid_running_sequences", "gauge", "Sequences in a slot (the batch of the next step)");
  out += fmt::format("braid_running_sequences {}\n", running_.load());
  metric("braid_slots", "gauge", "Slots (--parallel)");
  out += fmt::format("braid_slots {}\n", slots_.load());
  metric("braid_steps_total", "counter", "Engine steps run");
  out += fmt::format("braid_steps_total {}\n", steps_.load());
  metric("braid_step_tokens_total", "counter", "Tokens evaluated by engine steps (decode and prompt chunks)");
  out += fmt::format("braid_step_tokens_total {}\n", step_tokens_.load());
  metric("braid_step_batch_tokens_total", "counter", "Batch sizes the steps ran at (their tokens plus padding)");
  out += fmt::format("braid_step_batch_tokens_total {}\n", step_bucket_tokens_.load());
  metric("braid_step_whole_rows_total", "counter", "Steps that read whole rows of logits back (some request's sampling "
         "needed more than the best 64 logits: top_k 0 or above 64)");
  out += fmt::format("braid_step_whole_rows_total {}\n", whole_row_steps_.load());
  metric("braid_step_seconds_total", "counter", "Seconds of engine steps: evaluating the model, sampling and streaming");
  out += fmt::format("braid_step_seconds_total{{phase=\"evaluate\"}} {:.6f}\n", evaluate_seconds_);
  out += fmt::format("braid_step_seconds_total{{phase=\"sample\"}} {:.6f}\n", sample_seconds_);
  metric("braid_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s");
  out += fmt::format("braid_tokens_per_second {:.3f}\n", rate);
  metric("braid_time_to_first_token_seconds", "summary", "From a request's arrival to its first generated token");
  out += fmt::format("braid_time_to_first_token_seconds_sum {:.6f}\n", ttft_sum_);
  out += fmt::format("braid_time_to_first_token_seconds_count {}\n", ttft_count_);
  metric("braid_time_to_first_token_seconds_max", "gauge", "The longest time to first token so far");
  out += fmt::format("braid_time_to_first_token_seconds_max {:.6f}\n", ttft_max_);
  return out;
}

}  // namespace braid::serve
