// Planner speed on a 32-layer llama-7b shaped decode graph (d 4096, ffn 11008, 32 heads).
// Target: under 5 ms for the cost policy, arena and estimate included.
#include <benchmark/benchmark.h>

#include "../tests/plan_test_graphs.h"
#include "braid/plan.h"

namespace {

const braid::Graph& llama_7b() {
  static const braid::Graph graph = braid::test::llama_decode_graph(braid::test::LlamaShape{});
  return graph;
}

void plan_policy(benchmark::State& state, braid::Policy policy) {
  const braid::Graph& graph = llama_7b();
  size_t arena = 0;
  int streams = 0;
  for (auto _ : state) {
    braid::Plan plan = braid::make_plan(graph, policy);
    arena = plan.arena_bytes;
    streams = plan.stream_count;
    benchmark::DoNotOptimize(plan);
  }
  state.counters["nodes"] = static_cast<double>(graph.compute_nodes().size());
  state.counters["streams"] = streams;
  state.counters["arena_bytes"] = static_cast<double>(arena);
}

void BM_PlanCostLlama7b(benchmark::State& state) { plan_policy(state, braid::Policy::Cost); }
void BM_PlanSerialLlama7b(benchmark::State& state) { plan_policy(state, braid::Policy::Serial); }
void BM_PlanChainsLlama7b(benchmark::State& state) { plan_policy(state, braid::Policy::Chains); }
void BM_CandidatePlansLlama7b(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(braid::candidate_plans(llama_7b()));
}
void BM_ValidateCostPlanLlama7b(benchmark::State& state) {
  const braid::Plan plan = braid::make_plan(llama_7b(), braid::Policy::Cost);
  for (auto _ : state) benchmark::DoNotOptimize(braid::validate(llama_7b(), plan));
}

BENCHMARK(BM_PlanCostLlama7b)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanSerialLlama7b)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanChainsLlama7b)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CandidatePlansLlama7b)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ValidateCostPlanLlama7b)->Unit(benchmark::kMillisecond);

}  // namespace
