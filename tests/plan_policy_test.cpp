// Planner policies: each produces a valid plan on random DAGs, and each follows its rule.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "braid/ops.h"
#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

std::string problems_of(const ValidationReport& report) {
  std::string s;
  for (const std::string& p : report.problems) s += p + "\n";
  return s;
}

TEST(PlanPolicy, RandomDagsGiveValidPlansUnderEveryPolicy) {
  int multi_stream_plans = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    const Graph g = test::random_dag(seed, 5 + static_cast<int>(seed % 50));
    PlanOptions options;
    options.max_streams = 1 + static_cast<int>(seed % 4);
    options.in_place = seed % 3 != 0;
    for (Policy policy : all_policies()) {
      const Plan plan = make_plan(g, policy, options);
      const ValidationReport report = validate(g, plan);
      ASSERT_TRUE(report.ok) << "seed " << seed << " policy " << policy_name(policy) << "\n"
                             << problems_of(report) << to_text(g, plan);
      EXPECT_EQ(plan.steps.size(), g.compute_nodes().size());
      EXPECT_LE(plan.stream_count, options.max_streams);
      EXPECT_EQ(plan.policy, policy_name(policy));
      EXPECT_GT(plan.arena_bytes, 0u);
      EXPECT_GT(plan.critical_path_estimate_us, 0.0);
      if (plan.stream_count > 1) ++multi_stream_plans;
    }
  }
  EXPECT_GT(multi_stream_plans, 300);  // the DAGs really branch
}

TEST(PlanPolicy, SerialIsOneStreamInGraphOrderWithoutEvents) {
  const Graph g = test::random_dag(7, 40);
  const Plan plan = make_plan(g, Policy::Serial);
  EXPECT_EQ(plan.stream_count, 1);
  EXPECT_EQ(plan.event_count, 0);
  EXPECT_EQ(plan.wait_count(), 0);
  const std::vector<TensorId> nodes = g.compute_nodes();
  for (size_t i = 0; i < nodes.size(); ++i) EXPECT_EQ(plan.steps[i].node, nodes[i]);
  // auto's own plan is serial's; its candidates start with serial.
  EXPECT_EQ(make_plan(g, Policy::Auto).policy, "serial");
}

// x -> norm -> three matmuls (weights do not count as inputs) -> sum.
struct FanOut {
  Graph g;
  TensorId norm, a, b, c, ab, abc;
  FanOut() {
    const TensorId x = g.input("x", DType::F32, {8, 1, 1, 1});
    norm = ops::rms_norm(g, x, kNoTensor, 1e-5f);
    a = ops::mul_mat(g, g.weight("wa", DType::F32, {8, 8, 1, 1}), norm);
    b = ops::mul_mat(g, g.weight("wb", DType::F32, {8, 8, 1, 1}), norm);
    c = ops::mul_mat(g, g.weight("wc", DType::F32, {8, 8, 1, 1}), norm);
    ab = ops::add(g, a, b);
    abc = ops::add(g, ab, c);
    g.mark_output(abc);
    g.finalize();
  }
  int stream_of(const Plan& plan, TensorId id) const {
    for (const PlanStep& step : plan.steps) {
      if (step.node == id) return step.stream;
    }
    return -1;
  }
};

TEST(PlanPolicy, BranchFollowsPr4719) {
  FanOut f;
  const Plan plan = make_plan(f.g, Policy::Branch);
  // The norm's counter hands out streams 0, 1, 2 to its three consumers.
  EXPECT_EQ(f.stream_of(plan, f.norm), 0);
  EXPECT_EQ(f.stream_of(plan, f.a), 0);
  EXPECT_EQ(f.stream_of(plan, f.b), 1);
  EXPECT_EQ(f.stream_of(plan, f.c), 2);
  // ab takes a's counter (first use: a's own stream); abc takes ab's.
  EXPECT_EQ(f.stream_of(plan, f.ab), 0);
  EXPECT_EQ(f.stream_of(plan, f.abc), 0);
  // b and c wait for the norm's event, ab for b's, abc for c's.
  EXPECT_EQ(plan.event_count, 3);
  EXPECT_EQ(plan.wait_count(), 4);
  EXPECT_TRUE(validate(f.g, plan).ok);

  PlanOptions two;
  two.max_streams = 2;
  const Plan wrapped = make_plan(f.g, Policy::Branch, two);
  EXPECT_EQ(wrapped.stream_count, 2);
  EXPECT_EQ(f.stream_of(wrapped, f.c), 0);  // 2 wraps to 0
}

