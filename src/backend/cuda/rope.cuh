// Rotary position embedding. x is [head_dim, heads, n] (strided in dims 1..2), positions
// [n] are read from device memory. Pair i (0 <= i < dims/2) turns by
//   theta = position * base^(-2i/dims) * freq_scale;
// mode 0 pairs (x[2i], x[2i+1]), mode 2 (NeoX) pairs (x[i], x[i + dims/2]). Elements at
// or beyond `dims` pass through. theta and its sine and cosine are computed in double:
// at positions in the tens of thousands a float theta loses ~1e-3 radians.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// Rope's parameters (OpParams i[0], i[1], f[0], f[1]); dims 0 means no rotation (a
// plain kv_write).
struct RopeParams {
  int mode;
  int dims;
  float base;
  float freq_scale;
};

inline RopeParams rope_params(const OpParams& p) { return {p.i[0], p.i[1], p.f[0], p.f[1]}; }

// Rotates pair i (0 <= i < dims/2) of one row: the rotated values and where they go.
// Shared by the rope kernel and the rotating kv_write, so both give the same bits.
struct RotatedPair {
  int first, second;
  float a, b;
};
__device__ __forceinline__ RotatedPair rotate_pair(const float* row, int i, const RopeParams& p, double position) {
  const int half = p.dims / 2;
  const double theta =
      position * pow(static_cast<double>(p.base), -2.0 * i / p.dims) * static_cast<double>(p.freq_scale);
  double sin_theta, cos_theta;
  sincos(theta, &sin_theta, &cos_theta);
  const int first = p.mode == kRopeNeox ? i : 2 * i;
  const int second = p.mode == kRopeNeox ? i + half : 2 * i + 1;
  const double a = row[first];
  const double b = row[second];
  return {first, second, static_cast<float>(a * cos_theta - b * sin_theta),
          static_cast<float>(a * sin_theta + b * cos_theta)};
}

void launch_rope(const NodeLaunch& launch);

}  // namespace braid::cuda
