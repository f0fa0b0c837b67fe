// Fast attention: f32 dot products over the cache rows (dot_f32), softmax in f32, and the
// weighted sum of value rows by axpy_f32. An f32 cache is read in place; other cache
// types are converted once per call (the live slots only), as the reference does. Large
// calls (prompts) split their (query, head) pairs over the pool.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "backend/cpu/fast_kernels.h"
#include "backend/cpu/fast_product.h"

namespace braid::cpu {
namespace {

// The cache's rows [0, live) as f32: in place when the cache is f32, else converted into
// `buffer` (only the rows some query attends to: `attended`, [first, last] per query, so a
// batch's cache of many sequences costs the rows of this batch's sequences).
// Returns row (slot s, kv head h) at s * slot_stride + h * head_stride floats.
struct CacheRows {
  const float* base;
  int64_t slot_stride, head_stride;

  CacheRows(const TensorView& cache, int64_t live, const std::vector<std::pair<int64_t, int64_t>>& attended,
            std::vector<float>& buffer) {
    const int64_t head_dim = cache.ne[0], kv_heads = cache.ne[1];
    if (cache.type == DType::F32 && cache.nb[1] % sizeof(float) == 0 && cache.nb[2] % sizeof(float) == 0) {
      base = reinterpret_cast<const float*>(cache.data);
      head_stride = static_cast<int64_t>(cache.nb[1] / sizeof(float));
      slot_stride = static_cast<int64_t>(cache.nb[2] / sizeof(float));
      return;
    }
    buffer.resize(static_cast<size_t>(live * kv_heads * head_dim));
    std::vector<bool> converted(static_cast<size_t>(live));
    for (const auto& [first, last] : attended) {
      for (int64_t s = first; s <= last; ++s) {
        if (converted[static_cast<size_t>(s)]) continue;
        converted[static_cast<size_t>(s)] = true;
        for (int64_t h = 0; h < kv_heads; ++h) {
          to_f32(cache.type, cache.row(h, s), buffer.data() + (s * kv_heads + h) * head_dim, head_dim);
        }
      }
    }
    base = buffer.data();
    head_stride = head_dim;
    slot_stride = kv_heads * head_dim;
  }
  const float* row(int64_t slot, int64_t head) const { return base + slot * slot_stride + head * head_stride; }
};

}  // namespace

bool fast_attention(const NodeArgs& args, const FastContext& context) {
  const TensorView& q = args.src[0];
  const TensorView& k_cache = args.src[1];
  const TensorView& v_cache = args.src[2];
  const TensorView& positions = args.src[3];
  if (q.type != DType::F32) return false;
  const auto scale = static_cast<float>(args.node.params.f[0]);
  const int64_t head_dim = q.ne[0], heads = q.ne[1], queries = q.ne[2];
  const int64_t kv_heads = k_cache.ne[1];
  const int64_t group = heads / kv_heads;
  const int region = args.node.params.i[0];
  int64_t live = 0;
  std::vector<std::pair<int64_t, int64_t>> attended;  // [first, last] of each query
  for (int64_t i = 0; i < positions.ne[0]; ++i) {
    const int32_t p = positions.i32(i);
    if (p < 0 || p >= k_cache.ne[2]) {
      args.fail(fmt::format("position {} of token {} is outside the cache of {} slots", p, i, k_cache.ne[2]));
    }
    live = std::max<int64_t>(live, p + 1);
    attended.emplace_back(first_attended_row(p, region), p);
  }
  thread_local std::vector<float> key_buffer, value_buffer;
  const CacheRows keys(k_cache, live, attended, key_buffer);
  const CacheRows values(v_cache, live, attended, value_buffer);

  auto attend = [&](int64_t task) {
    const int64_t i = task / heads, h = task % heads;
    const auto [first, last] = attended[static_cast<size_t>(i)];
    const auto* query = reinterpret_cast<const float*>(q.row(h, i));
    const int64_t kv = h / group;
    thread_local std::vector<float> weights;
    weights.resize(static_cast<size_t>(last + 1));
    float max = -INFINITY;
    for (int64_t s = first; s <= last; ++s) {
      const float score = scale * dot_f32(query, keys.row(s, kv), head_dim);
      weights[static_cast<size_t>(s)] = score;
      max = std::fmax(max, score);
    }
    float sum = 0;
    for (int64_t s = first; s <= last; ++s)
      sum += weights[static_cast<size_t>(s)] = std::exp(weights[static_cast<size_t>(s)] - max);
    auto* out = reinterpret_cast<float*>(args.out.row(h, i));
    std::fill(out, out + head_dim, 0.0f);
    for (int64_t s = first; s <= last; ++s) axpy_f32(out, weights[static_cast<size_t>(s)], values.row(s, kv), head_dim);
    const float inverse = 1.0f / sum;
    for (int64_t d = 0; d < head_dim; ++d) out[d] *= inverse;
  };
  const int64_t tasks = queries * heads;
  int64_t work = 0;  // keys scored, per head
  for (const auto& [first, last] : attended) work += last - first + 1;
  if (work * heads * head_dim < (1 << 16)) {
    for (int64_t t = 0; t < tasks; ++t) attend(t);
  } else {
    context.pool.parallel_for(tasks, attend);
  }
  return true;
}

}  // namespace braid::cpu
