// Shared pieces of the planner: the dependency DAG every policy schedules, the
// (order, stream) schedule a policy returns, and the steps that turn a schedule into a Plan.
#pragma once

#include <string>
#include <vector>

#include "braid/plan.h"

namespace braid::plan_detail {

// The compute nodes of a graph and the orderings between them. Node indices follow
// Graph::compute_nodes(), which is topological, so every edge goes from a lower index
// to a higher one.
struct Dag {
  std::vector<TensorId> nodes;
  std::vector<int> index_of;  // per TensorId: node index, or -1
  // Data dependencies (through Graph::producer) plus memory-order edges on state that
  // KvWrite overwrites (see build_dag). Sorted, without duplicates.
  std::vector<std::vector<int>> preds;
  std::vector<std::vector<int>> succs;
  // Per node, the sources that are not weights, one entry per use in source order, each
  // resolved to the tensor that owns the branch counter of PR 4719's rule: the producing
  // compute node, or the leaf (input, state) a view starts from.
  std::vector<std::vector<TensorId>> branch_inputs;
  int size() const { return static_cast<int>(nodes.size()); }
};
Dag build_dag(const Graph& graph);

// What a policy decides: the issue order (node indices, topological) and a stream per node.
struct Schedule {
  std::vector<int> order;
  std::vector<int> stream;  // per node index
};

Schedule schedule_serial(const Dag& dag);
Schedule schedule_branch(const Dag& dag, int max_streams);
Schedule schedule_levels(const Dag& dag, int max_streams);
Schedule schedule_chains(const Dag& dag, int max_streams);
Schedule schedule_cost(const Graph& graph, const Dag& dag, const PlanOptions& options);

// Turns a schedule into steps with events (only on cross-stream edges, redundant waits
// pruned), then allocates the arena and estimates the run time.
Plan assemble_plan(const Graph& graph, const Dag& dag, const Schedule& schedule,
                   std::string policy, const PlanOptions& options);

// Fills plan.arena_offset and plan.arena_bytes (arena.cpp).
void allocate_arena(const Graph& graph, Plan& plan, bool in_place);

// Cost model (cost_model.cpp).
struct NodeWork {
  double bytes = 0;  // read + written
  double flops = 0;
  double link_bytes = 0;  // sent to other GPUs (all_reduce), over CostModel::link_gbps
};
NodeWork estimate_work(const Graph& graph, TensorId node);
double node_cost_us(const Graph& graph, TensorId node, const CostModel& cost);
// Simulates the plan: streams run their steps in order, a wait delays a step until the
// recording step finished plus sync_us.
double simulate_plan_us(const Graph& graph, const Plan& plan, const CostModel& cost);

// Element-wise ops whose output may take the memory of a same-shaped input. The allocator
// and the validator share this one list (and nothing else).
bool is_elementwise(Op op);

// validate() with happens-before given by `waits` (per step, the earlier steps it waits
// for) instead of the plan's streams and events: the check of a persistent schedule.
ValidationReport validate_with_waits(const Graph& graph, const Plan& plan, const std::vector<std::vector<int>>& waits);

}  // namespace braid::plan_detail
