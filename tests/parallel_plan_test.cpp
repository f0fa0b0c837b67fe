// The planner and a tensor-parallel shard's graph: all_reduce nodes cost their traffic,
// and every policy's plan of a shard passes the validator (all_reduce may run in place).
#include <gtest/gtest.h>

#include "braid/model.h"
#include "braid/ops.h"
#include "braid/plan.h"

namespace braid {
namespace {

double all_reduce_estimate_us(int ranks, const CostModel& cost) {
  Graph g;
  const TensorId x = g.input("x", DType::F32, {1 << 20, 1, 1, 1});  // 4 MiB
  g.mark_output(ops::all_reduce(g, x, ranks));
  g.finalize();
  PlanOptions options;
  options.cost = cost;
  return make_plan(g, Policy::Serial, options).critical_path_estimate_us;
}

TEST(ParallelPlan, AllReduceCostsItsRingTraffic) {
  CostModel cost;
  cost.link_gbps = 100;
  cost.collective_us = 10;
  const double bytes = 4.0 * (1 << 20);
  // A ring over 4 ranks sends 2 * 3/4 of the tensor over each link, after a fixed latency.
  const double ring_us = cost.collective_us + 2 * 0.75 * bytes / (cost.link_gbps * 1e3);
  EXPECT_GE(all_reduce_estimate_us(4, cost), ring_us);
  EXPECT_LT(all_reduce_estimate_us(4, cost), ring_us + 2 * cost.launch_us);
  // One rank moves nothing over links: only its local copy.
  EXPECT_LT(all_reduce_estimate_us(1, cost), ring_us / 2);
  cost.link_gbps = 400;
  EXPECT_LT(all_reduce_estimate_us(4, cost), ring_us);
}

TEST(ParallelPlan, EveryPolicyPlansAShardValidly) {
  for (const char* preset : {"llama-1b", "moe-8x1b"}) {
    ModelConfig c = preset_config(preset);
    c.n_layer = 2;
    c.n_ctx = 64;
    const ModelConfig shard = shard_config(c, 4);
    for (int n : {1, 7}) {
      const ModelGraph mg = build_graph_shapes(shard, n);
      int sums = 0;
      for (TensorId id : mg.graph.compute_nodes()) sums += mg.graph[id].op == Op::AllReduce;
      EXPECT_EQ(sums, 2 * c.n_layer);
      for (Policy policy : all_policies()) {
        const Plan plan = make_plan(mg.graph, policy);
        const ValidationReport report = validate(mg.graph, plan);
        EXPECT_TRUE(report.ok) << preset << " " << policy_name(policy) << ": "
                               << (report.problems.empty() ? "" : report.problems.front());
      }
    }
  }
}

}  // namespace
}  // namespace braid
