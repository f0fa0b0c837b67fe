// The CUDA op layer: one entry point that launches the kernel(s) of one compute node on
// a given stream. Each op family lives in its own .cu/.cuh pair (norm, rope, matmul,
// attention, ...) with three layers: the kernel, a launcher that takes the stream, and
// the op entry that unpacks the node. Kernels never choose their own stream.
//
// Everything a kernel reads that changes from run to run (token ids, positions, KV
// length, expert ids) is read from device memory, never baked into launch arguments, so
// one captured CUDA graph serves every decode step.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "braid/graph.h"

namespace braid::cuda {

// Per-stream resources an op may use. Every stream has its own cuBLAS handle bound to
// that stream with its own workspace, all of one size and math mode, so that results
// do not depend on which stream ran the op.
struct StreamContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* scratch = nullptr;  // per-stream scratch for ops that need temporaries
  size_t scratch_bytes = 0;
  // This rank's NCCL communicator (an ncclComm_t; void* keeps nccl.h out of this header)
  // for all_reduce nodes over several GPUs; null on one GPU.
  void* nccl_comm = nullptr;
};

// Device address of every tensor of a graph, indexed by TensorId (null where unused).
using DeviceAddresses = std::vector<uint8_t*>;

// An activation's int8 copy (Note [Shared int8 activations], shared_int8.h):
// int8_matvec_scratch_bytes(k, columns) bytes laid out as the int8 products read x, [k,
// columns] being the activation as they read it (its producer may see another shape of the
// same elements: attention's [head_dim, heads, n] is read as [head_dim * heads, n]).
struct SharedInt8 {
  uint8_t* data = nullptr;
  int64_t k = 0;
  int64_t columns = 0;
  bool nibble_order = false;
};
// What a step's launch does besides its op: write the int8 copy of the node's output into
// `writes` (from the op's own kernel where producer_writes_int8, else a quantization
// kernel after it), or (mul_mat) read its x from `reads` instead of quantizing it.
struct LaunchExtras {
  const SharedInt8* writes = nullptr;
  const SharedInt8* reads = nullptr;
};

// Scratch bytes `node` needs on its stream (0 for most ops).
size_t scratch_bytes(const Graph& graph, TensorId node);
// Whether `node` calls cuBLAS (a stream needs a handle and workspace only then).
bool uses_cublas(const Graph& graph, TensorId node);

// Launches `node` on ctx.stream. Never synchronizes and never allocates, so it is safe
// inside stream capture. Throws braid::Error (naming op and node) when the op or a type
// combination is unsupported, or when a launch fails.
void launch(const Graph& graph, TensorId node, const DeviceAddresses& memory, const StreamContext& ctx,
            const LaunchExtras& extras = {});

// Whether launch() supports this node (the op test harness reports unsupported ops).
bool supports(const Graph& graph, TensorId node);

// Throws braid::Error with `what` and the CUDA error string when status is not success.
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);

// An attribute of the current device (cudaDeviceGetAttribute); throws braid::Error when it
// cannot be read.
int current_device_attribute(cudaDeviceAttr attribute);

}  // namespace braid::cuda
