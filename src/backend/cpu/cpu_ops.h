// CPU reference kernels. Simple and obviously right: every kernel converts its inputs to
// f32, accumulates dot products and sums in double, and writes f32 (or the node's type).
// This is the reference every other backend is compared against.
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
