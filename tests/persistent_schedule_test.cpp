// The persistent schedule (persistent_schedule.h): every policy's plan of the model graphs
// becomes a schedule that passes the plan validator's checks with its waits alone, runs to
// the end on any number of resident blocks, and lets branches overlap; a schedule missing
// an ordering, or waiting on a later step, is caught.
#include <gtest/gtest.h>

#include <random>

#include "braid/model.h"
#include "braid/persistent_schedule.h"
#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

Graph small_model(const char* preset, int tokens) {
  ModelConfig c = preset_config(preset);
  c.n_layer = 2;
  c.n_ctx = 64;
  return build_graph_shapes(c, tokens).graph;
}

TEST(PersistentSchedule, EveryPolicysPlanOfTheModelsGivesAValidScheduleThatFinishes) {
  for (const char* preset : {"tiny-256", "llama-1b", "moe-8x1b"}) {
    for (int tokens : {1, 5}) {
      const Graph g = small_model(preset, tokens);
      for (Policy policy : all_policies()) {
        SCOPED_TRACE(std::string(preset) + " " + std::string(policy_name(policy)) + " n=" + std::to_string(tokens));
        const Plan plan = make_plan(g, policy);
        const PersistentSchedule schedule = make_persistent_schedule(g, plan);
        const ValidationReport report = validate_schedule(g, plan, schedule);
        ASSERT_TRUE(report.ok) << report.problems.front();
        std::mt19937 rng(7);
        std::uniform_real_distribution<double> spread(0.5, 2.0);
        std::vector<double> durations(static_cast<size_t>(schedule.task_count));
        double total = 0;
        for (double& d : durations) total += d = spread(rng);
        auto duration = [&](int task) { return durations[static_cast<size_t>(task)]; };
        // One block runs the tasks one after another.
        EXPECT_DOUBLE_EQ(simulate_schedule(schedule, 1, duration), total);
        for (int blocks : {2, 3, 8, 132}) EXPECT_LE(simulate_schedule(schedule, blocks, duration), total);
      }
    }
  }
}

TEST(PersistentSchedule, TilesFollowRowsOfProductsHeadsOfAttentionAndElementsOfTheRest) {
  const Graph g = small_model("llama-1b", 1);
  TileOptions options;
  options.rows_per_task = 64;
  options.elements_per_task = 1024;
  for (TensorId id : g.compute_nodes()) {
    const Tensor& t = g[id];
    int64_t expected = (t.elements() + 1023) / 1024;
    if (t.op == Op::MulMat || t.op == Op::MulMatId) expected = (t.ne[0] + 63) / 64;
    if (t.op == Op::Attention) expected = t.ne[1] * t.ne[2];
    if (t.op == Op::KvWrite) expected = (g[t.src[1]].elements() + 1023) / 1024;
    EXPECT_EQ(tiles_of(g, id, options), std::max<int64_t>(expected, 1)) << t.name;
  }
}

// Q/K/V and gate/up on their own streams: many blocks finish the branchy plan's schedule
// sooner than the serial one's, where every step waits for the one before.
TEST(PersistentSchedule, BranchesOfAMultiStreamPlanOverlap) {
  const Graph g = small_model("llama-1b", 1);
  auto unit = [](int) { return 1.0; };
  const PersistentSchedule serial = make_persistent_schedule(g, make_plan(g, Policy::Serial));
  const PersistentSchedule branch = make_persistent_schedule(g, make_plan(g, Policy::Branch));
  EXPECT_EQ(serial.task_count, branch.task_count);
  for (size_t s = 1; s < serial.steps.size(); ++s) EXPECT_EQ(serial.steps[s].waits, std::vector<int>{static_cast<int>(s) - 1});
  EXPECT_LT(simulate_schedule(branch, 1024, unit), simulate_schedule(serial, 1024, unit));
}

TEST(PersistentSchedule, AMissingOrderingIsCaught) {
  const Graph g = test::llama_decode_graph(test::LlamaShape{});
  const Plan plan = make_plan(g, Policy::Serial);
  PersistentSchedule schedule = make_persistent_schedule(g, plan);
  // Drop the wait of a step that reads the step before it: the read is no longer ordered.
  for (size_t s = 1; s < schedule.steps.size(); ++s) {
    const auto& src = g[schedule.steps[s].node].src;
    if (std::find(src.begin(), src.end(), schedule.steps[s - 1].node) == src.end()) continue;
    schedule.steps[s].waits.clear();
    const ValidationReport report = validate_schedule(g, plan, schedule);
    ASSERT_FALSE(report.ok);
    EXPECT_NE(report.problems.front().find(g[schedule.steps[s].node].name), std::string::npos) << report.problems.front();
    return;
  }
  FAIL() << "no step reads the step before it";
}

TEST(PersistentSchedule, AWaitOnALaterStepIsRejectedAndWouldDeadlock) {
  const Graph g = test::llama_decode_graph(test::LlamaShape{});
  const Plan plan = make_plan(g, Policy::Serial);
  PersistentSchedule schedule = make_persistent_schedule(g, plan);
  schedule.steps[0].waits = {1};
  const ValidationReport report = validate_schedule(g, plan, schedule);
  ASSERT_FALSE(report.ok);
  EXPECT_NE(report.problems.front().find("not an earlier step"), std::string::npos) << report.problems.front();
  // One block holds step 0's first ticket and waits for step 1, whose tickets come later.
  EXPECT_THROW(simulate_schedule(schedule, 1, [](int) { return 1.0; }), Error);
}

TEST(PersistentSchedule, TextNamesEveryStepAndItsWaits) {
  const Graph g = small_model("tiny-256", 1);
  const Plan plan = make_plan(g, Policy::Levels);
  const PersistentSchedule schedule = make_persistent_schedule(g, plan);
  const std::string text = to_text(g, schedule);
  EXPECT_NE(text.find(std::to_string(schedule.task_count) + " tasks"), std::string::npos);
  for (const ScheduleStep& step : schedule.steps) EXPECT_NE(text.find(g[step.node].name), std::string::npos);
}

}  // namespace
}  // namespace braid
