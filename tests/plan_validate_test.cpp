// The validator catches every broken plan: mutation tests remove single waits and force
// unsafe memory reuse into valid plans; hand-broken event and order structures.
#include <gtest/gtest.h>

#include <algorithm>

#include "braid/ops.h"
#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

std::string joined(const ValidationReport& report) {
  std::string s;
  for (const std::string& p : report.problems) s += p + "\n";
  return s;
}

// Multi-stream plans of random DAGs: the material for mutations.
std::vector<std::pair<Graph, Plan>> branching_plans(int count) {
  std::vector<std::pair<Graph, Plan>> out;
  for (uint32_t seed = 1000; static_cast<int>(out.size()) < count; ++seed) {
    Graph g = test::random_dag(seed, 12 + static_cast<int>(seed % 25));
    const Policy policy = all_policies()[1 + seed % 4];
    PlanOptions options;
    options.max_streams = 2 + static_cast<int>(seed % 3);
    Plan plan = make_plan(g, policy, options);
    if (plan.wait_count() == 0) continue;
    out.emplace_back(std::move(g), std::move(plan));
  }
  return out;
}

TEST(PlanValidate, RemovingAnySingleWaitIsCaught) {
  int mutations = 0;
  for (const auto& [g, plan] : branching_plans(60)) {
    ASSERT_TRUE(validate(g, plan).ok) << joined(validate(g, plan));
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      for (size_t w = 0; w < plan.steps[s].waits.size(); ++w) {
        Plan broken = plan;
        broken.steps[s].waits.erase(broken.steps[s].waits.begin() + static_cast<long>(w));
        const ValidationReport report = validate(g, broken);
        ASSERT_FALSE(report.ok) << "wait " << plan.steps[s].waits[w] << " of step " << s << " was not needed\n"
                                << to_text(g, plan);
        // The culprit is named: the step that lost its wait.
        EXPECT_NE(joined(report).find(g[plan.steps[s].node].name), std::string::npos) << joined(report);
        ++mutations;
      }
    }
  }
  EXPECT_GT(mutations, 100);
}

TEST(PlanValidate, ForcingAnyUnsafeReuseIsCaught) {
  int mutations = 0;
  for (const auto& [g, plan] : branching_plans(40)) {
    const HappensBefore order(plan);
    std::vector<int> step_of(static_cast<size_t>(g.tensor_count()), -1);
    for (size_t s = 0; s < plan.steps.size(); ++s) step_of[static_cast<size_t>(plan.steps[s].node)] = static_cast<int>(s);
    // Users of each arena tensor, from the graph (producer and readers through views).
    std::vector<std::vector<int>> users(static_cast<size_t>(g.tensor_count()));
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const TensorId node = plan.steps[s].node;
      if (plan.arena_offset[static_cast<size_t>(node)] >= 0) users[static_cast<size_t>(node)].push_back(static_cast<int>(s));
      for (TensorId src : g[node].src) {
        const TensorId root = g.storage_root(src);
        if (plan.arena_offset[static_cast<size_t>(root)] >= 0) users[static_cast<size_t>(root)].push_back(static_cast<int>(s));
      }
    }
    std::vector<TensorId> arena;
    for (TensorId id = 0; id < g.tensor_count(); ++id) {
      if (plan.arena_offset[static_cast<size_t>(id)] >= 0) arena.push_back(id);
    }
    for (TensorId first : arena) {
      for (TensorId second : arena) {
        const int producer = step_of[static_cast<size_t>(second)];
        if (step_of[static_cast<size_t>(first)] >= producer) continue;
        // Writing in place over a direct input is the one legal overlap of a reader and a producer.
        const Tensor& out = g[second];
        const bool in_place = (out.op == Op::Add || out.op == Op::Mul || out.op == Op::Scale || out.op == Op::Silu ||
                               out.op == Op::Swiglu) &&
                              g[first].ne == out.ne && std::count(out.src.begin(), out.src.end(), first) > 0;
        const bool safe = std::all_of(users[static_cast<size_t>(first)].begin(), users[static_cast<size_t>(first)].end(),
                                      [&](int u) { return order.ordered(u, producer) || (u == producer && in_place); });
        if (safe) continue;
        Plan broken = plan;
        broken.arena_offset[static_cast<size_t>(second)] = plan.arena_offset[static_cast<size_t>(first)];
        broken.arena_bytes = std::max(plan.arena_bytes, static_cast<size_t>(plan.arena_offset[static_cast<size_t>(first)]) +
                                                           g[second].bytes());
        const ValidationReport report = validate(g, broken);
        ASSERT_FALSE(report.ok) << g[first].name << " / " << g[second].name;
        const std::string text = joined(report);
        EXPECT_NE(text.find(g[first].name), std::string::npos) << text;
        EXPECT_NE(text.find(g[second].name), std::string::npos) << text;
        ++mutations;
      }
    }
  }
  EXPECT_GT(mutations, 500);
}

