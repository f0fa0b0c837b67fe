// Happens-before on plan steps from per-stream vector clocks: O(steps x streams) to
// build, O(1) to query. Step b happens after step a iff, at b's start, b's clock entry
// for a's stream has reached a's position on that stream.
#include <algorithm>

#include "braid/plan.h"

namespace braid {

HappensBefore::HappensBefore(const Plan& plan) : streams_(std::max(1, plan.stream_count)) {
  const size_t n = plan.steps.size();
  const size_t s = static_cast<size_t>(streams_);
  stream_index_.assign(n, 0);
  stream_of_.assign(n, 0);
  clocks_.assign(n * s, -1);
  // Where each event is recorded (first record only; the validator reports duplicates).
  std::vector<int> recorded_at(static_cast<size_t>(std::max(0, plan.event_count)), -1);
  std::vector<int> last_on_stream(s, -1);
  std::vector<int> count_on_stream(s, 0);
  for (size_t pos = 0; pos < n; ++pos) {
    const PlanStep& step = plan.steps[pos];
    // Plans under test may be broken: clamp bad streams rather than read out of bounds.
    const int k = std::clamp(step.stream, 0, streams_ - 1);
    stream_of_[pos] = k;
    int* clock = &clocks_[pos * s];
    const int prev = last_on_stream[static_cast<size_t>(k)];
    if (prev >= 0) {
      const int* before = &clocks_[static_cast<size_t>(prev) * s];
      std::copy(before, before + s, clock);
      clock[k] = stream_index_[static_cast<size_t>(prev)];
    }
    for (int e : step.waits) {
      if (e < 0 || e >= plan.event_count) continue;
      const int r = recorded_at[static_cast<size_t>(e)];
      if (r < 0) continue;  // waiting on an event nobody recorded yet orders nothing
      const int* theirs = &clocks_[static_cast<size_t>(r) * s];
      for (size_t j = 0; j < s; ++j) clock[j] = std::max(clock[j], theirs[j]);
      clock[stream_of_[static_cast<size_t>(r)]] =
          std::max(clock[stream_of_[static_cast<size_t>(r)]], stream_index_[static_cast<size_t>(r)]);
    }
    stream_index_[pos] = count_on_stream[static_cast<size_t>(k)]++;
    last_on_stream[static_cast<size_t>(k)] = static_cast<int>(pos);
    if (step.record >= 0 && step.record < plan.event_count &&
        recorded_at[static_cast<size_t>(step.record)] < 0) {
      recorded_at[static_cast<size_t>(step.record)] = static_cast<int>(pos);
    }
  }
}

bool HappensBefore::ordered(int step_a, int step_b) const {
  const int n = static_cast<int>(stream_of_.size());
  if (step_a == step_b || step_a < 0 || step_b < 0 || step_a >= n || step_b >= n) return false;
  const int value = clocks_[static_cast<size_t>(step_b) * static_cast<size_t>(streams_) +
                            static_cast<size_t>(stream_of_[static_cast<size_t>(step_a)])];
  return value >= stream_index_[static_cast<size_t>(step_a)];
}

}  // namespace braid
