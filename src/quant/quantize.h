// Host quantizers and dequantizers of the block formats (quant/blocks.h), behind
// from_f32 / to_f32 of braid/types.h.
#pragma once

#include "braid/quant/dequantize.h"

namespace braid::quant {

// `count` is a multiple of the type's block size; `type` is a quantized type.
void dequantize_row(DType type, const void* src, float* dst, int64_t count);
void quantize_row(DType type, const float* src, void* dst, int64_t count);

// One block of each format from traits(T).block_elements floats.
void quantize_block(const float* x, BlockQ8_0& out);
void quantize_block(const float* x, BlockQ4_0& out);
void quantize_block(const float* x, BlockQ4_1& out);
void quantize_block(const float* x, BlockQ5_0& out);
void quantize_block(const float* x, BlockQ5_1& out);
void quantize_block(const float* x, BlockQ2_K& out);
void quantize_block(const float* x, BlockQ3_K& out);
void quantize_block(const float* x, BlockQ4_K& out);
void quantize_block(const float* x, BlockQ5_K& out);
void quantize_block(const float* x, BlockQ6_K& out);

}  // namespace braid::quant