TEST(PlanPolicy, LevelsDealsEachLevelRoundRobin) {
  FanOut f;
  PlanOptions two;
  two.max_streams = 2;
  const Plan plan = make_plan(f.g, Policy::Levels, two);
  EXPECT_EQ(f.stream_of(plan, f.a), 0);
  EXPECT_EQ(f.stream_of(plan, f.b), 1);
  EXPECT_EQ(f.stream_of(plan, f.c), 0);
  EXPECT_TRUE(validate(f.g, plan).ok);
}

TEST(PlanPolicy, ChainsUseTheTransitiveReduction) {
  // a -> b -> c plus the shortcut a -> c: one chain. Matching on the unreduced DAG could
  // pair a with c and leave b alone.
  Graph g;
  const TensorId x = g.input("x", DType::F32, {8, 1, 1, 1});
  const TensorId a = ops::silu(g, x);
  const TensorId b = ops::silu(g, a);
  const TensorId c = ops::add(g, a, b);
  g.mark_output(c);
  g.finalize();
  const Plan plan = make_plan(g, Policy::Chains);
  EXPECT_EQ(plan.stream_count, 1);
  EXPECT_EQ(plan.event_count, 0);

  // A diamond needs two chains; three parallel matmuls need three.
  FanOut f;
  const Plan fan = make_plan(f.g, Policy::Chains);
  EXPECT_EQ(fan.stream_count, 3);
  EXPECT_TRUE(validate(f.g, fan).ok);
  PlanOptions two;
  two.max_streams = 2;
  EXPECT_EQ(make_plan(f.g, Policy::Chains, two).stream_count, 2);
}

// Stream of the step whose node is a matmul (or matmul_id) with weight `weight_name`.
std::map<std::string, std::vector<int>> streams_by_weight(const Graph& g, const Plan& plan) {
  std::map<std::string, std::vector<int>> out;
  for (const PlanStep& step : plan.steps) {
    const Tensor& t = g[step.node];
    if (t.op == Op::MulMat || t.op == Op::MulMatId) out[g[t.src[0]].name].push_back(step.stream);
  }
  return out;
}

TEST(PlanPolicy, CostForksQkvAndGateUpOfLlama) {
  test::LlamaShape shape;
  shape.layers = 4;
  const Graph g = test::llama_decode_graph(shape);
  const Plan plan = make_plan(g, Policy::Cost);
  ASSERT_TRUE(validate(g, plan).ok) << problems_of(validate(g, plan));
  const auto streams = streams_by_weight(g, plan);
  for (int l = 0; l < shape.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::set<int> qkv{streams.at(p + "attn_q")[0], streams.at(p + "attn_k")[0], streams.at(p + "attn_v")[0]};
    EXPECT_EQ(qkv.size(), 3u) << "layer " << l;
    EXPECT_NE(streams.at(p + "ffn_gate")[0], streams.at(p + "ffn_up")[0]) << "layer " << l;
  }
  EXPECT_LE(plan.stream_count, 4);
  const Plan serial = make_plan(g, Policy::Serial);
  EXPECT_LT(plan.critical_path_estimate_us, serial.critical_path_estimate_us);
}

TEST(PlanPolicy, CostForksMoeExpertSlots) {
  const Graph g = test::moe_block_graph();
  const Plan plan = make_plan(g, Policy::Cost);
  ASSERT_TRUE(validate(g, plan).ok);
  const auto streams = streams_by_weight(g, plan);
  // Slot 0 and slot 1 of each expert matrix run on different streams.
  for (const char* w : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
    ASSERT_EQ(streams.at(w).size(), 2u);
    EXPECT_NE(streams.at(w)[0], streams.at(w)[1]) << w;
  }
}

