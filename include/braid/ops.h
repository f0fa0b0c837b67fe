// Op builders: each checks its operands' shapes and types and adds one node to a graph.
// A mismatch throws braid::Error naming the op and the shapes, e.g.
//   "mul_mat: w [4096, 11008] and x [2048, 1] disagree in dimension 0".
// Dimension 0 of every compute operand must be contiguous (views may stride dims 1-3).
#pragma once

#include <string>
#include <vector>

#include "braid/graph.h"

namespace braid::ops {

using Shape = Graph::Shape;

// Views.
TensorId reshape(Graph& g, TensorId a, Shape ne);
// A strided window of `a`: shape ne, strides nb (nb[0] must be a's), starting `offset` bytes in.
TensorId view(Graph& g, TensorId a, Shape ne, std::array<size_t, kMaxDims> nb, size_t offset);
// Result dimension axes[i] is a's dimension i (ggml's convention).
TensorId permute(Graph& g, TensorId a, std::array<int, kMaxDims> axes);
TensorId transpose(Graph& g, TensorId a);  // swaps dimensions 0 and 1
// Row `row` (dimension 1) of a 2-D tensor, as a [ne0, 1] view.
TensorId row(Graph& g, TensorId a, int64_t row);

// Compute.
TensorId get_rows(Graph& g, TensorId table, TensorId ids);
TensorId add(Graph& g, TensorId a, TensorId b);
TensorId mul(Graph& g, TensorId a, TensorId b);
TensorId scale(Graph& g, TensorId a, float factor);
TensorId rms_norm(Graph& g, TensorId x, TensorId weight, float eps);  // weight may be kNoTensor
TensorId mul_mat(Graph& g, TensorId w, TensorId x);
// w x + plus in one node (plus: f32, contiguous, the product's shape), for the residual
// additions after a layer's output projections: one kernel fewer each, and no branch
// that streams could use is lost (the addition has to wait for the product anyway).
TensorId mul_mat_add(Graph& g, TensorId w, TensorId x, TensorId plus);
TensorId mul_mat_id(Graph& g, TensorId w, TensorId x, TensorId ids, int slot);
// freq_factors (optional, f32 [dims/2], a weight): pair i's frequency is divided by
// freq_factors[i] -- Llama 3's rope scaling, stored in GGUF files as rope_freqs.weight.
TensorId rope(Graph& g, TensorId x, TensorId positions, int mode, int dims, float base,
              float freq_scale = 1.0f, TensorId freq_factors = kNoTensor);
TensorId kv_write(Graph& g, TensorId cache, TensorId x, TensorId positions);
// kv_write of rope(x, ...): a kv_write node whose parameters are rope's (dims > 0 says
// rotate), one kernel instead of two for a layer's keys, whose rotated copy nothing
// else reads. Equal to the two ops applied in turn.
TensorId rope_kv_write(Graph& g, TensorId cache, TensorId x, TensorId positions, int mode, int dims, float base,
                       float freq_scale = 1.0f, TensorId freq_factors = kNoTensor);
// Query i attends to cache rows first..positions[i], where first = 0, or with region > 0
// the start of positions[i]'s region (positions[i] - positions[i] % region): a cache of
// several sequences, region rows each, serves a batch of them (see build_graph's
// GraphOptions::sequences). The cache's rows must be a multiple of region.
TensorId attention(Graph& g, TensorId q, TensorId k_cache, TensorId v_cache, TensorId positions,
                   float scale, int region = 0);
TensorId silu(Graph& g, TensorId a);
TensorId swiglu(Graph& g, TensorId a, TensorId b);
TensorId softmax(Graph& g, TensorId a, float scale = 1.0f);
TensorId copy(Graph& g, TensorId a, DType type);
TensorId top_k(Graph& g, TensorId logits, int k);
// The k largest logits of each row among its first `columns` (a vocabulary may be padded
// past the tokens that can be chosen), most likely first, equal values by the lower
// index, NaN last: f32 [k, 2, n], values at [:, 0, t] and their indices at [:, 1, t]
// (exact in f32 below 2^24). What a sampler with top_k <= k needs of a logits row.
TensorId top_logits(Graph& g, TensorId logits, int k, int64_t columns);
TensorId moe_weights(Graph& g, TensorId logits, TensorId ids);
TensorId moe_combine(Graph& g, TensorId weights, const std::vector<TensorId>& expert_outputs);
// The sum of x over the `ranks` participants of a tensor-parallel group (every rank's
// graph has the same all_reduce nodes, in the same order). One rank: the identity.
TensorId all_reduce(Graph& g, TensorId x, int ranks);

}  // namespace braid::ops
