// The persistent kernel's schedule and protocol without a GPU: the flat arrays the kernel
// reads (FlatSchedule) carry exactly the schedule that validate_schedule accepted, and the
// kernel's task loop (Note [Persistent protocol], src/backend/cuda/persistent/
// persistent_kernel.cu), played by threads as blocks with the same counters, runs every
// task once, each after every task of the steps it waits on, and leaves the counters zero
// for the next run.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "braid/model.h"
#include "braid/persistent_schedule.h"
#include "braid/plan.h"

namespace braid {
namespace {

Graph decode_graph(const char* preset) {
  ModelConfig c = preset_config(preset);
  c.n_layer = 2;
  c.n_ctx = 64;
  return build_graph_shapes(c, 1).graph;
}

TEST(PersistentProtocol, TheFlatScheduleIsTheValidatedSchedule) {
  for (const char* preset : {"tiny-256", "llama-1b"}) {
    const Graph g = decode_graph(preset);
    for (Policy policy : all_policies()) {
      SCOPED_TRACE(std::string(preset) + " " + std::string(policy_name(policy)));
      const Plan plan = make_plan(g, policy);
      const PersistentSchedule schedule = make_persistent_schedule(g, plan);
      const FlatSchedule flat = flatten(schedule);
      ASSERT_EQ(flat.task_step.size(), static_cast<size_t>(schedule.task_count));
      ASSERT_EQ(flat.wait_begin.size(), schedule.steps.size() + 1);
      const PersistentSchedule back = unflatten(flat, plan);
      ASSERT_EQ(back.task_count, schedule.task_count);
      ASSERT_EQ(back.steps.size(), schedule.steps.size());
      for (size_t s = 0; s < schedule.steps.size(); ++s) {
        EXPECT_EQ(back.steps[s].node, schedule.steps[s].node);
        EXPECT_EQ(back.steps[s].tiles, schedule.steps[s].tiles);
        EXPECT_EQ(back.steps[s].first_task, schedule.steps[s].first_task);
        EXPECT_EQ(back.steps[s].waits, schedule.steps[s].waits);
      }
      const ValidationReport report = validate_schedule(g, plan, back);
      EXPECT_TRUE(report.ok) << (report.ok ? "" : report.problems.front());
    }
  }
}

TEST(PersistentProtocol, InconsistentFlatArraysAreRefused) {
  const Graph g = decode_graph("tiny-256");
  const Plan plan = make_plan(g, Policy::Serial);
  const FlatSchedule flat = flatten(make_persistent_schedule(g, plan));
  FlatSchedule short_tiles = flat;
  short_tiles.tiles.pop_back();
  EXPECT_THROW(unflatten(short_tiles, plan), Error);
  FlatSchedule wrong_ticket = flat;
  wrong_ticket.task_step[2] = 0;  // ticket 2 is the first of step 2 (embedding and norm are one tile each)
  EXPECT_THROW(unflatten(wrong_ticket, plan), Error);
  FlatSchedule bad_waits = flat;
  bad_waits.wait_begin.back() = static_cast<int32_t>(flat.waits.size() + 1);
  EXPECT_THROW(unflatten(bad_waits, plan), Error);
}

// The kernel's loop, a thread per block. Each task writes its cell (the run's number) and
// checks, before that, that every cell of every step its step waits on holds the run's
// number: what a tile reading its inputs needs. Plain ints for the cells: the counters'
// release (fetch_add) and acquire (load) order them, as __threadfence + atomicAdd and
// ld.acquire do on the device (ThreadSanitizer would flag a missing edge).
struct Emulation {
  const FlatSchedule& flat;
  std::vector<std::atomic<int>> counters;  // ticket, exited, then done per step
  std::vector<int> cells;                  // per task
  std::atomic<int> violations{0};
  std::atomic<int> runs_of_task_total{0};

  explicit Emulation(const FlatSchedule& f)
      : flat(f), counters(2 + f.tiles.size()), cells(f.task_step.size(), 0) {}

  void block(int blocks, int run, unsigned seed) {
    std::mt19937 rng(seed);
    const int task_count = static_cast<int>(flat.task_step.size());
    std::atomic<int>* done = counters.data() + 2;
    for (;;) {
      const int ticket = counters[0].fetch_add(1, std::memory_order_relaxed);
      if (ticket >= task_count) break;
      const int step = flat.task_step[static_cast<size_t>(ticket)];
      for (int i = flat.wait_begin[static_cast<size_t>(step)]; i < flat.wait_begin[static_cast<size_t>(step) + 1]; ++i) {
        const int w = flat.waits[static_cast<size_t>(i)];
        while (done[w].load(std::memory_order_acquire) < flat.tiles[static_cast<size_t>(w)]) std::this_thread::yield();
        const int first = flat.first_task[static_cast<size_t>(w)];
        for (int t = first; t < first + flat.tiles[static_cast<size_t>(w)]; ++t) {
          if (cells[static_cast<size_t>(t)] != run) violations.fetch_add(1);
        }
      }
      if (rng() % 4 == 0) std::this_thread::yield();  // vary the interleaving
      cells[static_cast<size_t>(ticket)] = run;
      runs_of_task_total.fetch_add(1, std::memory_order_relaxed);
      done[step].fetch_add(1, std::memory_order_release);
    }
    if (counters[1].fetch_add(1, std::memory_order_acq_rel) == blocks - 1) {
      for (size_t c = 0; c < counters.size(); ++c) counters[c].store(0, std::memory_order_relaxed);
    }
  }

  void run(int blocks, int run_number) {
    std::vector<std::thread> threads;
    for (int b = 0; b < blocks; ++b) threads.emplace_back([&, b] { block(blocks, run_number, 1000u * run_number + b); });
    for (std::thread& t : threads) t.join();  // the kernel's end
  }
};

TEST(PersistentProtocol, ThreadsAsBlocksRunEveryTaskOnceAfterItsWaitsAndResetTheCounters) {
  const Graph g = decode_graph("llama-1b");
  for (Policy policy : {Policy::Serial, Policy::Branch, Policy::Cost}) {
    const Plan plan = make_plan(g, policy);
    TileOptions tiles;
    tiles.rows_per_task = 256;  // fewer, larger tasks: a quicker test, the same protocol
    const FlatSchedule flat = flatten(make_persistent_schedule(g, plan, tiles));
    for (int blocks : {1, 3, 8}) {
      SCOPED_TRACE(std::string(policy_name(policy)) + " blocks " + std::to_string(blocks));
      Emulation e(flat);
      for (int run = 1; run <= 3; ++run) {  // later runs rely on the reset of the one before
        e.run(blocks, run);
        EXPECT_EQ(e.violations.load(), 0);
        EXPECT_EQ(e.runs_of_task_total.load(), run * static_cast<int>(flat.task_step.size()));
        for (const std::atomic<int>& c : e.counters) EXPECT_EQ(c.load(), 0);
      }
    }
  }
}

}  // namespace
}  // namespace braid
