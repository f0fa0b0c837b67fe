// Rotary position embedding. x is [head_dim, heads, n] (strided in dims 1..2), positions
// [n] are read from device memory. Pair i (0 <= i < dims/2) turns by
//   theta = position * base^(-2i/dims) * freq_scale / freq_factors[i]
// (freq_factors: Llama 3's rope scaling, an optional f32 [dims/2] operand; 1 without it);
// mode 0 pairs (x[2i], x[2i+1]), mode 2 (NeoX) pairs (x[i], x[i + dims/2]). Elements at
// or beyond `dims` pass through. theta and its sine and cosine are computed in double:
// at positions in the tens of thousands a float theta loses ~1e-3 radians.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// Rope's parameters (OpParams i[0], i[1], f[0], f[1]) and the frequency factors' device
// address (null when the node has none); dims 0 means no rotation (a plain kv_write).
struct RopeParams {
  int mode;
  int dims;
  float base;
  float freq_scale;
  const float* freq_factors;
};

// The node's rope parameters; its source `factors_src`, when present, is the factors.
inline RopeParams rope_params(const NodeLaunch& launch, size_t factors_src) {
  const OpParams& p = launch.node.params;
  const float* factors = launch.node.src.size() > factors_src
                             ? reinterpret_cast<const float*>(launch.src_data(factors_src))
                             : nullptr;
  return {p.i[0], p.i[1], p.f[0], p.f[1], factors};
}

// Heads a block of the rope and kv_write kernels covers: each thread's pair index then
// repeats across the heads it visits, so it computes its angle (a double pow and sincos)
// once, not once per head.
constexpr int kRopeHeadsPerBlock = 8;
constexpr int kRopeThreads = 128;

// Heads [head0, head_end) of one token: writes element d of head h through store(h, d, v),
// with the first p.dims elements of each head rotated (none when p.dims is 0) and the
// rest passed through. row(h) is head h's input. Pair i turns by theta_i as above; the
// rope kernel and the rotating kv_write both come here, so they give the same bits.
template <typename Row, typename Store>
__device__ __forceinline__ void rope_heads(const RopeParams& p, double position, int head0, int head_end,
                                           int64_t head_dim, Row row, Store store) {
  const int pairs = p.dims / 2;
  const int heads = head_end - head0;
  int angle_of = -1;  // the pair whose angle is in cos_theta, sin_theta
  double cos_theta = 1.0, sin_theta = 0.0;
  for (int w = threadIdx.x; w < pairs * heads; w += blockDim.x) {
    const int i = w % pairs;
    const int h = head0 + w / pairs;
    if (i != angle_of) {
      double theta =
          position * pow(static_cast<double>(p.base), -2.0 * i / p.dims) * static_cast<double>(p.freq_scale);
      if (p.freq_factors != nullptr) theta /= static_cast<double>(p.freq_factors[i]);
      sincos(theta, &sin_theta, &cos_theta);
      angle_of = i;
    }
    const int first = p.mode == kRopeNeox ? i : 2 * i;
    const int second = p.mode == kRopeNeox ? i + pairs : 2 * i + 1;
    const float* in = row(h);
    const double a = in[first];
    const double b = in[second];
    store(h, first, static_cast<float>(a * cos_theta - b * sin_theta));
    store(h, second, static_cast<float>(a * sin_theta + b * cos_theta));
  }
  const int64_t rest = head_dim - p.dims;
  for (int64_t w = threadIdx.x; w < rest * heads; w += blockDim.x) {
    const int h = head0 + static_cast<int>(w / rest);
    const int64_t d = p.dims + w % rest;
    store(h, d, row(h)[d]);
  }
}

// The grid of those kernels: (head groups, tokens).
inline dim3 rope_grid(int64_t heads, int64_t tokens) {
  return dim3(static_cast<unsigned>((heads + kRopeHeadsPerBlock - 1) / kRopeHeadsPerBlock),
              static_cast<unsigned>(tokens));
}

// The rope kernel's block (head group `group` of kRopeHeadsPerBlock heads, token `token`),
// shared with the persistent kernel's tiles: out is contiguous [head_dim, heads, n].
__device__ __forceinline__ void rope_block(const StridedTensor& x, const int32_t* positions, const RopeParams& p,
                                           float* out, int group, int64_t token) {
  const int head0 = group * kRopeHeadsPerBlock;
  const int head_end = min(head0 + kRopeHeadsPerBlock, static_cast<int>(x.ne[1]));
  const int64_t head_dim = x.ne[0];
  float* out_token = out + token * x.ne[1] * head_dim;
  rope_heads(
      p, static_cast<double>(positions[token]), head0, head_end, head_dim,
      [&](int h) { return reinterpret_cast<const float*>(x.data + h * x.nb[1] + token * x.nb[2]); },
      [&](int h, int64_t d, float v) { out_token[h * head_dim + d] = v; });
}

void launch_rope(const NodeLaunch& launch);

}  // namespace braid::cuda
