// The persistent kernel (persistent_kernel.cu): resident blocks take a decode step's tasks
// in ticket order and run them as their waits allow. See Note [Persistent protocol].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/persistent/persistent_tasks.cuh"

namespace braid::cuda {

// The counters in global memory: the next ticket, the blocks that have left, then one
// completion counter per step. All zero between runs (the last block to leave resets them).
inline constexpr int kTicketCounter = 0;
inline constexpr int kExitedCounter = 1;
inline constexpr int kFirstDoneCounter = 2;

struct PersistentKernelArgs {
  const PersistentStep* steps;
  const int32_t* task_step;   // per ticket: its step
  const int32_t* wait_begin;  // per step + 1: step s waits on waits[wait_begin[s] .. wait_begin[s + 1])
  const int32_t* waits;       // earlier steps
  int32_t task_count;
  int32_t step_count;
  int32_t* counters;  // kFirstDoneCounter + step_count, zero at launch
  int32_t prefetch;   // Note [Weight prefetch while waiting]: 1 on, 0 off
};

// Blocks of the kernel that fit on one multiprocessor at once (the occupancy API).
int persistent_blocks_per_multiprocessor();
// The kernel's register count per thread and static shared memory, for reports.
struct PersistentKernelInfo {
  int registers = 0;
  size_t shared_bytes = 0;
  int blocks_per_multiprocessor = 0;
  int multiprocessors = 0;
};
PersistentKernelInfo persistent_kernel_info();
// Launches the kernel with `blocks` blocks of kPersistentThreads on `stream`; throws
// braid::Error when the launch fails.
void launch_persistent(const PersistentKernelArgs& args, int blocks, cudaStream_t stream);

}  // namespace braid::cuda
