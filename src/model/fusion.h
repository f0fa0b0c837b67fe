// Horizontal fusion: sibling projections that read the same input, named as groups.
//
// A group's parts are stacked along dimension 1 (output rows) into one weight, so one
// mul_mat (or mul_mat_id, per expert) computes all of them; views split the result. The
// fused weights are made once at load (fuse_projections); the graph builder reads them
// when GraphOptions::fuse_projections is set.
#pragma once

#include <string>
#include <vector>

#include "braid/model.h"

namespace braid {

struct FusedGroup {
  std::string fused;               // per-layer name of the concatenation: "attn_qkv"
  std::vector<std::string> parts;  // in stacking order: "attn_q", "attn_k", "attn_v"
};

inline const FusedGroup kFusedQkv{"attn_qkv", {"attn_q", "attn_k", "attn_v"}};
inline const FusedGroup kFusedGateUp{"ffn_gate_up", {"ffn_gate", "ffn_up"}};
inline const FusedGroup kFusedGateUpExperts{"ffn_gate_up_exps", {"ffn_gate_exps", "ffn_up_exps"}};

// The groups of every layer of this config: q/k/v, and gate/up (per expert for MoE).
std::vector<FusedGroup> fused_groups(const ModelConfig& config);

// Whether the parts' rows can be stacked: one type, and equal in every dimension but 1.
// Rows are whole quantization blocks, so stacking bytes is exact for every type.
bool can_stack(const std::vector<const WeightTensor*>& parts);

// The shape of the parts stacked along dimension 1.
Graph::Shape stacked_shape(const std::vector<Graph::Shape>& parts);

}  // namespace braid
