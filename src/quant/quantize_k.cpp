// Quantizers of the K-quant formats (256-element super-blocks).
//
// Each sub-block gets its own least-squares scale (and minimum) from scale_search.h;
// those are then quantized to small integers against one f16 super-block scale (and
// minimum scale), and finally every element is rounded against its sub-block's
// quantized scale, so the rounding sees the scale the dequantizer will use. The result
// is not bit-identical to llama.cpp's quantizer (which weights the error differently),
// but its RMS error is of the same size: tests/quant_test.cpp states it per type.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/quantize.h"
#include "quant/scale_search.h"

namespace braid::quant {
namespace {

constexpr int kMaxSubBlocks = kSuperBlock / 16;

// Sub-block scales and minimums as integers in [0, levels] times f16 d and dmin.
struct AsymmetricScales {
  uint16_t d = 0, dmin = 0;
  int scale[kMaxSubBlocks] = {};
  int min[kMaxSubBlocks] = {};
};

AsymmetricScales fit_asymmetric(const float* x, int sub_blocks, int nmax, int levels) {
  const int n = kSuperBlock / sub_blocks;
  ScaleMin fits[kMaxSubBlocks];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < sub_blocks; ++s) {
    fits[s] = fit_scale_min(x + s * n, n, nmax);
    max_scale = std::max(max_scale, fits[s].scale);
    max_min = std::max(max_min, fits[s].min);
  }
  AsymmetricScales out;
  const float d = max_scale / static_cast<float>(levels);
  const float dmin = max_min / static_cast<float>(levels);
  out.d = f32_to_f16(d);
  out.dmin = f32_to_f16(dmin);
  for (int s = 0; s < sub_blocks; ++s) {
    out.scale[s] = d > 0 ? std::clamp(nearest(fits[s].scale / d), 0, levels) : 0;
    out.min[s] = dmin > 0 ? std::clamp(nearest(fits[s].min / dmin), 0, levels) : 0;
  }
  return out;
}

// q[i] in [0, nmax] for every element, against the quantized scales.
void round_asymmetric(const float* x, const AsymmetricScales& a, int sub_blocks, int nmax, int* q) {
  const int n = kSuperBlock / sub_blocks;
  const float d = f16_to_f32(a.d), dmin = f16_to_f32(a.dmin);
  for (int s = 0; s < sub_blocks; ++s) {
    const float scale = d * static_cast<float>(a.scale[s]);
    const float min = dmin * static_cast<float>(a.min[s]);
    for (int j = 0; j < n; ++j) {
      const int i = s * n + j;
      q[i] = scale > 0 ? std::clamp(nearest((x[i] + min) / scale), 0, nmax) : 0;
    }
  }
}

// Sub-block scales as integers in [-levels, levels - 1] times f16 d, and q[i] in
// [-nmax, nmax - 1] against them.
void fit_symmetric(const float* x, int nmax, int levels, uint16_t* d_out, int* scale, int* q) {
  constexpr int n = 16;
  float fits[kMaxSubBlocks];
  float max_scale = 0;
  for (int s = 0; s < kMaxSubBlocks; ++s) {
    fits[s] = fit_scale(x + s * n, n, nmax);
    if (std::fabs(fits[s]) > std::fabs(max_scale)) max_scale = fits[s];
  }
  const float d = max_scale / static_cast<float>(-levels);
  *d_out = f32_to_f16(d);
  const float stored_d = f16_to_f32(*d_out);
  for (int s = 0; s < kMaxSubBlocks; ++s) {
    scale[s] = d != 0 ? std::clamp(nearest(fits[s] / d), -levels, levels - 1) : 0;
    const float sub_scale = stored_d * static_cast<float>(scale[s]);
    for (int j = 0; j < n; ++j) {
      const int i = s * n + j;
      q[i] = sub_scale != 0 ? std::clamp(nearest(x[i] / sub_scale), -nmax, nmax - 1) : 0;
    }
  }
}

// Q2_K / Q3_K's 2-bit layout (see quant_detail::two_bits).
void pack_two_bits(const int* v, uint8_t* qs) {
  std::memset(qs, 0, kSuperBlock / 4);
  for (int i = 0; i < kSuperBlock; ++i) {
    qs[(i / 128) * 32 + i % 32] |= static_cast<uint8_t>((v[i] & 3) << (2 * ((i % 128) / 32)));
  }
}

// Q4_K / Q5_K's 6-bit scales and mins (see quant_detail::k_scale_min).
void pack_k_scales(const AsymmetricScales& a, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(a.scale[j] | ((a.scale[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(a.min[j] | ((a.min[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((a.scale[j + 4] & 0x0f) | ((a.min[j + 4] & 0x0f) << 4));
  }
}

// Q4_K / Q5_K's low nibbles: sub-blocks 2p and 2p + 1 share bytes 32p .. 32p + 31.
void pack_k_nibbles(const int* q, uint8_t* qs) {
  std::memset(qs, 0, kSuperBlock / 2);
  for (int i = 0; i < kSuperBlock; ++i) {
    qs[(i / 64) * 32 + i % 32] |= static_cast<uint8_t>((q[i] & 0x0f) << ((i / 32) % 2 ? 4 : 0));
  }
}

}  // namespace

void quantize_block(const float* x, BlockQ2_K& out) {
  const AsymmetricScales a = fit_asymmetric(x, 16, 3, 15);
  int q[kSuperBlock];
  round_asymmetric(x, a, 16, 3, q);
  out.d = a.d;
  out.dmin = a.dmin;
  for (int s = 0; s < 16; ++s) out.scales[s] = static_cast<uint8_t>(a.scale[s] | (a.min[s] << 4));
  pack_two_bits(q, out.qs);
}

void quantize_block(const float* x, BlockQ3_K& out) {
  int scale[kMaxSubBlocks], q[kSuperBlock];
  fit_symmetric(x, 4, 32, &out.d, scale, q);
  std::memset(out.scales, 0, sizeof(out.scales));
  for (int s = 0; s < kMaxSubBlocks; ++s) {
    const int biased = scale[s] + 32;  // 0..63
    out.scales[s % 8] |= static_cast<uint8_t>((biased & 0x0f) << (s < 8 ? 0 : 4));
    out.scales[8 + s % 4] |= static_cast<uint8_t>((biased >> 4) << (2 * (s / 4)));
  }
  int v[kSuperBlock];
  std::memset(out.hmask, 0, sizeof(out.hmask));
  for (int i = 0; i < kSuperBlock; ++i) {
    v[i] = q[i] + 4;  // 0..7: the low 2 bits, and bit 2 set means "no -4 offset"
    out.hmask[i % 32] |= static_cast<uint8_t>((v[i] >> 2) << (i / 32));
  }
  pack_two_bits(v, out.qs);
}

void quantize_block(const float* x, BlockQ4_K& out) {
  const AsymmetricScales a = fit_asymmetric(x, 8, 15, 63);
  int q[kSuperBlock];
  round_asymmetric(x, a, 8, 15, q);
  out.d = a.d;
  out.dmin = a.dmin;
  pack_k_scales(a, out.scales);
  pack_k_nibbles(q, out.qs);
}

void quantize_block(const float* x, BlockQ5_K& out) {
  const AsymmetricScales a = fit_asymmetric(x, 8, 31, 63);
  int q[kSuperBlock];
  round_asymmetric(x, a, 8, 31, q);
  out.d = a.d;
  out.dmin = a.dmin;
  pack_k_scales(a, out.scales);
  pack_k_nibbles(q, out.qs);
  std::memset(out.qh, 0, sizeof(out.qh));
  for (int i = 0; i < kSuperBlock; ++i) out.qh[i % 32] |= static_cast<uint8_t>((q[i] >> 4) << (i / 32));
}

void quantize_block(const float* x, BlockQ6_K& out) {
  int scale[kMaxSubBlocks], q[kSuperBlock];
  fit_symmetric(x, 32, 128, &out.d, scale, q);
  for (int s = 0; s < kMaxSubBlocks; ++s) out.scales[s] = static_cast<int8_t>(scale[s]);
  std::memset(out.ql, 0, sizeof(out.ql));
  std::memset(out.qh, 0, sizeof(out.qh));
  for (int i = 0; i < kSuperBlock; ++i) {
    const int v = q[i] + 32;  // 0..63
    const int half = i / 128, quarter = (i % 128) / 32, l = i % 32;
    out.ql[half * 64 + (quarter % 2) * 32 + l] |= static_cast<uint8_t>((v & 0x0f) << (quarter < 2 ? 0 : 4));
    out.qh[half * 32 + l] |= static_cast<uint8_t>((v >> 4) << (2 * quarter));
  }
}

}  // namespace braid::quant
