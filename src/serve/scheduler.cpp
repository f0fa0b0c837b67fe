#include "serve/scheduler.h"

#include <fmt/format.h>

#include <algorithm>

#include "braid/graph.h"

namespace braid::serve {

int StepPlan::tokens() const {
  int n = 0;
  for (const SlotWork& w : work) n += w.count;
  return n;
}

std::vector<int> prompt_chunks(int n, int chunk_size) {
  std::vector<int> chunks;
  while (n > 0) {
    int size = chunk_size;
    while (size > n) size /= 2;
    chunks.push_back(size);
    n -= size;
  }
  return chunks;
}

Scheduler::Scheduler(SchedulerOptions options) : options_(options) {
  if (options_.slots < 1) throw Error(fmt::format("serve: {} slots: at least 1 is needed", options_.slots));
  if (options_.max_waiting < 0) throw Error(fmt::format("serve: a queue of {} requests", options_.max_waiting));
  const int c = options_.chunk_size;
  if (c < 1 || (c & (c - 1)) != 0) throw Error(fmt::format("serve: the chunk size {} is not a power of two", c));
  const int least = options_.slots + c;
  if (options_.step_token_budget == 0) options_.step_token_budget = least;
  if (options_.step_token_budget < least) {
    throw Error(fmt::format("serve: a step budget of {} tokens is below slots + chunk size ({})",
                            options_.step_token_budget, least));
  }
  for (int s = options_.slots - 1; s >= 0; --s) free_slots_.push_back(s);
}

bool Scheduler::enqueue(RequestId id, int prompt_tokens) {
  if (prompt_tokens <= 0) throw Error(fmt::format("serve: request {} has an empty prompt", id));
  if (waiting() >= free_slots() + options_.max_waiting) return false;
  Sequence s;
  s.id = id;
  s.prompt_tokens = prompt_tokens;
  s.order = arrivals_++;
  waiting_.push_back(s);
  return true;
}

void Scheduler::cancel(RequestId id) {
  if (auto it = running_.find(id); it != running_.end()) {
    it->second.cancelled = true;
    return;
  }
  for (Sequence& s : waiting_) {
    if (s.id == id) s.cancelled = true;
  }
}

void Scheduler::finish(RequestId id) {
  if (auto it = running_.find(id); it != running_.end()) it->second.finished = true;
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  // 1. Retire.
  for (auto it = running_.begin(); it != running_.end();) {
    const Sequence& s = it->second;
    if (s.cancelled || s.finished) {
      plan.retired.push_back({s.id, s.slot, s.cancelled && !s.finished});
      free_slots_.push_back(s.slot);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(free_slots_.begin(), free_slots_.end(), std::greater<>());  // lowest last
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->cancelled) {
      plan.retired.push_back({it->id, -1, true});
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  // 2. Admit.
  while (!waiting_.empty() && !free_slots_.empty()) {
    Sequence s = waiting_.front();
    waiting_.pop_front();
    s.slot = free_slots_.back();
    free_slots_.pop_back();
    s.phase = Phase::Prefill;
    plan.admitted.emplace_back(s.id, s.slot);
    running_.emplace(s.id, s);
  }
  // 3. Step: every decode first, then prompt chunks by arrival within the budget.
  int budget = options_.step_token_budget;
  std::vector<const Sequence*> prefilling;
  for (const auto& [id, s] : running_) {
    if (s.phase == Phase::Decode) {
      plan.work.push_back({s.id, s.slot, true, s.prompt_tokens, 1, false});
      budget -= 1;
    } else {
      prefilling.push_back(&s);
    }
  }
  std::sort(prefilling.begin(), prefilling.end(), [](const Sequence* a, const Sequence* b) { return a->order < b->order; });
  for (const Sequence* s : prefilling) {
    const int size = prompt_chunks(s->prompt_tokens - s->prefilled, options_.chunk_size).front();
    if (size > budget) continue;  // it runs in a later step; a smaller chunk may fit now
    const bool last = s->prefilled + size == s->prompt_tokens;
    plan.work.push_back({s->id, s->slot, false, s->prefilled, size, last});
    budget -= size;
  }
  return plan;
}

void Scheduler::completed(const StepPlan& plan) {
  for (const SlotWork& w : plan.work) {
    auto it = running_.find(w.id);
    if (it == running_.end() || w.decode) continue;
    Sequence& s = it->second;
    s.prefilled += w.count;
    if (s.prefilled >= s.prompt_tokens) s.phase = Phase::Decode;
  }
}

}  // namespace braid::serve
