// Element types and their storage layouts.
//
// Compute types (F32, F16, BF16) hold one value per element. Weight storage types
// (Q8_0, Q4_0, Q4_1) pack 32 elements into a block with ggml's exact byte layout, so
// tensors from GGUF files are used as they are, without conversion. I32 carries token
// ids, positions and expert ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace braid {

enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_1, I32 };
inline constexpr int kDTypeCount = 7;

// ggml block layouts (byte-compatible with GGUF tensor data).
inline constexpr int kQuantBlock = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQuantBlock];
};
struct BlockQ4_0 {
  uint16_t d;                    // f16 scale
  uint8_t qs[kQuantBlock / 2];  // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d;  // f16 scale
  uint16_t m;  // f16 minimum
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);

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
// Converts f32 to `type`; quantization follows ggml's reference quantizers.
void from_f32(DType type, const float* src, void* dst, int64_t count);

}  // namespace braid
