#include "braid/plan_guard.h"

#include <fmt/format.h>

#include <vector>

#include "backend/plan_choice.h"
#include "braid/graph.h"

namespace braid {

PlanGuard::PlanGuard(GuardOptions options) : options_(options) {
  if (options_.period < 3 || options_.window < 1) {
    throw Error(fmt::format("plan guard: period {} (at least 3) and window {} (at least 1)", options_.period,
                            options_.window));
  }
}

PlanGuard::Action PlanGuard::next() {
  const int phase = runs_++ % options_.period;
  if (!options_.enabled || fell_back_) {
    pending_ = Action::RunChosen;
  } else if (phase == options_.period - 2) {
    // The pair ends each period, never at its start: a short job (a prompt or two) runs
    // its chosen plan untouched, and the first pair meets warm caches and launched graphs.
    pending_ = Action::TimeSerial;
  } else if (phase == options_.period - 1) {
    pending_ = Action::TimeChosen;
  } else {
    pending_ = Action::RunChosen;
  }
  return pending_;
}

void PlanGuard::record(double ms) {
  if (pending_ == Action::TimeSerial) {
    serial_ms_ = ms;
    return;
  }
  if (pending_ != Action::TimeChosen || serial_ms_ < 0) return;
  serial_.push_back(serial_ms_);
  chosen_.push_back(ms);
  serial_ms_ = -1;
  if (static_cast<int>(serial_.size()) > options_.window) {
    serial_.pop_front();
    chosen_.pop_front();
  }
  if (static_cast<int>(serial_.size()) < options_.window) return;
  const autotune::Verdict v = autotune::judge(std::vector<double>(serial_.begin(), serial_.end()),
                                              std::vector<double>(chosen_.begin(), chosen_.end()), {});
  last_ratio_ = v.median_ratio;
  if (v.median_ratio > 1.0 + options_.margin) fell_back_ = true;
}

}  // namespace braid
