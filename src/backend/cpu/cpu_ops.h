// CPU kernels. compute() runs the reference kernels: simple and obviously right, every
// kernel converts its inputs to f32, accumulates dot products and sums in double, and
// writes f32 (or the node's type). This is the reference every other backend (and the
// fast CPU path) is compared against.
//
// compute_fast() runs the fast path where an op has one (matrix products with weights
// unpacked in registers, optionally int8 dot products on activations rounded to 8 bits;
// attention, norm, rope, swiglu with f32 accumulation; rows split over a thread pool) and
// the reference kernel elsewhere. Its results equal the reference within each op's
// tolerance (tests/cpu_fast_test.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "braid/graph.h"

namespace braid::cpu {

// Byte address of every tensor of a graph, indexed by TensorId (null where unused).
using Addresses = std::vector<uint8_t*>;

// Computes one compute node, reading its sources and writing its result through `memory`.
// Throws braid::Error on data the op cannot take (e.g. a token id outside the table).
void compute(const Graph& graph, TensorId node, const Addresses& memory);

}  // namespace braid::cpu
namespace braid {
class HostCommunicator;
}
namespace braid::cpu {

// An AllReduce node on rank `rank` of `communicator`'s group: copies its source to its
// output and sums the output over the group in place. (compute() handles a group of one.)
void all_reduce_with(const Graph& graph, TensorId node, const Addresses& memory, HostCommunicator& communicator,
                     int rank);

class ThreadPool;

struct FastKernelOptions {
  bool simd = true;  // the AVX2 kernels where the processor has them (false: the portable ones)
  // Quantized weights: activations rounded to int8 blocks and integer dot products
  // (ggml's scheme; see backend/cpu/fast_product.h) instead of f32 activations.
  bool int8_activations = false;
  // Prompt products over dequantized rows: the AVX-512 kernel where the processor has it
  // (false: the AVX2 one, so that tests cover it on any processor).
  bool avx512 = true;
};

void compute_fast(const Graph& graph, TensorId node, const Addresses& memory, ThreadPool& pool,
                  const FastKernelOptions& options = {});

// Whether the environment asks every CPU executable for the reference kernels
// (BRAID_CPU_REFERENCE=1) or for int8 activations (BRAID_CPU_INT8=1).
bool reference_forced_by_environment();
bool int8_forced_by_environment();

}  // namespace braid::cpu
