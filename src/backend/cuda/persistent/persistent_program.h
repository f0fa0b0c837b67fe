// A decode plan encoded for the persistent kernel (persistent_kernel.cu): one device
// descriptor per plan step (the node's operands at the addresses the CUDA executable
// resolved, so the kernel sees the graph executor's memory), the schedule's tickets and
// waits, the counters, and the scratch of split attention. CudaExecutable owns one when
// ExecOptions::persistent asks for it and the graph is decode-sized.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_raii.h"
#include "braid/persistent_schedule.h"

namespace braid::cuda {

// One token a step: every product multiplies one column (prompts and batches, even
// batches of one sequence, stay on the graph executor).
bool persistent_decode_graph(const Graph& graph);

// Why the persistent kernel cannot run `node` ("" when it can): the op, or the type or
// shape of an operand.
std::string persistent_unsupported(const Graph& graph, TensorId node);

// "96 registers, 36996 bytes of shared memory, 5 blocks x 132 multiprocessors" on this
// device: the kernel's size and how many blocks a run gets (for reports and tests).
std::string persistent_kernel_report();

// Whether waiting tasks prefetch their weights into L2 (Note [Weight prefetch while
// waiting]); on unless BRAID_PERSISTENT_PREFETCH=0 (a knob for measuring, read once).
bool persistent_prefetch();

// How the executable cuts nodes into tiles: products by 4 rows a task (llama-1b's q product
// is 512 tasks for 660 resident blocks), element-wise ops by 128 elements (one a thread: a
// block's loop over elements pays a load's latency per turn, and at the schedule's default
// of 16384 one block ran a whole swiglu), unless BRAID_PERSISTENT_ROWS or
// BRAID_PERSISTENT_ELEMENTS say otherwise (knobs for measuring, read once). On the H200,
// llama-1b f16 decode: 16 rows and 16384 elements 213 t/s; 4 rows 267; 4 rows and 512
// elements 435, and 128 elements 446; 2 rows 322; 8 rows and 256 elements 436.
TileOptions persistent_tile_options();

class PersistentProgram {
 public:
  // Throws braid::Unsupported naming the first node the kernel cannot run, before allocating.
  PersistentProgram(const Graph& graph, const Plan& plan, const DeviceAddresses& addresses,
                    const TileOptions& tiles = persistent_tile_options());

  // Runs the plan once on `stream` (after whatever is already on it).
  void launch(cudaStream_t stream) const;

  int blocks() const { return blocks_; }
  int task_count() const { return task_count_; }
  size_t device_bytes() const;

 private:
  DeviceBuffer steps_;
  DeviceBuffer task_step_;
  DeviceBuffer wait_begin_;
  DeviceBuffer waits_;
  DeviceBuffer counters_;
  DeviceBuffer attention_scratch_;
  int step_count_ = 0;
  int task_count_ = 0;
  int blocks_ = 1;
};

}  // namespace braid::cuda