// x -> a -> b on stream 0, c on stream 1 from x, d = a + c: small enough to break by hand.
struct Small {
  Graph g;
  TensorId a, b, c, d;
  Plan plan;
  Small() {
    const TensorId x = g.input("x", DType::F32, {64, 1, 1, 1});
    a = ops::silu(g, x);
    b = ops::scale(g, a, 2.0f);
    c = ops::mul_mat(g, g.weight("w", DType::F32, {64, 64, 1, 1}), x);
    d = ops::add(g, b, c);
    g.mark_output(d);
    g.finalize();
    plan = make_plan(g, Policy::Branch);
  }
};

TEST(PlanValidate, EventMistakesAreNamed) {
  Small s;
  ASSERT_EQ(s.plan.stream_count, 2) << to_text(s.g, s.plan);
  ASSERT_TRUE(validate(s.g, s.plan).ok) << joined(validate(s.g, s.plan));
  ASSERT_EQ(s.plan.event_count, 1);
  const auto recorder = std::find_if(s.plan.steps.begin(), s.plan.steps.end(), [](const PlanStep& p) { return p.record == 0; });
  ASSERT_NE(recorder, s.plan.steps.end());

  Plan twice = s.plan;
  for (PlanStep& step : twice.steps) {
    if (step.record < 0 && step.waits.empty()) step.record = 0;
  }
  EXPECT_NE(joined(validate(s.g, twice)).find("recorded twice"), std::string::npos);

  Plan out_of_range = s.plan;
  for (PlanStep& step : out_of_range.steps) {
    if (!step.waits.empty()) step.waits[0] = 7;
  }
  EXPECT_NE(joined(validate(s.g, out_of_range)).find("event 7"), std::string::npos);

  Plan never_recorded = s.plan;
  never_recorded.steps[static_cast<size_t>(recorder - s.plan.steps.begin())].record = -1;
  const std::string text = joined(validate(s.g, never_recorded));
  EXPECT_NE(text.find("before any step records it"), std::string::npos) << text;
}

TEST(PlanValidate, OrderAndCoverageMistakesAreNamed) {
  Small s;
  Plan reversed = s.plan;
  std::reverse(reversed.steps.begin(), reversed.steps.end());
  EXPECT_NE(joined(validate(s.g, reversed)).find("topological"), std::string::npos);

  Plan missing = s.plan;
  missing.steps.pop_back();
  EXPECT_NE(joined(validate(s.g, missing)).find("has no step"), std::string::npos);

  Plan bad_stream = s.plan;
  bad_stream.steps[0].stream = 5;
  EXPECT_NE(joined(validate(s.g, bad_stream)).find("stream 5"), std::string::npos);

  Plan bad_offset = s.plan;
  bad_offset.arena_offset[static_cast<size_t>(s.a)] += 4;
  EXPECT_NE(joined(validate(s.g, bad_offset)).find("aligned"), std::string::npos);

  Plan leaf_offset = s.plan;
  leaf_offset.arena_offset[0] = 0;  // the input x
  EXPECT_NE(joined(validate(s.g, leaf_offset)).find("not an arena tensor"), std::string::npos);
}

