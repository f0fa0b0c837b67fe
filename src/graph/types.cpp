#include "braid/types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>

#include "braid/graph.h"
#include "quant/quantize.h"

namespace braid {
namespace {

constexpr std::array<DTypeTraits, kDTypeCount> kTraits = {{
    {"f32", 1, 4, false},
    {"f16", 1, 2, false},
    {"bf16", 1, 2, false},
    {"q8_0", kQuantBlock, sizeof(BlockQ8_0), true},
    {"q4_0", kQuantBlock, sizeof(BlockQ4_0), true},
    {"q4_1", kQuantBlock, sizeof(BlockQ4_1), true},
    {"i32", 1, 4, false},
    {"q5_0", kQuantBlock, sizeof(BlockQ5_0), true},
    {"q5_1", kQuantBlock, sizeof(BlockQ5_1), true},
    {"q2_K", kSuperBlock, sizeof(BlockQ2_K), true},
    {"q3_K", kSuperBlock, sizeof(BlockQ3_K), true},
    {"q4_K", kSuperBlock, sizeof(BlockQ4_K), true},
    {"q5_K", kSuperBlock, sizeof(BlockQ5_K), true},
    {"q6_K", kSuperBlock, sizeof(BlockQ6_K), true},
}};

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

const DTypeTraits& traits(DType type) { return kTraits.at(static_cast<size_t>(type)); }

bool parse_dtype(std::string_view text, DType* out) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  const std::string wanted = lower(text);
  for (int i = 0; i < kDTypeCount; ++i) {
    if (lower(kTraits[static_cast<size_t>(i)].name) == wanted) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return float_of(sign | 0x7f800000u | (mantissa << 13));  // inf, nan
  return float_of(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): value / 2^-24, rounded to nearest even.
    const float magnitude = float_of(abs);
    const float scaled = magnitude * 16777216.0f;  // exact: power of two
    const auto rounded = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: drop 13 mantissa bits with round to nearest even.
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t round = 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rebased + round) >> 13));
}

uint16_t f32_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet nan
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void to_f32(DType type, const void* src, float* dst, int64_t count) {
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
      return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::I32: {
      const auto* s = static_cast<const int32_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      quant::dequantize_row(type, src, dst, count);
      return;
  }
  BRAID_ASSERT(false && "unknown dtype");
}

void from_f32(DType type, const float* src, void* dst, int64_t count) {
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
      return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < count; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < count; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::I32: {
      auto* d = static_cast<int32_t*>(dst);
      for (int64_t i = 0; i < count; ++i) d[i] = static_cast<int32_t>(src[i]);
      return;
    }
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      quant::quantize_row(type, src, dst, count);
      return;
  }
  BRAID_ASSERT(false && "unknown dtype");
}

}  // namespace braid
