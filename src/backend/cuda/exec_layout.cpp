#include "backend/cuda/exec_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/cuda_ops.h"

namespace braid::cuda {

namespace {

size_t align_up(size_t bytes, size_t alignment) { return (bytes + alignment - 1) / alignment * alignment; }

std::string describe(const Graph& graph, TensorId id) {
  return fmt::format("'{}' ({})", graph[id].name, op_name(graph[id].op));
}

// Steps: each compute node once, sources first, streams and events in range, waits only
// on events that an earlier step recorded (an event recorded in a previous run would be
// an edge that a captured graph cannot hold, and a wrong order in eager mode).
void check_steps(const Graph& graph, const Plan& plan) {
  const int n = graph.tensor_count();
  std::vector<int> step_of(static_cast<size_t>(n), -1);
  std::vector<uint8_t> recorded(static_cast<size_t>(plan.event_count), 0);
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    if (step.node < 0 || step.node >= n || !is_compute_op(graph[step.node].op)) {
      throw Error(fmt::format("plan step {}: tensor {} is not a compute node of the graph", i, step.node));
    }
    if (step_of[static_cast<size_t>(step.node)] >= 0) {
      throw Error(fmt::format("plan step {}: node {} appears twice", i, describe(graph, step.node)));
    }
    if (step.stream < 0 || step.stream >= plan.stream_count) {
      throw Error(fmt::format("plan step {}: stream {} outside the plan's {} streams", i, step.stream,
                              plan.stream_count));
    }
    for (int e : step.waits) {
      if (e < 0 || e >= plan.event_count) {
        throw Error(fmt::format("plan step {}: waits on event {} outside the plan's {} events", i, e,
                                plan.event_count));
      }
      if (!recorded[static_cast<size_t>(e)]) {
        throw Error(fmt::format("plan step {} ({}): waits on event {} before any step records it", i,
                                describe(graph, step.node), e));
      }
    }
    if (step.record >= plan.event_count || step.record < -1) {
      throw Error(fmt::format("plan step {}: records event {} outside the plan's {} events", i,
                              step.record, plan.event_count));
    }
    const Tensor& t = graph[step.node];
    std::vector<TensorId> deps = t.src;
    if (t.view_source != kNoTensor) deps.push_back(t.view_source);
    for (TensorId dep : deps) {
      const TensorId producer = graph.producer(dep);
      if (producer != kNoTensor && step_of[static_cast<size_t>(producer)] < 0) {
        throw Error(fmt::format("plan step {} ({}): its source {} has not run yet", i,
                                describe(graph, step.node), describe(graph, producer)));
      }
    }
    step_of[static_cast<size_t>(step.node)] = static_cast<int>(i);
    if (step.record >= 0) recorded[static_cast<size_t>(step.record)] = 1;
  }
  for (TensorId id : graph.compute_nodes()) {
    if (step_of[static_cast<size_t>(id)] < 0) {
      throw Error(fmt::format("plan: node {} has no step", describe(graph, id)));
    }
  }
}

void check_arena(const Graph& graph, const Plan& plan) {
  if (plan.arena_offset.size() != static_cast<size_t>(graph.tensor_count())) {
    throw Error(fmt::format("plan: {} arena offsets for a graph of {} tensors", plan.arena_offset.size(),
                            graph.tensor_count()));
  }
  for (const PlanStep& step : plan.steps) {
    const Tensor& t = graph[step.node];
    if (!lives_in_arena(t)) continue;
    const int64_t offset = plan.arena_offset[static_cast<size_t>(step.node)];
    if (offset < 0) throw Error(fmt::format("plan: node {} has no arena offset", describe(graph, step.node)));
    if (static_cast<size_t>(offset) % kArenaAlignment != 0) {
      throw Error(fmt::format("plan: node {} at arena offset {} is not {}-byte aligned",
                              describe(graph, step.node), offset, kArenaAlignment));
    }
    if (static_cast<size_t>(offset) + t.bytes() > plan.arena_bytes) {
      throw Error(fmt::format("plan: node {} ({} bytes at offset {}) ends past the arena of {} bytes",
                              describe(graph, step.node), t.bytes(), offset, plan.arena_bytes));
    }
  }
}

}  // namespace

int ExecLayout::used_stream_count() const {
  return static_cast<int>(std::count(stream_used.begin(), stream_used.end(), uint8_t{1}));
}

int ExecLayout::cublas_stream_count() const {
  return static_cast<int>(std::count(stream_cublas.begin(), stream_cublas.end(), uint8_t{1}));
}

size_t ExecLayout::scratch_total() const {
  size_t total = 0;
  for (size_t b : scratch_bytes) total += b;
  return total;
}

size_t ExecLayout::workspace_bytes() const {
  return static_cast<size_t>(cublas_stream_count()) * kCublasWorkspaceBytes + scratch_total();
}

size_t ExecLayout::device_bytes() const { return arena_bytes + input_bytes + workspace_bytes(); }

const InputSlot* ExecLayout::find_input(TensorId id) const {
  for (const InputSlot& slot : inputs) {
    if (slot.id == id) return &slot;
  }
  return nullptr;
}

ExecLayout lay_out(const Graph& graph, const Plan& plan) {
  if (!graph.finalized()) throw Error("compile: the graph is not finalized (call Graph::finalize)");
  if (plan.stream_count < 1) throw Error(fmt::format("plan: {} streams", plan.stream_count));
  if (plan.event_count < 0) throw Error(fmt::format("plan: {} events", plan.event_count));
  check_steps(graph, plan);
  check_arena(graph, plan);

  ExecLayout layout;
  for (const Tensor& t : graph.tensors()) {
    if (!t.has(kInput)) continue;
    layout.inputs.push_back({t.id, layout.input_bytes, t.bytes()});
    layout.input_bytes = align_up(layout.input_bytes + t.bytes(), kArenaAlignment);
  }
  layout.stream_used.assign(static_cast<size_t>(plan.stream_count), 0);
  layout.stream_cublas.assign(static_cast<size_t>(plan.stream_count), 0);
  layout.scratch_bytes.assign(static_cast<size_t>(plan.stream_count), 0);
  for (const PlanStep& step : plan.steps) {
    const auto s = static_cast<size_t>(step.stream);
    layout.stream_used[s] = 1;
    if (uses_cublas(graph, step.node)) layout.stream_cublas[s] = 1;
    layout.scratch_bytes[s] = std::max(layout.scratch_bytes[s], align_up(scratch_bytes(graph, step.node), kArenaAlignment));
  }
  layout.arena_bytes = plan.arena_bytes;
  return layout;
}

}  // namespace braid::cuda
