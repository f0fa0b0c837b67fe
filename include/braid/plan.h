// Execution plans: which stream runs each node, which events order the streams, and
// where each activation lives in one arena. See docs/DESIGN.md, "Plan" and "Memory under
// concurrency".
//
// How a backend runs a plan: issue the steps in order. For each step, first wait on every
// event in `waits` (each is recorded by exactly one earlier step in the list), then run the
// node on stream `stream` (after everything issued earlier on that stream), then record
// event `record` if it is >= 0. Every step needs its events only at the point it is issued,
// so a CPU executor with one thread per stream and events as one-shot flags, or a CUDA
// executor with one cudaEvent per index, both work. Waits are only on cross-stream edges and
// none is implied by the others; removing any single wait makes the plan invalid.
// Memory: each tensor with arena_offset >= 0 lives at that byte offset of one arena of
// arena_bytes bytes (256-byte aligned). Views live inside their source; KvWrite results
// inside their state. Offsets are shared only by tensors whose lives are ordered by the
// plan's happens-before, or (when PlanOptions::in_place) by an element-wise op (add, mul,
// scale, silu, swiglu, all_reduce) and a same-shaped direct input that it overwrites element by element,
// so kernels for those ops must allow an output that aliases an input exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "braid/graph.h"

namespace braid {

struct PlanStep {
  TensorId node = kNoTensor;
  int stream = 0;
  std::vector<int> waits;  // events this step waits on before it runs
  int record = -1;         // event recorded after the step, or -1
};

struct Plan {
  std::string policy;
  int stream_count = 1;
  int event_count = 0;
  // Steps in issue order: a topological order of the graph's compute nodes. A backend
  // issues them in this order; each stream runs its own steps in this order.
  std::vector<PlanStep> steps;
  // Per TensorId: byte offset of the tensor's memory in the arena, or -1 when the tensor
  // does not live in the arena (leaves, views, KvWrite results, unreachable tensors).
  std::vector<int64_t> arena_offset;
  size_t arena_bytes = 0;               // arena peak
  double critical_path_estimate_us = 0;  // cost model's estimate of one run

  int wait_count() const;
};

inline constexpr size_t kArenaAlignment = 256;

enum class Policy { Serial, Branch, Levels, Chains, Cost, Auto };
std::string_view policy_name(Policy policy);
bool parse_policy(std::string_view text, Policy* out);
std::vector<Policy> all_policies();  // every policy except Auto

// Device numbers for the cost policy. Defaults describe an H100 SXM.
struct CostModel {
  double bandwidth_gbps = 3000;   // bytes per ns
  double flops_tflops = 400;      // dense f16/bf16 rate actually reached by matmuls
  double launch_us = 0.8;         // per node, inside a CUDA graph
  double sync_us = 1.5;           // per cross-stream event edge
  int sm_count = 132;
  // all_reduce across GPUs (tensor parallelism): a ring moves 2 (N - 1) / N of the bytes
  // over each GPU's link, plus a fixed latency per collective.
  double link_gbps = 400;           // per-GPU bus bandwidth (NVLink class)
  double collective_us = 8;         // latency of one small all-reduce
};

struct PlanOptions {
  int max_streams = 4;
  CostModel cost;
  bool in_place = true;  // element-wise ops may overwrite a dead input (see the note above)
};

// Builds the plan of one policy (Auto returns the serial plan, named "serial"; use
// candidate_plans). Throws braid::Error for an unfinalized graph or max_streams < 1.
// Pure function of its arguments: safe to call from several threads at once.
Plan make_plan(const Graph& graph, Policy policy, const PlanOptions& options = {});
// The plans `auto` chooses among, serial always first.
std::vector<Plan> candidate_plans(const Graph& graph, const PlanOptions& options = {});

// Happens-before between plan steps, from per-stream vector clocks.
class HappensBefore {
 public:
  explicit HappensBefore(const Plan& plan);
  // True when step a is complete before step b starts (a != b).
  bool ordered(int step_a, int step_b) const;

 private:
  int streams_;
  std::vector<int> stream_index_;  // per step: its position on its stream
  std::vector<int> clocks_;        // step x streams: last index of each stream known done before the step
  std::vector<int> stream_of_;
};

struct ValidationReport {
  bool ok = true;
  std::vector<std::string> problems;  // each names the nodes and bytes involved
};
// Independent check of a plan: every dependency across streams is covered by waits,
// and every two tensors whose arena bytes overlap are ordered by happens-before.
ValidationReport validate(const Graph& graph, const Plan& plan);

// Text, JSON and Graphviz DOT renderings.
std::string to_text(const Graph& graph, const Plan& plan);
std::string to_json(const Graph& graph, const Plan& plan);  // one object
std::string to_dot(const Graph& graph, const Plan& plan);

}  // namespace braid
