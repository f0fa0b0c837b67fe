// The persistent kernel: one launch runs every step of a decode plan (issue 17).
//
// Note [Persistent protocol]
// The plan's steps become tasks numbered by tickets in the plan's order (PersistentSchedule,
// include/braid/persistent_schedule.h); step s waits on the steps just before it in the
// plan's happens-before (the step before on its stream, the recorders of its events). Each
// block loops:
//   1. thread 0 takes the next ticket: atomicAdd(next_ticket, 1) (relaxed: the ticket
//      orders nothing but the dispatch), broadcast through shared memory; a ticket past the
//      last task ends the loop;
//   2. every thread asks L2 for the tile's weights (Note [Weight prefetch while waiting]);
//      thread 0 waits, for each step w its step waits on, until done[w] == tiles[w], with
//      ld.acquire.gpu loads (and __nanosleep backoff); then __syncthreads hands the
//      acquired view to the whole block;
//   3. the block runs the tile;
//   4. __syncthreads (every thread's writes of the tile are done and, through the barrier,
//      ordered before thread 0's next operations), then thread 0 does __threadfence() and
//      atomicAdd(done[step], 1): the release that step 2 of a later task acquires.
// Why the reads of a task see the writes they depend on: a tile's writes are ordered
// before the increment that completes its step (barrier, then a gpu-scope fence, which is
// cumulative), and a task that waits on that step reads the counter's final value with an
// acquire before any of its threads reads data (barrier after the acquire). Steps it depends
// on only transitively (two steps back on a serial plan) are covered because
// happens-before composes: the step in between acquired them before releasing its own
// counter. The same argument covers the arena's reuse and in-place writes: the plan
// validator proved them safe given exactly these edges (validate_schedule). No load in a
// tile uses the non-coherent path (no __ldg or const __restrict__ on activations), so L1
// holds no stale copy past the acquire.
// Deadlock freedom for any number of resident blocks, resident or not: a block takes a
// ticket only when it runs, tickets are taken in order, and every wait names an earlier
// step, so the lowest unfinished ticket waits only on tasks with lower tickets, all done
// (simulate_schedule plays this out). The grid is sized to what fits at once (occupancy x
// multiprocessors) only so that no block waits to start.
// Counters between runs: the last block to leave (atomicAdd on `exited` returns
// gridDim.x - 1) knows that every other block has left its loop and will touch no counter
// again, so it zeroes them all; the kernel's end publishes the zeros to the next run on the
// stream. This costs no extra memset node per step (the alternative: a cudaMemsetAsync of
// the counters before each launch); the executable zeroes them once when it is built.
// A wait that lasts kWaitLimitNs (never, unless the schedule or this protocol is wrong)
// prints the block, step and counter and traps: the run fails with an error at the next
// synchronization instead of hanging the device.
#include <cstdio>

#include "backend/cuda/persistent/persistent_kernel.cuh"

namespace braid::cuda {
namespace {

constexpr uint64_t kWaitLimitNs = 10'000'000'000ull;  // 10 s
// Blocks a multiprocessor must hold: caps registers at 96 a thread (the attention tile
// needs about that many; ptxas spills a few dozen bytes, every other tile needs under 80).
constexpr int kPersistentMinBlocks = 5;

__device__ __forceinline__ uint64_t global_time_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ int32_t load_acquire(const int32_t* p) {
  int32_t v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__global__ void __launch_bounds__(kPersistentThreads, kPersistentMinBlocks) persistent_kernel(PersistentKernelArgs p) {
  __shared__ PersistentShared shared;
  __shared__ int32_t block_ticket;
  int32_t* done = p.counters + kFirstDoneCounter;
  for (;;) {
    if (threadIdx.x == 0) block_ticket = atomicAdd(p.counters + kTicketCounter, 1);
    __syncthreads();
    const int32_t ticket = block_ticket;  // read by every thread before the barrier after the waits
    if (ticket >= p.task_count) break;
    const int32_t step = p.task_step[ticket];
    const PersistentStep& s = p.steps[step];
    if (p.prefetch) prefetch_tile_weights(s, ticket - s.first_task);
    if (threadIdx.x == 0) {
      for (int32_t i = p.wait_begin[step]; i < p.wait_begin[step + 1]; ++i) {
        const int32_t w = p.waits[i];
        const int32_t need = p.steps[w].tiles;
        unsigned sleep_ns = 32;
        const uint64_t start = global_time_ns();
        int32_t have;
        while ((have = load_acquire(done + w)) < need) {
          __nanosleep(sleep_ns);
          sleep_ns = min(sleep_ns * 2, 256u);
          if (global_time_ns() - start > kWaitLimitNs) {
            printf("braid persistent kernel: block %d, ticket %d (step %d) waited 10 s on step %d: %d of %d tiles done\n",
                   static_cast<int>(blockIdx.x), ticket, step, w, have, need);
            __trap();
          }
        }
      }
    }
    __syncthreads();
    run_tile(s, ticket - s.first_task, shared);
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence();
      atomicAdd(done + step, 1);
    }
  }
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(p.counters + kExitedCounter, 1) == static_cast<int32_t>(gridDim.x) - 1) {
      for (int32_t s = 0; s < p.step_count; ++s) done[s] = 0;
      p.counters[kTicketCounter] = 0;
      p.counters[kExitedCounter] = 0;
    }
  }
}

}  // namespace

int persistent_blocks_per_multiprocessor() {
  int blocks = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, persistent_kernel, kPersistentThreads, 0),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor (persistent kernel)");
  return blocks;
}

PersistentKernelInfo persistent_kernel_info() {
  PersistentKernelInfo info;
  cudaFuncAttributes attributes{};
  check(cudaFuncGetAttributes(&attributes, persistent_kernel), "cudaFuncGetAttributes (persistent kernel)");
  info.registers = attributes.numRegs;
  info.shared_bytes = attributes.sharedSizeBytes;
  info.blocks_per_multiprocessor = persistent_blocks_per_multiprocessor();
  info.multiprocessors = current_device_attribute(cudaDevAttrMultiProcessorCount);
  return info;
}

void launch_persistent(const PersistentKernelArgs& args, int blocks, cudaStream_t stream) {
  persistent_kernel<<<blocks, kPersistentThreads, 0, stream>>>(args);
  check(cudaGetLastError(), "persistent kernel launch");
}

}  // namespace braid::cuda
