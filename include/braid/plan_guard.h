// PlanGuard: the auto policy's check at run time (issue 13).
//
// auto chose its plan once, on a quiet moment or a busy one. The conditions can change
// (other work on the host or the GPU, a longer KV cache), so the runner keeps checking:
// at the end of every `period` runs of an executable it runs one step with the serial
// plan and the next with the chosen plan, both timed. Plans of one graph compute the same bits and
// share the KV cache, so swapping them for one step changes nothing but time. Over the
// last `window` pairs the chosen plan is judged against serial as at tuning time (Note
// [Choosing a plan through noise]); when it is slower beyond the margin, the runner
// falls back to serial for that batch size for good.
//
// Plain data: the runner asks next() what to do, runs, and reports the time.
#pragma once

#include <deque>
#include <string>

namespace braid {

struct GuardOptions {
  bool enabled = true;  // false: trust the tuning-time choice
  int period = 16;      // runs between two timed pairs
  int window = 5;       // pairs judged together
  double margin = 0.02;  // fall back when chosen / serial exceeds 1 + margin (median)
};

class PlanGuard {
 public:
  enum class Action { RunChosen, TimeSerial, TimeChosen };
  explicit PlanGuard(GuardOptions options);

  // What the next run should do. After TimeSerial or TimeChosen, call record().
  Action next();
  void record(double ms);
  // True once the chosen plan lost: run serial from now on (next() then says RunChosen
  // and the runner has swapped the executables).
  bool fell_back() const { return fell_back_; }
  double last_ratio() const { return last_ratio_; }  // median chosen / serial of the last judgement
  int runs() const { return runs_; }

 private:
  GuardOptions options_;
  int runs_ = 0;
  Action pending_ = Action::RunChosen;
  double serial_ms_ = -1;
  std::deque<double> serial_, chosen_;
  bool fell_back_ = false;
  double last_ratio_ = 1;
};

}  // namespace braid
