// Graphs for planner tests and the planner benchmark: seeded random DAGs built with the op
// builders on small f32 shapes, and LLaMA / MoE shaped graphs (shapes only, no weights).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "braid/graph.h"
#include "braid/ops.h"

namespace braid::test {

// A random DAG of about `steps` builder calls: fan-out (operands drawn from everything
// built so far), fan-in (binary ops), views (row windows, halves of a wide matmul,
// reshape round trips), element-wise chains, and, unless `with_state` is false, KV-cache
// writes and attention over a state tensor, sometimes reading the raw cache while another
// node overwrites it. Outputs: the last value and a few random ones, views included.
inline Graph random_dag(uint32_t seed, int steps, bool with_state = true) {
  std::mt19937 rng(seed);
  Graph g;
  constexpr int64_t d = 8, n = 2, hd = 4, kv_heads = 2, ctx = 4;
  std::vector<TensorId> pool{g.input("x", DType::F32, {d, n, 1, 1})};
  const TensorId norm_w = g.weight("norm_w", DType::F32, {d, 1, 1, 1});
  const TensorId w_square = g.weight("w_square", DType::F32, {d, d, 1, 1});
  const TensorId w_wide = g.weight("w_wide", DType::F32, {d, 2 * d, 1, 1});
  const TensorId positions = g.input("positions", DType::I32, {n, 1, 1, 1});
  const TensorId cache_k = g.state("cache_k", DType::F32, {hd, kv_heads, ctx, 1});
  const TensorId cache_v = g.state("cache_v", DType::F32, {hd, kv_heads, ctx, 1});
  TensorId k_now = cache_k, v_now = cache_v;

  auto pick = [&]() {
    const size_t size = pool.size();
    if (rng() % 2 == 0) return pool[size - 1 - rng() % std::min<size_t>(size, 3)];  // depth
    return pool[rng() % size];                                                       // fan-out
  };
  auto pick_contiguous = [&]() {
    for (int tries = 0; tries < 8; ++tries) {
      const TensorId t = pick();
      if (g[t].is_contiguous()) return t;
    }
    return ops::scale(g, pick(), 1.5f);  // a fresh contiguous copy
  };

  for (int i = 0; i < steps; ++i) {
    switch (rng() % (with_state ? 12 : 11)) {
      case 0: pool.push_back(ops::add(g, pick(), pick())); break;
      case 1: pool.push_back(ops::mul(g, pick(), pick())); break;
      case 2: pool.push_back(ops::scale(g, pick(), 0.5f + static_cast<float>(rng() % 4))); break;
      case 3: pool.push_back(ops::silu(g, pick())); break;
      case 4: pool.push_back(ops::swiglu(g, pick(), pick())); break;
      case 5: pool.push_back(ops::rms_norm(g, pick(), rng() % 2 ? norm_w : kNoTensor, 1e-5f)); break;
      case 6: pool.push_back(ops::mul_mat(g, w_square, pick())); break;
      case 7: {  // one matmul, two strided halves consumed separately
        const TensorId wide = ops::mul_mat(g, w_wide, pick());
        const std::array<size_t, kMaxDims> nb{4, 2 * d * 4, 2 * d * 4 * n, 2 * d * 4 * n};
        pool.push_back(ops::view(g, wide, {d, n, 1, 1}, nb, 0));
        pool.push_back(ops::view(g, wide, {d, n, 1, 1}, nb, d * 4));
        break;
      }
      case 8: {  // reshape there and back: a view of a view
        const TensorId r = ops::reshape(g, pick_contiguous(), {d / 2, 2, n, 1});
        pool.push_back(ops::reshape(g, r, {d, n, 1, 1}));
        break;
      }
      case 9: {  // one row broadcast over a whole tensor
        const TensorId r = ops::row(g, pick(), static_cast<int64_t>(rng() % n));
        pool.push_back(ops::add(g, pick(), r));
        break;
      }
      case 10: pool.push_back(ops::copy(g, pick(), DType::F32)); break;
      case 11: {  // KV write and attention; sometimes unchained writes or a raw-cache read
        const TensorId q = ops::reshape(g, pick_contiguous(), {hd, kv_heads, n, 1});
        const TensorId k = ops::reshape(g, pick_contiguous(), {hd, kv_heads, n, 1});
        const TensorId v = ops::reshape(g, pick_contiguous(), {hd, kv_heads, n, 1});
        k_now = ops::kv_write(g, rng() % 3 ? k_now : cache_k, k, positions);
        v_now = ops::kv_write(g, rng() % 3 ? v_now : cache_v, v, positions);
        const TensorId k_read = rng() % 4 ? k_now : cache_k;
        const TensorId a = ops::attention(g, q, k_read, v_now, positions, 0.5f);
        pool.push_back(ops::reshape(g, a, {d, n, 1, 1}));
        break;
      }
    }
  }
  g.mark_output(pool.back());
  for (int extra = static_cast<int>(rng() % 3); extra > 0; --extra) {
    const TensorId t = pool[rng() % pool.size()];
    if (!g[t].is_leaf()) g.mark_output(t);
  }
  g.finalize();
  return g;
}

// LLaMA-shaped decode graph (one token, `context` cache slots), shapes only.
struct LlamaShape {
  int layers = 32;
  int64_t d = 4096, ffn = 11008, heads = 32, vocab = 32000, context = 4096;
  DType weights = DType::F16;
};

inline Graph llama_decode_graph(const LlamaShape& s) {
  Graph g;
  const int64_t hd = s.d / s.heads;
  const TensorId tokens = g.input("tokens", DType::I32, {1, 1, 1, 1});
  const TensorId pos = g.input("positions", DType::I32, {1, 1, 1, 1});
  TensorId x = ops::get_rows(g, g.weight("token_embd", s.weights, {s.d, s.vocab, 1, 1}), tokens);
  for (int l = 0; l < s.layers; ++l) {
    auto w = [&](const char* name, int64_t k, int64_t m) {
      return g.weight("blk." + std::to_string(l) + "." + name, s.weights, {k, m, 1, 1});
    };
    auto norm_w = [&](const char* name) {
      return g.weight("blk." + std::to_string(l) + "." + name, DType::F32, {s.d, 1, 1, 1});
    };
    const TensorId h = ops::rms_norm(g, x, norm_w("attn_norm"), 1e-5f);
    const TensorId q = ops::mul_mat(g, w("attn_q", s.d, s.d), h);
    const TensorId k = ops::mul_mat(g, w("attn_k", s.d, s.d), h);
    const TensorId v = ops::mul_mat(g, w("attn_v", s.d, s.d), h);
    const TensorId qr = ops::rope(g, ops::reshape(g, q, {hd, s.heads, 1, 1}), pos, kRopeNormal, static_cast<int>(hd), 10000);
    const TensorId kr = ops::rope(g, ops::reshape(g, k, {hd, s.heads, 1, 1}), pos, kRopeNormal, static_cast<int>(hd), 10000);
    const TensorId k_cache = g.state("cache_k." + std::to_string(l), DType::F16, {hd, s.heads, s.context, 1});
    const TensorId v_cache = g.state("cache_v." + std::to_string(l), DType::F16, {hd, s.heads, s.context, 1});
    const TensorId kc = ops::kv_write(g, k_cache, kr, pos);
    const TensorId vc = ops::kv_write(g, v_cache, ops::reshape(g, v, {hd, s.heads, 1, 1}), pos);
    const TensorId a = ops::attention(g, qr, kc, vc, pos, 1.0f / std::sqrt(static_cast<float>(hd)));
    x = ops::add(g, x, ops::mul_mat(g, w("attn_output", s.d, s.d), ops::reshape(g, a, {s.d, 1, 1, 1})));
    const TensorId h2 = ops::rms_norm(g, x, norm_w("ffn_norm"), 1e-5f);
    const TensorId gate = ops::mul_mat(g, w("ffn_gate", s.d, s.ffn), h2);
    const TensorId up = ops::mul_mat(g, w("ffn_up", s.d, s.ffn), h2);
    x = ops::add(g, x, ops::mul_mat(g, w("ffn_down", s.ffn, s.d), ops::swiglu(g, gate, up)));
  }
  const TensorId out = ops::rms_norm(g, x, g.weight("output_norm", DType::F32, {s.d, 1, 1, 1}), 1e-5f);
  g.mark_output(ops::mul_mat(g, g.weight("output", s.weights, {s.d, s.vocab, 1, 1}), out));
  g.finalize();
  return g;
}

// One Mixtral-style MoE block (router, top-2, two expert slots), shapes only.
inline Graph moe_block_graph(int64_t d = 4096, int64_t ffn = 14336, int64_t experts = 8, int used = 2) {
  Graph g;
  const TensorId x = g.input("x", DType::F32, {d, 1, 1, 1});
  const TensorId h = ops::rms_norm(g, x, g.weight("ffn_norm", DType::F32, {d, 1, 1, 1}), 1e-5f);
  const TensorId logits = ops::mul_mat(g, g.weight("ffn_gate_inp", DType::F32, {d, experts, 1, 1}), h);
  const TensorId ids = ops::top_k(g, logits, used);
  const TensorId weights = ops::moe_weights(g, logits, ids);
  const TensorId gate_exps = g.weight("ffn_gate_exps", DType::F16, {d, ffn, experts, 1});
  const TensorId up_exps = g.weight("ffn_up_exps", DType::F16, {d, ffn, experts, 1});
  const TensorId down_exps = g.weight("ffn_down_exps", DType::F16, {ffn, d, experts, 1});
  std::vector<TensorId> slots;
  for (int s = 0; s < used; ++s) {
    const TensorId gate = ops::mul_mat_id(g, gate_exps, h, ids, s);
    const TensorId up = ops::mul_mat_id(g, up_exps, h, ids, s);
    slots.push_back(ops::mul_mat_id(g, down_exps, ops::swiglu(g, gate, up), ids, s));
  }
  g.mark_output(ops::add(g, x, ops::moe_combine(g, weights, slots)));
  g.finalize();
  return g;
}

}  // namespace braid::test
