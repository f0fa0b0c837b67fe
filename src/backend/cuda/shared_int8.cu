#include "backend/cuda/shared_int8.h"

#include <cstdlib>
#include <map>
#include <string>
#include <utility>

#include "backend/cuda/matmul.cuh"

namespace braid::cuda {

bool shared_int8_enabled() {
  static const bool on = [] {
    const char* setting = std::getenv("BRAID_SHARED_INT8");
    return setting == nullptr || std::string(setting) != "0";
  }();
  return on;
}

bool producer_writes_int8(const Tensor& node) {
  if (node.op != Op::RmsNorm && node.op != Op::Swiglu && node.op != Op::Attention) return false;
  return node.type == DType::F32 && node.ne[0] % kQuantBlock == 0 && node.is_contiguous();
}

namespace {

// The tensor whose step computes x's elements: x, or what x reshapes (the same elements in
// the same order and place; attention's output is read as [head_dim * heads, n]).
TensorId computed_by(const Graph& graph, TensorId x) {
  while (graph[x].op == Op::Reshape && graph[graph[x].src[0]].is_contiguous()) x = graph[x].src[0];
  return x;
}

}  // namespace

SharedInt8Copies plan_shared_int8(const Graph& graph, const std::vector<PlanStep>& steps,
                                  const DeviceAddresses& addresses) {
  const auto tensors = static_cast<size_t>(graph.tensor_count());
  SharedInt8Copies out;
  out.written_by.assign(tensors, -1);
  out.read_by.assign(tensors, -1);

  // The int8 readers of each activation (as they read it) whose elements a step computes,
  // by the order of x they want, in plan order.
  std::vector<uint8_t> computed(tensors, 0);
  for (const PlanStep& step : steps) computed[static_cast<size_t>(step.node)] = 1;
  std::map<std::pair<TensorId, bool>, std::vector<TensorId>> readers;
  for (const PlanStep& step : steps) {
    const Tensor& t = graph[step.node];
    if (t.op != Op::MulMat) continue;
    const TensorId x = t.src[1];
    const Tensor& xt = graph[x];
    if (!computed[static_cast<size_t>(computed_by(graph, x))] || xt.type != DType::F32 || !xt.is_contiguous() ||
        xt.ne[2] != 1 || xt.ne[3] != 1) {
      continue;
    }
    if (!mul_mat_reads_int8_x(graph, step.node, addresses[static_cast<size_t>(t.src[0])])) continue;
    readers[{x, int8_nibble_order(graph[t.src[0]].type)}].push_back(step.node);
  }

  constexpr size_t kAlignment = 256;
  for (const auto& [key, nodes] : readers) {
    const auto [x, nibble_order] = key;
    const TensorId producer = computed_by(graph, x);
    // One copy an activation: the order with the most readers (the others quantize their
    // own). A lone reader is worth a copy only when the producer's kernel writes it.
    const size_t readers_needed = producer_writes_int8(graph[producer]) ? 1 : 2;
    if (nodes.size() < readers_needed || out.written_by[static_cast<size_t>(producer)] >= 0) continue;
    const auto other = readers.find({x, !nibble_order});
    if (other != readers.end() && other->second.size() > nodes.size()) continue;
    const Tensor& xt = graph[x];
    SharedInt8Copies::Copy copy;
    copy.producer = producer;
    copy.offset = out.bytes;
    copy.k = xt.ne[0];
    copy.columns = xt.ne[1];
    copy.bytes = int8_matvec_scratch_bytes(copy.k, copy.columns);
    copy.nibble_order = nibble_order;
    out.bytes += (copy.bytes + kAlignment - 1) / kAlignment * kAlignment;
    const int index = static_cast<int>(out.copies.size());
    out.copies.push_back(copy);
    out.written_by[static_cast<size_t>(producer)] = index;
    for (TensorId node : nodes) out.read_by[static_cast<size_t>(node)] = index;
  }
  return out;
}

}  // namespace braid::cuda