TEST(PlanPolicy, CostKeepsTinyChainsOnOneStream) {
  // A chain with a short side branch: forking would cost more in sync than it saves.
  Graph g;
  const TensorId x = g.input("x", DType::F32, {8, 1, 1, 1});
  const TensorId a = ops::silu(g, x);
  const TensorId b = ops::scale(g, a, 2.0f);
  const TensorId c = ops::silu(g, a);
  g.mark_output(ops::add(g, b, c));
  g.finalize();
  const Plan plan = make_plan(g, Policy::Cost);
  EXPECT_EQ(plan.stream_count, 1);
  EXPECT_EQ(plan.event_count, 0);
}

TEST(PlanPolicy, CandidatePlansStartWithSerialAndAreDistinct) {
  test::LlamaShape shape;
  shape.layers = 2;
  const Graph g = test::llama_decode_graph(shape);
  const std::vector<Plan> plans = candidate_plans(g);
  ASSERT_GE(plans.size(), 2u);
  EXPECT_EQ(plans[0].policy, "serial");
  std::set<std::string> policies;
  for (const Plan& plan : plans) {
    EXPECT_TRUE(validate(g, plan).ok) << plan.policy;
    EXPECT_TRUE(policies.insert(plan.policy).second);
  }
  // Identical schedules are offered once: on a pure chain every policy is serial.
  Graph chain;
  TensorId t = chain.input("x", DType::F32, {8, 1, 1, 1});
  for (int i = 0; i < 5; ++i) t = ops::silu(chain, t);
  chain.mark_output(t);
  chain.finalize();
  EXPECT_EQ(candidate_plans(chain).size(), 1u);
}

TEST(PlanPolicy, NamesParseAndBadInputThrows) {
  for (Policy p : {Policy::Serial, Policy::Branch, Policy::Levels, Policy::Chains, Policy::Cost, Policy::Auto}) {
    Policy parsed = Policy::Serial;
    ASSERT_TRUE(parse_policy(policy_name(p), &parsed));
    EXPECT_EQ(parsed, p);
  }
  Policy parsed;
  EXPECT_TRUE(parse_policy("COST", &parsed));
  EXPECT_FALSE(parse_policy("fastest", &parsed));

  Graph open;
  open.mark_output(ops::silu(open, open.input("x", DType::F32, {8, 1, 1, 1})));
  EXPECT_THROW(make_plan(open, Policy::Serial), Error);  // not finalized
  const Graph g = test::random_dag(3, 10);
  PlanOptions none;
  none.max_streams = 0;
  EXPECT_THROW(make_plan(g, Policy::Cost, none), Error);
}

TEST(PlanPolicy, GraphsWithoutComputeAndManyStreams) {
  Graph views_only;
  const TensorId x = views_only.input("x", DType::F32, {8, 2, 1, 1});
  views_only.mark_output(ops::reshape(views_only, x, {16, 1, 1, 1}));
  views_only.finalize();
  for (Policy p : all_policies()) {
    const Plan plan = make_plan(views_only, p);
    EXPECT_TRUE(plan.steps.empty());
    EXPECT_EQ(plan.arena_bytes, 0u);
    EXPECT_TRUE(validate(views_only, plan).ok);
  }
  // More streams than the allocator tracks in its bit masks: still valid.
  PlanOptions wide;
  wide.max_streams = 100;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const Graph g = test::random_dag(seed, 60);
    for (Policy p : all_policies()) {
      const Plan plan = make_plan(g, p, wide);
      EXPECT_TRUE(validate(g, plan).ok) << policy_name(p);
    }
  }
}

TEST(PlanPolicy, PlanningFromSeveralThreadsGivesTheSamePlans) {
  test::LlamaShape shape;
  shape.layers = 2;
  const Graph g = test::llama_decode_graph(shape);
  std::vector<std::string> expected;
  for (Policy p : all_policies()) expected.push_back(to_json(g, make_plan(g, p)));
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (Policy p : all_policies()) got[t].push_back(to_json(g, make_plan(g, p)));
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& one : got) EXPECT_EQ(one, expected);
}

}  // namespace
}  // namespace braid
