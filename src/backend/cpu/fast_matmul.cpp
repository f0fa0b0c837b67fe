// Fast matrix products: MulMat (with mul_mat_add) and MulMatId.
//
// The activations are converted to f32 once and, for quantized weights with int8
// activations, rounded once to int8 blocks (quant/dot.h); then the weight rows are split
// into chunks, one pool task per chunk. A chunk is small (16 rows) so that decode spreads
// evenly over the cores, and a kernel runs every token of the product over its chunk
// while the chunk is in cache, so a prompt reads the weights from memory once
// (fast_product.h).
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/fast_kernels.h"
#include "backend/cpu/fast_product.h"
#include "braid/quant/dot.h"

namespace braid::cpu {
namespace {

constexpr int64_t kChunkRows = 16;
// Products smaller than this (multiply-adds) run on the calling thread alone: handing
// tasks to the pool costs a few microseconds, about what such a product takes.
constexpr int64_t kParallelWork = int64_t{1} << 18;

// The activations of every token in the form the kernel takes; buffers per calling
// thread, read by the pool's workers while the caller waits for them.
struct Activations {
  std::vector<float> f32;
  std::vector<BlockQ8Act> q8;
  std::vector<const void*> rows;  // per token

  void prepare(const TensorView& x, DType weights, const FastContext& context) {
    const int64_t k = x.ne[0], n = x.ne[1];
    f32.resize(static_cast<size_t>(k * n));
    for (int64_t t = 0; t < n; ++t) to_f32(x.type, x.row(t), f32.data() + t * k, k);
    rows.resize(static_cast<size_t>(n));
    if (!takes_quantized_activations(weights, context.int8_activations)) {
      for (int64_t t = 0; t < n; ++t) rows[static_cast<size_t>(t)] = f32.data() + t * k;
      return;
    }
    const int64_t blocks = k / kQuantBlock;
    q8.resize(static_cast<size_t>(blocks * n));
    for (int64_t t = 0; t < n; ++t) {
      quantize_activations(f32.data() + t * k, q8.data() + t * blocks, k, context.simd);
      rows[static_cast<size_t>(t)] = q8.data() + t * blocks;
    }
  }
};

Activations& activations_of_this_thread() {
  thread_local Activations a;
  return a;
}

// Rows [0, m) of p over the pool; after each chunk, `finish(begin, end)`.
template <typename Finish>
void run_chunks(const FastContext& context, ProductKernel kernel, const RowProduct& p, int64_t m, Finish finish) {
  const int64_t chunks = (m + kChunkRows - 1) / kChunkRows;
  auto chunk = [&](int64_t c) {
    const int64_t begin = c * kChunkRows, end = std::min(m, begin + kChunkRows);
    kernel(p, begin, end);
    finish(begin, end);
  };
  if (m * p.k * p.n < kParallelWork) {
    for (int64_t c = 0; c < chunks; ++c) chunk(c);
  } else {
    context.pool.parallel_for(chunks, chunk);
  }
}

bool mul_mat(const NodeArgs& args, const FastContext& context) {
  const TensorView& w = args.src[0];
  const TensorView& x = args.src[1];
  const ProductKernel kernel = product_kernel(w.type, context.simd, context.int8_activations, context.avx512);
  if (!kernel || (traits(w.type).quantized && w.ne[0] % kQuantBlock != 0)) return false;
  Activations& a = activations_of_this_thread();
  a.prepare(x, w.type, context);
  const int64_t n = x.ne[1], m = w.ne[1];
  std::vector<float*> y(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) y[static_cast<size_t>(t)] = reinterpret_cast<float*>(args.out.row(t));
  const RowProduct p{w.data, w.nb[1], w.ne[0], a.rows.data(), y.data(), static_cast<int>(n)};
  const bool add = args.src.size() > 2;  // mul_mat_add: the product rounded to f32, then the addition
  run_chunks(context, kernel, p, m, [&](int64_t begin, int64_t end) {
    if (!add) return;
    for (int64_t t = 0; t < n; ++t) {
      const auto* plus = reinterpret_cast<const float*>(args.src[2].row(t));
      for (int64_t j = begin; j < end; ++j) y[static_cast<size_t>(t)][j] += plus[j];
    }
  });
  return true;
}

// Tokens grouped by the expert that slot `slot` selects; one product per expert.
bool mul_mat_id(const NodeArgs& args, const FastContext& context) {
  const TensorView& w = args.src[0];
  const TensorView& x = args.src[1];
  const ProductKernel kernel = product_kernel(w.type, context.simd, context.int8_activations, context.avx512);
  if (!kernel) return false;
  const int64_t experts = w.ne[2];
  const std::vector<std::vector<int64_t>> tokens_of = tokens_by_expert(args);
  Activations& a = activations_of_this_thread();
  a.prepare(x, w.type, context);
  std::vector<const void*> xs;
  std::vector<float*> ys;
  for (int64_t e = 0; e < experts; ++e) {
    const std::vector<int64_t>& tokens = tokens_of[static_cast<size_t>(e)];
    if (tokens.empty()) continue;
    xs.clear();
    ys.clear();
    for (int64_t t : tokens) {
      xs.push_back(a.rows[static_cast<size_t>(t)]);
      ys.push_back(reinterpret_cast<float*>(args.out.row(t)));
    }
    const RowProduct p{w.row(0, e), w.nb[1], w.ne[0], xs.data(), ys.data(), static_cast<int>(tokens.size())};
    run_chunks(context, kernel, p, w.ne[1], [](int64_t, int64_t) {});
  }
  return true;
}

}  // namespace

bool fast_matmul(const NodeArgs& args, const FastContext& context) {
  if (args.node.op == Op::MulMat) return mul_mat(args, context);
  return mul_mat_id(args, context);
}

}  // namespace braid::cpu
