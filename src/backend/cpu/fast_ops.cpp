// Dispatch of one node to the fast CPU kernels, or to the reference where there is none.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/fast_kernels.h"

namespace braid::cpu {

void compute_fast(const Graph& graph, TensorId node, const Addresses& memory, ThreadPool& pool,
                  const FastKernelOptions& options) {
  const NodeArgs args = bind_node(graph, node, memory);
  const FastContext context{pool, options.simd, options.int8_activations, options.avx512};
  bool done = false;
  switch (args.node.op) {
    case Op::MulMat:
    case Op::MulMatId: done = fast_matmul(args, context); break;
    case Op::RmsNorm:
    case Op::Swiglu:
    case Op::Rope:
    case Op::KvWrite: done = fast_rowwise(args, context); break;
    case Op::Attention: done = fast_attention(args, context); break;
    case Op::TopLogits:
      context.pool.parallel_for(args.src[0].ne[1], [&](int64_t row) { top_logits_row(args, row); });
      done = true;
      break;
    default: break;
  }
  if (!done) compute(graph, node, memory);
}

namespace {
bool environment_flag(const char* name) {
  const char* env = std::getenv(name);
  return env && *env && std::strcmp(env, "0") != 0;
}
}  // namespace

bool reference_forced_by_environment() { return environment_flag("BRAID_CPU_REFERENCE"); }
bool int8_forced_by_environment() { return environment_flag("BRAID_CPU_INT8"); }

}  // namespace braid::cpu
