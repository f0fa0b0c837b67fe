// Internal to the fast CPU path: the op families it implements. Each returns false when
// the node is outside what it handles (a type or layout it does not take), and then the
// reference kernel computes the node.
#pragma once

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/thread_pool.h"

namespace braid::cpu {

struct FastContext {
  ThreadPool& pool;
  bool simd;
  bool int8_activations;
  bool avx512;
};

// MulMat (and mul_mat_add), MulMatId.
bool fast_matmul(const NodeArgs& args, const FastContext& context);
// RmsNorm, Swiglu, Rope, KvWrite.
bool fast_rowwise(const NodeArgs& args, const FastContext& context);
// Attention.
bool fast_attention(const NodeArgs& args, const FastContext& context);

}  // namespace braid::cpu
