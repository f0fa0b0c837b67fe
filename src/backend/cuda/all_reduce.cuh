// all_reduce nodes (tensor parallelism): a group of one is a copy; a larger group calls
// ncclAllReduce on the node's stream with the executable's communicator (StreamContext::
// nccl_comm), which stream capture records into the CUDA graph like any kernel.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

bool all_reduce_supported(const Graph& graph, TensorId node);
void launch_all_reduce(const NodeLaunch& launch);

}  // namespace braid::cuda
