// Note [Shared int8 activations]: every int8 matrix-vector product quantizes its x into
// its stream's scratch first (Note [Int8 activations], matvec_int8.cu), one kernel per
// product. Q, K and V read one normed activation and gate and up another, so a decode
// layer quantized the same vector five times, each in a kernel boundary of its own
// (bench/NOTES.md, sections 16-18: the quantized decode rows pay for their boundaries).
// Here the producer of such an activation quantizes it once, into a buffer that belongs
// to that activation alone, and its int8 consumers read that copy instead. rms_norm,
// swiglu and attention (the producers of every llama decode product's x) write the copy
// from their own kernel beside their f32 output, so a llama layer keeps none of its seven
// quantization kernels; any other producer's step quantizes right after its kernel, on its
// stream.
//   - the same arithmetic (quantize_x.cuh) makes the same int8 values, so results are the
//     same bits with or without sharing (ExecOptions::share_int8_x compares the two, and
//     BRAID_SHARED_INT8=0 in the environment turns sharing off for whole-model A/B runs);
//   - every consumer already runs after its producer (the plan's edges), and the copy is
//     written before the producer's step records its event, so the plan's happens-before
//     covers the copy too;
//   - a copy's buffer is never shared with another activation, so arena reuse and the
//     plan's validation are untouched (a few KB an activation: k + k / 4 bytes a column).
// A copy serves one order of x (plain for q8_0 and the K-quants, nibble order for
// q4_*/q5_*): the order with the most readers. Where the producer's kernel writes the copy
// one reader is enough; where a separate kernel does, two or more (with one it would only
// move the kernel). Decode-sized products only (the int8 kernel's n <= 8 columns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "braid/plan.h"

namespace braid::cuda {

struct SharedInt8Copies {
  struct Copy {
    TensorId producer = kNoTensor;  // the step that writes it
    size_t offset = 0;              // into the executable's buffer of copies
    size_t bytes = 0;
    int64_t k = 0, columns = 0;  // the activation as its readers see it (SharedInt8)
    bool nibble_order = false;
  };
  std::vector<Copy> copies;
  std::vector<int> written_by;  // per tensor id (a step's node): the copy it writes, or -1
  std::vector<int> read_by;     // per tensor id (a mul_mat): the copy it reads as x, or -1
  size_t bytes = 0;             // of all copies, each 256-byte aligned
};

// False when BRAID_SHARED_INT8=0 (read once): every product quantizes its own x, for A/B
// runs of whole models.
bool shared_int8_enabled();

// Whether `node`'s own kernel writes its output's int8 copy (rms_norm, swiglu and
// attention with a contiguous f32 output whose rows are whole blocks of 32; attention on
// the decode paths, by a quantization kernel after it on the others).
bool producer_writes_int8(const Tensor& node);

// Which activations of `steps` get a shared copy; `addresses` are the executable's (the
// int8 kernel's choice depends on the weights' alignment).
SharedInt8Copies plan_shared_int8(const Graph& graph, const std::vector<PlanStep>& steps,
                                  const DeviceAddresses& addresses);

}  // namespace braid::cuda
