// The attention block: Rope, KvWrite, Attention.
//
// Positions come from an I32 input tensor (never from op parameters), the same way the
// CUDA kernels read them from device memory, so one graph serves every decode step.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace braid::cpu {

void check_positions(const NodeArgs& args, const TensorView& positions, int64_t ctx) {
  for (int64_t i = 0; i < positions.ne[0]; ++i) {
    const int32_t p = positions.i32(i);
    if (p < 0 || p >= ctx) {
      args.fail(fmt::format("position {} of token {} is outside the cache of {} slots", p, i, ctx));
    }
  }
}

Rotation::Rotation(const NodeArgs& args, size_t factors_src)
    : mode(args.node.params.i[0]), dims(args.node.params.i[1]) {
  const double base = args.node.params.f[0], freq_scale = args.node.params.f[1];
  const TensorView* factors = args.src.size() > factors_src ? &args.src[factors_src] : nullptr;
  for (int64_t i = 0; i < dims / 2; ++i) {
    double f = freq_scale * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dims));
    if (factors) f /= factors->f32(i);
    frequency.push_back(f);
  }
}

namespace {

// The reference's rotation: each pair's cosine and sine computed where it is rotated.
struct ReferenceRotation : Rotation {
  using Rotation::Rotation;

  void apply(const float* in, float* out, int64_t head_dim, double pos) const {
    for (int64_t i = dims; i < head_dim; ++i) out[i] = in[i];
    for (int64_t i = 0; i < dims / 2; ++i) {
      const double theta = pos * frequency[static_cast<size_t>(i)];
      const int64_t a = mode == kRopeNeox ? i : 2 * i;
      const int64_t b = mode == kRopeNeox ? i + dims / 2 : 2 * i + 1;
      const double c = std::cos(theta), s = std::sin(theta);
      const double x0 = in[a], x1 = in[b];
      out[a] = static_cast<float>(x0 * c - x1 * s);
      out[b] = static_cast<float>(x0 * s + x1 * c);
    }
  }
};

}  // namespace

void compute_rope(const NodeArgs& args) {
  const TensorView& x = args.src[0];
  const TensorView& positions = args.src[1];
  const ReferenceRotation rotation(args, 2);
  for (int64_t t = 0; t < x.ne[2]; ++t) {
    for (int64_t h = 0; h < x.ne[1]; ++h) {
      rotation.apply(reinterpret_cast<const float*>(x.row(h, t)), reinterpret_cast<float*>(args.out.row(h, t)),
                     x.ne[0], positions.i32(t));
    }
  }
}

// The node aliases the cache: x[:, :, i] goes to slot positions[i], converted to the
// cache's type; rotated first when the node carries rope's parameters (rope_kv_write).
void compute_kv_write(const NodeArgs& args) {
  const TensorView& cache = args.out;
  const TensorView& x = args.src[1];
  const TensorView& positions = args.src[2];
  check_positions(args, positions, cache.ne[2]);
  const ReferenceRotation rotation(args, 3);
  std::vector<float> rotated(static_cast<size_t>(x.ne[0]));
  for (int64_t t = 0; t < x.ne[2]; ++t) {
    const int32_t slot = positions.i32(t);
    for (int64_t h = 0; h < x.ne[1]; ++h) {
      const auto* row = reinterpret_cast<const float*>(x.row(h, t));
      if (rotation.dims > 0) {
        rotation.apply(row, rotated.data(), x.ne[0], slot);
        row = rotated.data();
      }
      from_f32(cache.type, row, cache.row(h, slot), x.ne[0]);
    }
  }
}

// Query i of head h attends to cache slots first..positions[i] of kv head h / group, where
// group = heads / kv_heads (grouped-query attention) and first is 0 or the start of the
// query's region (first_attended_row). Softmax in double, max subtracted.
void compute_attention(const NodeArgs& args) {
  const TensorView& q = args.src[0];
  const TensorView& k_cache = args.src[1];
  const TensorView& v_cache = args.src[2];
  const TensorView& positions = args.src[3];
  const double scale = args.node.params.f[0];
  const int region = args.node.params.i[0];
  const int64_t head_dim = q.ne[0];
  const int64_t heads = q.ne[1];
  const int64_t kv_heads = k_cache.ne[1];
  const int64_t group = heads / kv_heads;
  check_positions(args, positions, k_cache.ne[2]);

  // Convert the live part of both caches to f32 once: slots [0, max position].
  int64_t live = 0;
  for (int64_t i = 0; i < positions.ne[0]; ++i) live = std::max<int64_t>(live, positions.i32(i) + 1);
  const auto cache_to_f32 = [&](const TensorView& cache) {
    std::vector<float> f(static_cast<size_t>(live * kv_heads * head_dim));
    for (int64_t s = 0; s < live; ++s) {
      for (int64_t h = 0; h < kv_heads; ++h) {
        to_f32(cache.type, cache.row(h, s), f.data() + (s * kv_heads + h) * head_dim, head_dim);
      }
    }
    return f;
  };
  const std::vector<float> keys = cache_to_f32(k_cache);
  const std::vector<float> values = cache_to_f32(v_cache);

  std::vector<double> weights(static_cast<size_t>(live));
  std::vector<double> acc(static_cast<size_t>(head_dim));
  for (int64_t i = 0; i < q.ne[2]; ++i) {
    const int64_t last = positions.i32(i);
    const int64_t first = first_attended_row(last, region);
    for (int64_t h = 0; h < heads; ++h) {
      const auto* query = reinterpret_cast<const float*>(q.row(h, i));
      const int64_t kv = h / group;
      double max = -INFINITY;
      for (int64_t s = first; s <= last; ++s) {
        const float* key = keys.data() + (s * kv_heads + kv) * head_dim;
        double score = 0;
        for (int64_t d = 0; d < head_dim; ++d) score += static_cast<double>(query[d]) * key[d];
        weights[static_cast<size_t>(s)] = scale * score;
        max = std::fmax(max, scale * score);
      }
      double sum = 0;
      for (int64_t s = first; s <= last; ++s) sum += weights[static_cast<size_t>(s)] = std::exp(weights[static_cast<size_t>(s)] - max);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t s = first; s <= last; ++s) {
        const float* value = values.data() + (s * kv_heads + kv) * head_dim;
        const double p = weights[static_cast<size_t>(s)] / sum;
        for (int64_t d = 0; d < head_dim; ++d) acc[static_cast<size_t>(d)] += p * value[d];
      }
      auto* out = reinterpret_cast<float*>(args.out.row(h, i));
      for (int64_t d = 0; d < head_dim; ++d) out[d] = static_cast<float>(acc[static_cast<size_t>(d)]);
    }
  }
}

}  // namespace braid::cpu
