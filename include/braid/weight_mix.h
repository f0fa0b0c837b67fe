// Which type each weight matrix of a model gets when it is quantized: one type for all
// (with llama.cpp's fallback for K-quant rows that are not a multiple of 256), or one of
// llama.cpp's mixes (Q4_K_M, Q5_K_M), reproduced from llama-quant.cpp's rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "braid/types.h"

namespace braid {

enum class WeightMix : uint8_t { None, Q4_K_M, Q5_K_M };

struct ModelConfig;

// "q4_k_m", "Q5_K_M" (any case); false when `text` names no mix.
bool parse_weight_mix(std::string_view text, WeightMix* out);
std::string_view name(WeightMix mix);
DType base_type(WeightMix mix);  // Q4_K for Q4_K_M

// A K-quant type where rows of `row_elements` fit its 256-element blocks; otherwise
// llama.cpp's fallback: Q2_K, Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0
// (and F16 when not even 32 divides the row). Other types are returned as they are.
DType fallback_type(DType type, int64_t row_elements);

// The type of weight matrix `tensor` ("blk.3.attn_v.weight", ...) with rows of
// `row_elements`, for config.weight_type and config.weight_mix. For Q4_K_M / Q5_K_M, as
// llama.cpp picks it for the llama architecture: output.weight Q6_K; attn_v and ffn_down
// Q6_K in the layers where use_more_bits(layer, layers) holds (the first and last eighth
// of the layers and every third layer between), the rest the base type; with 8 experts
// attn_v and attn_k Q8_0 and attn_output Q5_K. Then fallback_type.
DType weight_type_for(const ModelConfig& config, const std::string& tensor, int64_t row_elements);

// Sets config.weight_type (and weight_mix) from "q4_k", "f16", "q4_k_m", ...; throws
// braid::Error naming `text` when it is neither a weight type nor a mix.
void set_weight_type(ModelConfig& config, std::string_view text);
inline constexpr std::string_view kWeightTypeNames =
    "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m, q5_k_m";

// llama.cpp's llama_ftype number for a file of these weights (general.file_type).
uint32_t llama_file_type(DType weight_type, WeightMix mix);

}  // namespace braid
