// What a CUDA executable needs before it allocates anything: a check that the plan fits
// the graph, and the sizes and offsets of its buffers (input staging, per-stream scratch,
// cuBLAS workspaces, arena). Computing them first lets the backend check free device
// memory once, for weights and executable together, and fail before allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "braid/graph.h"
#include "braid/plan.h"

namespace braid::cuda {

// cuBLAS's recommended workspace on Hopper. Every stream's handle gets the same size:
// cuBLAS may choose a different algorithm for a different workspace, and then results
// would depend on the stream a matmul ran on.
inline constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

struct InputSlot {
  TensorId id = kNoTensor;
  size_t offset = 0;  // in the staging buffer, kArenaAlignment-aligned
  size_t bytes = 0;
};

struct ExecLayout {
  std::vector<InputSlot> inputs;      // every kInput tensor of the graph, in id order
  size_t input_bytes = 0;             // staging buffer size (host and device)
  std::vector<uint8_t> stream_used;   // per plan stream: it runs at least one step
  std::vector<uint8_t> stream_cublas; // per plan stream: it runs a node that calls cuBLAS
  std::vector<size_t> scratch_bytes;  // per plan stream: max over its nodes
  size_t arena_bytes = 0;

  int used_stream_count() const;
  int cublas_stream_count() const;
  size_t scratch_total() const;
  size_t workspace_bytes() const;  // cuBLAS workspaces of the used streams + scratch
  size_t device_bytes() const;     // everything the executable allocates on the device
  const InputSlot* find_input(TensorId id) const;
};

// Whether `id` gets its own bytes in the arena (compute results that alias nothing).
inline bool lives_in_arena(const Tensor& t) { return is_compute_op(t.op) && t.view_source == kNoTensor; }

// Checks that `plan` can run `graph` (every compute node exactly once in a topological
// order, streams and events in range, every waited event recorded by an earlier step,
// arena offsets aligned and inside the arena) and lays out the buffers. Throws
// braid::Error naming the first problem.
ExecLayout lay_out(const Graph& graph, const Plan& plan);

}  // namespace braid::cuda
