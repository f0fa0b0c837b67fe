// The scheduler of `braid serve` as plain data: queue, slots, step plans; no model.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "braid/graph.h"
#include "serve/scheduler.h"

namespace braid::serve {
namespace {

SchedulerOptions options(int slots, int max_waiting, int chunk = 4) {
  SchedulerOptions o;
  o.slots = slots;
  o.max_waiting = max_waiting;
  o.chunk_size = chunk;
  return o;
}

const SlotWork* work_of(const StepPlan& plan, RequestId id) {
  for (const SlotWork& w : plan.work) {
    if (w.id == id) return &w;
  }
  return nullptr;
}

// Runs steps until the request has left prefill; returns the steps taken.
int prefill(Scheduler& s, RequestId id) {
  for (int step = 1; step < 1000; ++step) {
    const StepPlan plan = s.schedule();
    s.completed(plan);
    const SlotWork* w = work_of(plan, id);
    if (w && w->last_chunk) return step;
  }
  ADD_FAILURE() << "request " << id << " never finished its prompt";
  return -1;
}

TEST(ServeSchedulerTest, PromptChunksArePowersOfTwoLargestFirst) {
  EXPECT_EQ(prompt_chunks(37, 32), (std::vector<int>{32, 4, 1}));
  EXPECT_EQ(prompt_chunks(64, 32), (std::vector<int>{32, 32}));
  EXPECT_EQ(prompt_chunks(7, 32), (std::vector<int>{4, 2, 1}));
  EXPECT_TRUE(prompt_chunks(0, 32).empty());
  for (int n = 1; n < 300; ++n) {
    int sum = 0;
    for (int c : prompt_chunks(n, 16)) {
      EXPECT_TRUE(c >= 1 && c <= 16 && (c & (c - 1)) == 0);
      sum += c;
    }
    EXPECT_EQ(sum, n);
  }
}

TEST(ServeSchedulerTest, RefusesOptionsThatCannotWork) {
  EXPECT_THROW(Scheduler(options(0, 1)), Error);
  EXPECT_THROW(Scheduler(options(1, 1, 6)), Error);
  SchedulerOptions o = options(2, 1, 8);
  o.step_token_budget = 9;
  EXPECT_THROW(Scheduler{o}, Error);
  EXPECT_EQ(Scheduler(options(2, 1, 8)).options().step_token_budget, 10);
}

TEST(ServeSchedulerTest, QueueIsBoundedBeyondTheFreeSlots) {
  Scheduler s(options(2, 1));
  EXPECT_TRUE(s.enqueue(1, 3));
  EXPECT_TRUE(s.enqueue(2, 3));
  EXPECT_TRUE(s.enqueue(3, 3));
  EXPECT_FALSE(s.enqueue(4, 3));  // two slots spoken for, one waiting: full
  const StepPlan plan = s.schedule();
  ASSERT_EQ(plan.admitted.size(), 2u);
  EXPECT_EQ(plan.admitted[0], (std::pair<RequestId, int>{1, 0}));
  EXPECT_EQ(plan.admitted[1], (std::pair<RequestId, int>{2, 1}));
  EXPECT_EQ(s.waiting(), 1);
  EXPECT_EQ(s.running(), 2);
  EXPECT_FALSE(s.enqueue(5, 3));
  s.finish(1);
  const StepPlan next = s.schedule();
  ASSERT_EQ(next.retired.size(), 1u);
  EXPECT_EQ(next.retired[0].id, 1u);
  EXPECT_FALSE(next.retired[0].cancelled);
  ASSERT_EQ(next.admitted.size(), 1u);
  EXPECT_EQ(next.admitted[0], (std::pair<RequestId, int>{3, 0}));  // the freed slot
  EXPECT_TRUE(s.enqueue(6, 3));
}

TEST(ServeSchedulerTest, EveryStepDecodesEveryRunningSequenceWhileALongPromptIsChunked) {
  Scheduler s(options(2, 4, 4));  // budget 6
  ASSERT_TRUE(s.enqueue(1, 2));
  EXPECT_EQ(prefill(s, 1), 1);
  ASSERT_TRUE(s.enqueue(2, 50));
  int prompt_done = 0;
  for (int step = 0; step < 100 && prompt_done < 50; ++step) {
    const StepPlan plan = s.schedule();
    const SlotWork* decode = work_of(plan, 1);
    ASSERT_NE(decode, nullptr) << "step " << step << " stalled the running sequence";
    EXPECT_TRUE(decode->decode);
    const SlotWork* chunk = work_of(plan, 2);
    ASSERT_NE(chunk, nullptr);
    EXPECT_FALSE(chunk->decode);
    EXPECT_EQ(chunk->begin, prompt_done);
    EXPECT_LE(chunk->count, 4);
    EXPECT_LE(plan.tokens(), s.options().step_token_budget);
    prompt_done += chunk->count;
    EXPECT_EQ(chunk->last_chunk, prompt_done == 50);
    s.completed(plan);
  }
  EXPECT_EQ(prompt_done, 50);
  const StepPlan plan = s.schedule();
  EXPECT_EQ(plan.work.size(), 2u);
  EXPECT_TRUE(std::all_of(plan.work.begin(), plan.work.end(), [](const SlotWork& w) { return w.decode; }));
}

TEST(ServeSchedulerTest, ChunksWaitForBudgetButNeverShrink) {
  Scheduler s(options(3, 0, 8));  // budget 11: one chunk of 8 per step beside the others
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(s.enqueue(id, 8));
  const StepPlan first = s.schedule();
  ASSERT_EQ(first.work.size(), 1u);  // 8 + 8 exceeds 11: the second waits, uncut
  EXPECT_EQ(first.work[0].id, 1u);
  EXPECT_EQ(first.work[0].count, 8);
  s.completed(first);
  const StepPlan second = s.schedule();
  ASSERT_EQ(second.work.size(), 2u);
  EXPECT_TRUE(work_of(second, 1)->decode);
  EXPECT_EQ(work_of(second, 2)->count, 8);  // first come first served
  EXPECT_EQ(work_of(second, 3), nullptr);
}

TEST(ServeSchedulerTest, CancelledRequestsLeaveQueueAndSlot) {
  Scheduler s(options(1, 2));
  ASSERT_TRUE(s.enqueue(1, 3));
  ASSERT_TRUE(s.enqueue(2, 3));
  ASSERT_TRUE(s.enqueue(3, 3));
  s.schedule();  // 1 runs, 2 and 3 wait
  s.cancel(2);   // waiting
  s.cancel(1);   // running
  s.cancel(99);  // unknown: nothing
  const StepPlan plan = s.schedule();
  ASSERT_EQ(plan.retired.size(), 2u);
  std::set<std::pair<RequestId, int>> retired;
  for (const Retired& r : plan.retired) {
    EXPECT_TRUE(r.cancelled);
    retired.emplace(r.id, r.slot);
  }
  EXPECT_EQ(retired, (std::set<std::pair<RequestId, int>>{{1, 0}, {2, -1}}));
  ASSERT_EQ(plan.admitted.size(), 1u);
  EXPECT_EQ(plan.admitted[0], (std::pair<RequestId, int>{3, 0}));
  s.cancel(3);
  s.schedule();
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.free_slots(), 1);
}

TEST(ServeSchedulerTest, ManyRequestsAllRetireAndEverySlotComesBack) {
  Scheduler s(options(4, 8, 8));
  RequestId next = 1;
  int finished = 0;
  for (int step = 0; step < 5000 && finished < 200; ++step) {
    while (next <= 200 && s.enqueue(next, static_cast<int>(1 + next * 7 % 40))) ++next;
    const StepPlan plan = s.schedule();
    std::set<int> slots;
    for (const SlotWork& w : plan.work) EXPECT_TRUE(slots.insert(w.slot).second) << "a slot ran twice in a step";
    s.completed(plan);
    for (const SlotWork& w : plan.work) {
      if (w.decode && (w.id + static_cast<RequestId>(step)) % 5 == 0) {
        if (w.id % 3 == 0) s.cancel(w.id); else s.finish(w.id);
      }
    }
    finished += static_cast<int>(plan.retired.size());
  }
  s.schedule();
  EXPECT_EQ(finished, 200);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.free_slots(), 4);
}

}  // namespace
}  // namespace braid::serve
