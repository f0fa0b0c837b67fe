// Internal to the CPU reference kernels: how a kernel sees its operands, and the entry
// point of each op family. cpu_ops.cpp dispatches a node to one of these.
//
// Every operand is seen through its byte strides, so sources may be views (a row of a
// matrix, a permuted tensor, one head of a fused projection). Dimension 0 is contiguous
// for every operand except the source of Copy, which reads element by element.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_ops.h"

namespace braid::cpu {

// A tensor as a kernel reads or writes it: memory, type, shape and byte strides.
struct TensorView {
  uint8_t* data = nullptr;
  DType type = DType::F32;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  std::array<size_t, kMaxDims> nb{};

  // Rows are dimension 0; this is the number of them over dimensions 1-3.
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  uint8_t* row(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const {
    return data + static_cast<size_t>(i1) * nb[1] + static_cast<size_t>(i2) * nb[2] +
           static_cast<size_t>(i3) * nb[3];
  }
  // The flat row index r (i1 fastest) split into coordinates.
  uint8_t* row_at(int64_t r) const { return row(r % ne[1], (r / ne[1]) % ne[2], r / (ne[1] * ne[2])); }
  uint8_t* element(int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) const {
    return row(i1, i2, i3) + static_cast<size_t>(i0) * nb[0];
  }
  float f32(int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) const;
  int32_t i32(int64_t i0, int64_t i1 = 0) const;
};

// The node being computed: its output and its sources, resolved to memory.
struct NodeArgs {
  const Graph& graph;
  const Tensor& node;
  TensorView out;
  std::vector<TensorView> src;

  // Throws braid::Error naming the op and the node.
  [[noreturn]] void fail(const std::string& what) const;
};

// Calls fn(out_row, i1, i2, i3) for every row of the output, in memory order.
template <typename Fn>
void for_each_row(const TensorView& out, Fn&& fn) {
  for (int64_t i3 = 0; i3 < out.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < out.ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < out.ne[1]; ++i1) fn(reinterpret_cast<float*>(out.row(i1, i2, i3)), i1, i2, i3);
    }
  }
}

// MulMatId (w, x, ids): the tokens that chose each expert in the node's slot, in token
// order; fails the node on an expert id outside the weights.
std::vector<std::vector<int64_t>> tokens_by_expert(const NodeArgs& args);

// The node with its output and sources resolved through `memory`.
NodeArgs bind_node(const Graph& graph, TensorId node, const Addresses& memory);

// Element-wise and row-wise ops: Add, Mul, Scale, Silu, Swiglu, Softmax, RmsNorm, Copy.
void compute_elementwise(const NodeArgs& args);
// Weight-reading ops: MulMat, MulMatId, GetRows.
void compute_matmul(const NodeArgs& args);
void compute_get_rows(const NodeArgs& args);
// Attention block ops: Rope, KvWrite, Attention.
// Rope's parameters as the node holds them (Op::Rope, or a rotating Op::KvWrite), and its
// optional frequency factors (the node's source `factors_src`, when it has one): read
// once here for the reference and the fast kernels. Pair i turns by theta_i = pos *
// frequency[i], frequency[i] = freq_scale * base^(-2i/dims) / factor_i (factor_i = 1
// without factors); normal mode pairs adjacent elements (2i, 2i+1), NeoX i with i + dims/2.
struct Rotation {
  int mode;
  int64_t dims;  // 0: no rotation (a plain kv_write)
  std::vector<double> frequency;  // of each pair

  Rotation(const NodeArgs& args, size_t factors_src);
};
// Fails the node unless every position indexes (or attends within) a cache of ctx slots.
void check_positions(const NodeArgs& args, const TensorView& positions, int64_t ctx);
void compute_rope(const NodeArgs& args);
void compute_kv_write(const NodeArgs& args);
// The first cache row query attends to at `position` (Op::Attention's region parameter:
// 0, the whole cache; else position's region of that many rows).
inline int64_t first_attended_row(int64_t position, int region) {
  return region > 0 ? position - position % region : 0;
}
void compute_attention(const NodeArgs& args);
// Mixture-of-experts routing: TopK, MoeWeights, MoeCombine.
void compute_moe(const NodeArgs& args);
// TopLogits: a sampler's candidates; one row of them (the fast backend spreads rows over threads).
void compute_top_logits(const NodeArgs& args);
void top_logits_row(const NodeArgs& args, int64_t row);

}  // namespace braid::cpu
