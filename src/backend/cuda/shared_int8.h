// Note [Shared int8 activations]: every int8 matrix-vector product quantizes its x into
// its stream's scratch first (Note [Int8 activations], matvec_int8.cu), one kernel per
// product. Q, K and V read one normed activation and gate and up another, so a decode
// layer quantized the same vector five times, each in a kernel boundary of its own
// (bench/NOTES.md, sections 16-18: the quantized decode rows pay for their boundaries).
// Here the producer of such an activation quantizes it once, right after its own kernel
// and on its own stream, into a buffer that belongs to that activation alone, and its int8
// consumers read that copy instead:
//   - the same kernel and arithmetic make the same int8 values, so results are the same
//     bits with or without sharing (ExecOptions::share_int8_x compares the two, and
//     BRAID_SHARED_INT8=0 in the environment turns sharing off for whole-model A/B runs);
//   - every consumer already runs after its producer (the plan's edges), and the copy is
//     written before the producer's step records its event, so the plan's happens-before
//     covers the copy too;
//   - a copy's buffer is never shared with another activation, so arena reuse and the
//     plan's validation are untouched (a few KB an activation: k + k / 4 bytes a column).
// A copy is made where two or more int8 products read an activation in the same order of
// x (plain for q8_0 and the K-quants, nibble order for q4_*/q5_*); with one reader it would
// only move the kernel. Decode-sized products only (the int8 kernel's n <= 8 columns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "braid/plan.h"

namespace braid::cuda {

struct SharedInt8Copies {
  struct Copy {
    TensorId producer = kNoTensor;
    size_t offset = 0;  // into the executable's buffer of copies
    size_t bytes = 0;
    bool nibble_order = false;
  };
  std::vector<Copy> copies;
  std::vector<int> written_by;  // per tensor id: the copy a step writes after its op, or -1
  std::vector<int> read_by;     // per tensor id (a mul_mat): the copy it reads as x, or -1
  size_t bytes = 0;             // of all copies, each 256-byte aligned
};

// Which activations of `steps` get a shared copy; `addresses` are the executable's (the
// int8 kernel's choice depends on the weights' alignment).
SharedInt8Copies plan_shared_int8(const Graph& graph, const std::vector<PlanStep>& steps,
                                  const DeviceAddresses& addresses);

}  // namespace braid::cuda
