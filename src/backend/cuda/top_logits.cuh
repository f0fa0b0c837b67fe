// top_logits: the k best logits of each row and their indices (ops::top_logits), so that
// a decode step copies a sampler's candidates to the host instead of whole vocabulary rows.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_top_logits(const NodeLaunch& launch);
bool top_logits_supported(const Graph& graph, TensorId node);

}  // namespace braid::cuda
