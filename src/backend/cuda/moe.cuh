// Mixture-of-experts routing ops.
//   top_k:       indices of the k largest logits of each row, descending; equal values
//                go to the lower index (the order a stable sort gives); NaN ranks last.
//   moe_weights: for each token, softmax over the logits of its selected experts.
//   moe_combine: sum over slots s of weights[s, t] * y_s[:, t], in ascending s.
// Expert ids are read from device memory; an id outside the logits yields NaN.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

inline constexpr int kMoeMaxCombined = 32;  // expert outputs one moe_combine accepts

void launch_top_k(const NodeLaunch& launch);
void launch_moe_weights(const NodeLaunch& launch);
void launch_moe_combine(const NodeLaunch& launch);
bool moe_supported(const Graph& graph, TensorId node);

}  // namespace braid::cuda
