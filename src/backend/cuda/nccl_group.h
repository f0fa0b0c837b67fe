// The CUDA rank group of tensor parallelism (braid/rank_group.h): GPU r is rank r, the
// all_reduce nodes of its graphs call ncclAllReduce on its communicator. This header
// includes no CUDA or NCCL headers.
#pragma once

#include <memory>

#include "braid/rank_group.h"

namespace braid::cuda {

// Communicators for GPUs 0 .. ranks - 1, made together (ncclCommInitAll). Throws
// braid::Error without NCCL in this build, with fewer GPUs than ranks, or when NCCL fails.
std::unique_ptr<RankGroup> make_nccl_group(int ranks);

}  // namespace braid::cuda