TEST(PlanValidate, OutputsAreNeverShared) {
  // a is an output; c, produced after a's last reader, may still not take a's bytes.
  Graph g;
  const TensorId a = ops::silu(g, g.input("x", DType::F32, {64, 1, 1, 1}));
  const TensorId b = ops::scale(g, a, 2.0f);
  const TensorId c = ops::scale(g, b, 3.0f);
  g.mark_output(a);
  g.mark_output(c);
  g.finalize();
  const Plan plan = make_plan(g, Policy::Serial);
  ASSERT_TRUE(validate(g, plan).ok);
  Plan broken = plan;
  broken.arena_offset[static_cast<size_t>(c)] = plan.arena_offset[static_cast<size_t>(a)];
  const std::string text = joined(validate(g, broken));
  EXPECT_NE(text.find("output " + g[a].name), std::string::npos) << text;
  EXPECT_NE(text.find(g[c].name), std::string::npos) << text;
}

TEST(PlanValidate, StateOverwritesMustBeOrdered) {
  // An attention reads the raw cache while a KvWrite overwrites it: the plan must order them.
  Graph g;
  const TensorId x = g.input("x", DType::F32, {4, 2, 1, 1});
  const TensorId pos = g.input("pos", DType::I32, {1, 1, 1, 1});
  const TensorId cache = g.state("cache", DType::F32, {4, 2, 4, 1});
  const TensorId q = ops::silu(g, x);
  const TensorId read = ops::attention(g, q, cache, cache, pos, 1.0f);
  const TensorId write = ops::kv_write(g, cache, ops::scale(g, x, 2.0f), pos);
  g.mark_output(read);
  g.mark_output(write);
  g.finalize();
  for (Policy policy : all_policies()) {
    const Plan plan = make_plan(g, policy);
    ASSERT_TRUE(validate(g, plan).ok) << policy_name(policy) << "\n" << joined(validate(g, plan));
  }
  // Put the write on its own stream with no waits: the validator objects.
  Plan broken = make_plan(g, Policy::Serial);
  for (PlanStep& step : broken.steps) {
    if (step.node == write) step.stream = 1;
  }
  broken.stream_count = 2;
  const std::string text = joined(validate(g, broken));
  EXPECT_NE(text.find("writes cache in place"), std::string::npos) << text;
}

TEST(HappensBefore, AgreesWithReachabilityOverWaits) {
  for (const auto& [g, plan] : branching_plans(30)) {
    const HappensBefore order(plan);
    const int n = static_cast<int>(plan.steps.size());
    // Brute force: edges from the previous step of each stream and from each wait's recorder.
    std::vector<std::vector<char>> reach(static_cast<size_t>(n), std::vector<char>(static_cast<size_t>(n), 0));
    std::vector<int> recorder(static_cast<size_t>(plan.event_count), -1);
    for (int b = 0; b < n; ++b) {
      std::vector<int> direct;
      for (int a = b - 1; a >= 0; --a) {
        if (plan.steps[static_cast<size_t>(a)].stream == plan.steps[static_cast<size_t>(b)].stream) {
          direct.push_back(a);
          break;
        }
      }
      for (int e : plan.steps[static_cast<size_t>(b)].waits) direct.push_back(recorder[static_cast<size_t>(e)]);
      for (int a : direct) {
        reach[static_cast<size_t>(b)][static_cast<size_t>(a)] = 1;
        for (int c = 0; c < n; ++c) reach[static_cast<size_t>(b)][static_cast<size_t>(c)] |= reach[static_cast<size_t>(a)][static_cast<size_t>(c)];
      }
      if (plan.steps[static_cast<size_t>(b)].record >= 0) recorder[static_cast<size_t>(plan.steps[static_cast<size_t>(b)].record)] = b;
    }
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < n; ++b) {
        ASSERT_EQ(order.ordered(a, b), reach[static_cast<size_t>(b)][static_cast<size_t>(a)] != 0) << a << " -> " << b;
      }
    }
  }
}

}  // namespace
}  // namespace braid
