// Quantizers of the 32-element formats, as ggml's reference quantizers compute them (so
// a braid file and a llama.cpp file made from the same floats hold the same bytes).
#include <algorithm>
#include <cmath>

#include "quant/quantize.h"

namespace braid::quant {
namespace {

// The value of largest magnitude, with its sign.
float signed_absmax(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < kQuantBlock; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float* lo, float* hi) {
  *lo = x[0];
  *hi = x[0];
  for (int j = 1; j < kQuantBlock; ++j) {
    *lo = std::min(*lo, x[j]);
    *hi = std::max(*hi, x[j]);
  }
}

// Elements j and j + 16 share byte j: j in the low nibble.
void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < kQuantBlock / 2; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
}

void pack_fifth_bits(const uint8_t* q, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kQuantBlock; ++j) bits |= static_cast<uint32_t>(q[j] >> 4) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(bits >> (8 * b));
}

}  // namespace

// d = max|x| / 127, q = round(x / d)
void quantize_block(const float* x, BlockQ8_0& out) {
  float amax = 0;
  for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  out.d = f32_to_f16(d);
  for (int j = 0; j < kQuantBlock; ++j) out.qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
}

// d = (value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5))
void quantize_block(const float* x, BlockQ4_0& out) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  out.d = f32_to_f16(d);
  uint8_t q[kQuantBlock];
  for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<uint8_t>(std::min(15.0f, x[j] * id + 8.5f));
  pack_nibbles(q, out.qs);
}

// d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5))
void quantize_block(const float* x, BlockQ4_1& out) {
  float lo, hi;
  min_max(x, &lo, &hi);
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  out.d = f32_to_f16(d);
  out.m = f32_to_f16(lo);
  uint8_t q[kQuantBlock];
  for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<uint8_t>(std::min(15.0f, (x[j] - lo) * id + 0.5f));
  pack_nibbles(q, out.qs);
}

// d = (value of largest magnitude) / -16, q = min(31, trunc(x / d + 16.5))
void quantize_block(const float* x, BlockQ5_0& out) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  out.d = f32_to_f16(d);
  uint8_t q[kQuantBlock];
  for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<uint8_t>(std::min(31.0f, x[j] * id + 16.5f));
  pack_nibbles(q, out.qs);
  pack_fifth_bits(q, out.qh);
}

// d = (max - min) / 31, m = min, q = min(31, trunc((x - min) / d + 0.5))
void quantize_block(const float* x, BlockQ5_1& out) {
  float lo, hi;
  min_max(x, &lo, &hi);
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  out.d = f32_to_f16(d);
  out.m = f32_to_f16(lo);
  uint8_t q[kQuantBlock];
  for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<uint8_t>(std::min(31.0f, (x[j] - lo) * id + 0.5f));
  pack_nibbles(q, out.qs);
  pack_fifth_bits(q, out.qh);
}

}  // namespace braid::quant
