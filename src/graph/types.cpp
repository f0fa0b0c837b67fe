#include "braid/types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>

#include "braid/graph.h"

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
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (int i = 0; i < kDTypeCount; ++i) {
    if (kTraits[static_cast<size_t>(i)].name == lower) {
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
    case DType::Q8_0: {
      const auto* blocks = static_cast<const BlockQ8_0*>(src);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float d = f16_to_f32(blocks[b].d);
        for (int j = 0; j < kQuantBlock; ++j) dst[b * kQuantBlock + j] = d * blocks[b].qs[j];
      }
      return;
    }
    case DType::Q4_0: {
      const auto* blocks = static_cast<const BlockQ4_0*>(src);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float d = f16_to_f32(blocks[b].d);
        float* out = dst + b * kQuantBlock;
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          out[j] = d * ((blocks[b].qs[j] & 0x0f) - 8);
          out[j + kQuantBlock / 2] = d * ((blocks[b].qs[j] >> 4) - 8);
        }
      }
      return;
    }
    case DType::Q4_1: {
      const auto* blocks = static_cast<const BlockQ4_1*>(src);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float d = f16_to_f32(blocks[b].d);
        const float m = f16_to_f32(blocks[b].m);
        float* out = dst + b * kQuantBlock;
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          out[j] = d * (blocks[b].qs[j] & 0x0f) + m;
          out[j + kQuantBlock / 2] = d * (blocks[b].qs[j] >> 4) + m;
        }
      }
      return;
    }
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
    case DType::Q8_0: {  // d = max|x| / 127, q = round(x / d)
      auto* blocks = static_cast<BlockQ8_0*>(dst);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float amax = 0;
        for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = f32_to_f16(d);
        for (int j = 0; j < kQuantBlock; ++j) {
          blocks[b].qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
        }
      }
      return;
    }
    case DType::Q4_0: {  // d = (value of largest magnitude) / -8, q = clamp(x / d + 8.5)
      auto* blocks = static_cast<BlockQ4_0*>(dst);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float amax = 0, max = 0;
        for (int j = 0; j < kQuantBlock; ++j) {
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = f32_to_f16(d);
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          const auto lo = static_cast<uint8_t>(std::min(15.0f, x[j] * id + 8.5f));
          const auto hi = static_cast<uint8_t>(std::min(15.0f, x[j + kQuantBlock / 2] * id + 8.5f));
          blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
      return;
    }
    case DType::Q4_1: {  // d = (max - min) / 15, m = min, q = round((x - min) / d)
      auto* blocks = static_cast<BlockQ4_1*>(dst);
      for (int64_t b = 0; b < count / kQuantBlock; ++b) {
        const float* x = src + b * kQuantBlock;
        float lo = x[0], hi = x[0];
        for (int j = 1; j < kQuantBlock; ++j) {
          lo = std::min(lo, x[j]);
          hi = std::max(hi, x[j]);
        }
        const float d = (hi - lo) / 15.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = f32_to_f16(d);
        blocks[b].m = f32_to_f16(lo);
        for (int j = 0; j < kQuantBlock / 2; ++j) {
          const auto q0 = static_cast<uint8_t>(std::min(15.0f, (x[j] - lo) * id + 0.5f));
          const auto q1 = static_cast<uint8_t>(std::min(15.0f, (x[j + kQuantBlock / 2] - lo) * id + 0.5f));
          blocks[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    }
  }
  BRAID_ASSERT(false && "unknown dtype");
}

}  // namespace braid
