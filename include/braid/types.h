// Element types and their storage layouts.
//
// Compute types (F32, F16, BF16) hold one value per element. Weight storage types pack
// 32 elements (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) or 256 (the K-quants Q2_K ... Q6_K) into a
// block with ggml's exact byte layout (quant/blocks.h), so tensors from GGUF files are
// used as they are, without conversion. I32 carries token ids, positions and expert ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "braid/quant/blocks.h"

namespace braid {

// New types are appended: the numbers index the traits table and nothing else.
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_1, I32, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };
inline constexpr int kDTypeCount = 14;

struct DTypeTraits {
  std::string_view name;
  int block_elements;  // elements per block (1 for scalar types)
  int block_bytes;     // bytes per block
  bool quantized;
};

const DTypeTraits& traits(DType type);
inline std::string_view name(DType type) { return traits(type).name; }
// Parses "f32", "Q4_0", ... (case-insensitive); returns false when unknown.
bool parse_dtype(std::string_view text, DType* out);

// Bytes of one row of `elements` values; elements must be a multiple of the block size.
inline size_t row_bytes(DType type, int64_t elements) {
  const DTypeTraits& t = traits(type);
  return static_cast<size_t>(elements / t.block_elements) * t.block_bytes;
}

// IEEE half and bfloat16 conversions (round to nearest even), host side.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t f32_to_bf16(float f);

// Converts `count` elements (a multiple of the block size for quantized types) of
// `type` at `src` to f32. Used by the CPU backend and tests.
void to_f32(DType type, const void* src, float* dst, int64_t count);
// Converts f32 to `type`. The legacy types follow ggml's reference quantizers; the
// K-quants search scales and minimums by least squares (src/quant/quantize_k.cpp).
void from_f32(DType type, const float* src, void* dst, int64_t count);

}  // namespace braid
