#include "backend/cuda/all_reduce.cuh"

#ifdef BRAID_HAVE_NCCL
#include <nccl.h>
#endif

#include <string>

namespace braid::cuda {
namespace {

constexpr bool kHaveNccl =
#ifdef BRAID_HAVE_NCCL
    true;
#else
    false;
#endif

}  // namespace

bool all_reduce_supported(const Graph& graph, TensorId node) {
  return graph[node].params.i[0] == 1 || kHaveNccl;
}

void launch_all_reduce(const NodeLaunch& launch) {
  const size_t count = static_cast<size_t>(launch.node.elements());
  const int ranks = launch.node.params.i[0];
  if (ranks == 1) {
    if (launch.out_data() != launch.src_data(0)) {
      check(cudaMemcpyAsync(launch.out_data(), launch.src_data(0), count * sizeof(float), cudaMemcpyDeviceToDevice,
                            launch.ctx.stream),
            launch.label().c_str());
    }
    return;
  }
#ifdef BRAID_HAVE_NCCL
  if (launch.ctx.nccl_comm == nullptr) {
    throw Error(launch.label() + ": a sum over " + std::to_string(ranks) + " GPUs needs an NCCL communicator");
  }
  // In place when the planner gave the output its source's memory (NCCL allows it).
  const ncclResult_t result = ncclAllReduce(launch.src_data(0), launch.out_data(), count, ncclFloat, ncclSum,
                                            static_cast<ncclComm_t>(launch.ctx.nccl_comm), launch.ctx.stream);
  if (result != ncclSuccess) throw Error(launch.label() + ": ncclAllReduce: " + ncclGetErrorString(result));
#else
  throw Error(launch.label() + ": multi-GPU needs NCCL and " + std::to_string(ranks) +
              " GPUs; not available in this build");
#endif
}

}  // namespace braid::cuda
