// Dispatch of one node to the fast CPU kernels, or to the reference where there is none.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/fast_kernels.h"

namespace braid::cpu {

void compute_fast(const Graph& graph, TensorId node, const Addresses& memory, ThreadPool& pool, bool simd) {
  const NodeArgs args = bind_node(graph, node, memory);
  const FastContext context{pool, simd};
  bool done = false;
  switch (args.node.op) {
    case Op::MulMat:
    case Op::MulMatId:
      done = fast_matmul(args, context);
      break;
    case Op::RmsNorm:
    case Op::Swiglu:
    case Op::Rope:
    case Op::KvWrite:
      done = fast_rowwise(args, context);
      break;
    case Op::Attention:
      done = fast_attention(args, context);
      break;
    default:
      break;
  }
  if (!done) compute(graph, node, memory);
}

bool reference_forced_by_environment() {
  const char* env = std::getenv("BRAID_CPU_REFERENCE");
  return env && *env && std::strcmp(env, "0") != 0;
}

}  // namespace braid::cpu
