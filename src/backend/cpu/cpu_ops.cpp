// Dispatch of one compute node to its CPU reference kernel.
#include "backend/cpu/cpu_ops.h"

#include <fmt/format.h>

#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "braid/host_communicator.h"

namespace braid::cpu {

float TensorView::f32(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
  float value;
  to_f32(type, element(i0, i1, i2, i3), &value, 1);
  return value;
}

int32_t TensorView::i32(int64_t i0, int64_t i1) const {
  BRAID_ASSERT(type == DType::I32);
  int32_t value;
  std::memcpy(&value, element(i0, i1), sizeof value);
  return value;
}

void NodeArgs::fail(const std::string& what) const {
  throw Error(fmt::format("{} ({}): {}", op_name(node.op), node.name, what));
}

namespace {

TensorView view_of(const Tensor& t, const Addresses& memory) {
  BRAID_ASSERT(t.id >= 0 && static_cast<size_t>(t.id) < memory.size());
  BRAID_ASSERT(memory[static_cast<size_t>(t.id)] != nullptr);
  TensorView v;
  v.data = memory[static_cast<size_t>(t.id)];
  v.type = t.type;
  v.ne = t.ne;
  v.nb = t.nb;
  return v;
}

// One rank: the sum over the group is x itself. More ranks need the other ranks' x,
// which only the executable's communicator has (all_reduce_with below).
void compute_all_reduce(const NodeArgs& args) {
  if (args.node.params.i[0] != 1) {
    args.fail(fmt::format("a sum over {} ranks needs a CPU backend of a communicator's group (ParallelRunner)",
                          args.node.params.i[0]));
  }
  const size_t bytes = static_cast<size_t>(args.node.elements()) * sizeof(float);
  if (args.out.data != args.src[0].data) std::memcpy(args.out.data, args.src[0].data, bytes);
}

}  // namespace

void all_reduce_with(const Graph& graph, TensorId node, const Addresses& memory, HostCommunicator& communicator,
                     int rank) {
  const NodeArgs args = bind_node(graph, node, memory);
  if (args.node.params.i[0] != communicator.ranks()) {
    args.fail(fmt::format("sums over {} ranks, but the backend is rank {} of {}", args.node.params.i[0], rank,
                          communicator.ranks()));
  }
  const size_t count = static_cast<size_t>(args.node.elements());
  if (args.out.data != args.src[0].data) std::memcpy(args.out.data, args.src[0].data, count * sizeof(float));
  communicator.all_reduce(rank, reinterpret_cast<float*>(args.out.data), count);
}

NodeArgs bind_node(const Graph& graph, TensorId node, const Addresses& memory) {
  const Tensor& t = graph[node];
  BRAID_ASSERT(is_compute_op(t.op));
  NodeArgs args{graph, t, view_of(t, memory), {}};
  for (TensorId s : t.src) args.src.push_back(view_of(graph[s], memory));
  return args;
}

void compute(const Graph& graph, TensorId node, const Addresses& memory) {
  const NodeArgs args = bind_node(graph, node, memory);
  const Tensor& t = args.node;

  switch (t.op) {
    case Op::Add:
    case Op::Mul:
    case Op::Scale:
    case Op::Silu:
    case Op::Swiglu:
    case Op::Softmax:
    case Op::RmsNorm:
    case Op::Copy:
      return compute_elementwise(args);
    case Op::GetRows:
      return compute_get_rows(args);
    case Op::MulMat:
    case Op::MulMatId:
      return compute_matmul(args);
    case Op::Rope:
      return compute_rope(args);
    case Op::KvWrite:
      return compute_kv_write(args);
    case Op::Attention:
      return compute_attention(args);
    case Op::TopK:
    case Op::MoeWeights:
    case Op::MoeCombine:
      return compute_moe(args);
    case Op::TopLogits:
      return compute_top_logits(args);
    case Op::AllReduce:
      return compute_all_reduce(args);
    case Op::None:
    case Op::Reshape:
    case Op::View:
    case Op::Permute:
      break;
  }
  args.fail("the CPU backend has no kernel for this op");
}

}  // namespace braid::cpu
