// Op builders: the one place where shapes and types are checked.
#include "braid/ops.h"

#include <fmt/format.h>

#include <algorithm>

namespace braid::ops {
namespace {

// Describes a tensor for error messages: "x [2048, 1] f32".
std::string describe(const Graph& g, TensorId id) {
  const Tensor& t = g[id];
  return fmt::format("{} {} {}", t.name, t.shape_string(), traits(t.type).name);
}

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw Error(fmt::format("{}: {}", op, what));
}

void require(bool ok, const char* op, const std::string& what) {
  if (!ok) fail(op, what);
}

void require_valid(const Graph& g, TensorId id, const char* op) {
  require(id >= 0 && id < g.tensor_count(), op, fmt::format("operand {} does not exist", id));
}

void require_type(const Graph& g, TensorId id, const char* op, std::initializer_list<DType> allowed) {
  require_valid(g, id, op);
  const DType type = g[id].type;
  require(std::find(allowed.begin(), allowed.end(), type) != allowed.end(), op,
          fmt::format("unsupported type for {}", describe(g, id)));
}

void require_rows_contiguous(const Graph& g, TensorId id, const char* op) {
  const Tensor& t = g[id];
  require(t.nb[0] == static_cast<size_t>(traits(t.type).block_bytes), op,
          fmt::format("dimension 0 of {} must be contiguous", describe(g, id)));
}

constexpr std::initializer_list<DType> kFloat = {DType::F32, DType::F16, DType::BF16};
constexpr std::initializer_list<DType> kWeights = {
    DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
    DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// An element-wise op on f32 activations: same shape out.
TensorId unary(Graph& g, Op op, TensorId a, OpParams params = {}) {
  require_type(g, a, op_name(op), {DType::F32});
  require_rows_contiguous(g, a, op_name(op));
  return g.add(op, DType::F32, g[a].ne, {a}, params);
}

// b repeats to fill a: each of b's dimensions divides a's.
TensorId broadcast_binary(Graph& g, Op op, TensorId a, TensorId b) {
  const char* name = op_name(op);
  require_type(g, a, name, {DType::F32});
  require_type(g, b, name, {DType::F32});
  require_rows_contiguous(g, a, name);
  require_rows_contiguous(g, b, name);
  for (int d = 0; d < kMaxDims; ++d) {
    require(g[b].ne[d] > 0 && g[a].ne[d] % g[b].ne[d] == 0, name,
            fmt::format("{} cannot be broadcast to {}", describe(g, b), describe(g, a)));
  }
  return g.add(op, DType::F32, g[a].ne, {a, b});
}

}  // namespace

TensorId reshape(Graph& g, TensorId a, Shape ne) {
  require_valid(g, a, "reshape");
  const Tensor& t = g[a];
  require(t.is_contiguous(), "reshape", fmt::format("{} is not contiguous", describe(g, a)));
  const int64_t count = ne[0] * ne[1] * ne[2] * ne[3];
  require(count == t.elements() && ne[0] % traits(t.type).block_elements == 0, "reshape",
          fmt::format("cannot reshape {} to {} elements", describe(g, a), count));
  return g.add_alias(Op::Reshape, a, ne, contiguous_strides(t.type, ne), 0, {a});
}

TensorId view(Graph& g, TensorId a, Shape ne, std::array<size_t, kMaxDims> nb, size_t offset) {
  require_valid(g, a, "view");
  const Tensor& t = g[a];
  require(nb[0] == t.nb[0], "view", "dimension 0 stride must equal the source's");
  Tensor probe;
  probe.type = t.type;
  probe.ne = ne;
  probe.nb = nb;
  require(offset + probe.bytes() <= t.bytes(), "view",
          fmt::format("{} bytes at offset {} exceed {} ({} bytes)", probe.bytes(), offset,
                      describe(g, a), t.bytes()));
  return g.add_alias(Op::View, a, ne, nb, offset, {a});
}

TensorId permute(Graph& g, TensorId a, std::array<int, kMaxDims> axes) {
  require_valid(g, a, "permute");
  std::array<bool, kMaxDims> seen{};
  for (int axis : axes) {
    require(axis >= 0 && axis < kMaxDims && !seen[static_cast<size_t>(axis)], "permute",
            "axes must be a permutation of 0..3");
    seen[static_cast<size_t>(axis)] = true;
  }
  const Tensor& t = g[a];
  require(!traits(t.type).quantized, "permute", fmt::format("cannot permute {}", describe(g, a)));
  Shape ne{};
  std::array<size_t, kMaxDims> nb{};
  for (int d = 0; d < kMaxDims; ++d) {
    ne[static_cast<size_t>(axes[static_cast<size_t>(d)])] = t.ne[static_cast<size_t>(d)];
    nb[static_cast<size_t>(axes[static_cast<size_t>(d)])] = t.nb[static_cast<size_t>(d)];
  }
  OpParams p;
  for (int d = 0; d < kMaxDims; ++d) p.i[static_cast<size_t>(d)] = axes[static_cast<size_t>(d)];
  return g.add_alias(Op::Permute, a, ne, nb, 0, {a}, p);
}

TensorId transpose(Graph& g, TensorId a) { return permute(g, a, {1, 0, 2, 3}); }

TensorId row(Graph& g, TensorId a, int64_t r) {
  require_valid(g, a, "row");
  const Tensor& t = g[a];
  require(t.dims() <= 2 && r >= 0 && r < t.ne[1], "row",
          fmt::format("row {} of {} does not exist", r, describe(g, a)));
  return view(g, a, {t.ne[0], 1, 1, 1}, t.nb, static_cast<size_t>(r) * t.nb[1]);
}

TensorId get_rows(Graph& g, TensorId table, TensorId ids) {
  require_type(g, table, "get_rows", kWeights);
  require_type(g, ids, "get_rows", {DType::I32});
  require(g[table].dims() <= 2 && g[ids].dims() == 1, "get_rows",
          fmt::format("table {} must be 2-D and ids {} 1-D", describe(g, table), describe(g, ids)));
  return g.add(Op::GetRows, DType::F32, {g[table].ne[0], g[ids].ne[0], 1, 1}, {table, ids});
}

TensorId add(Graph& g, TensorId a, TensorId b) { return broadcast_binary(g, Op::Add, a, b); }
TensorId mul(Graph& g, TensorId a, TensorId b) { return broadcast_binary(g, Op::Mul, a, b); }

TensorId scale(Graph& g, TensorId a, float factor) {
  OpParams p;
  p.f[0] = factor;
  return unary(g, Op::Scale, a, p);
}

TensorId rms_norm(Graph& g, TensorId x, TensorId weight, float eps) {
  require_type(g, x, "rms_norm", {DType::F32});
  require_rows_contiguous(g, x, "rms_norm");
  require(eps >= 0, "rms_norm", "eps must not be negative");
  OpParams p;
  p.f[0] = eps;
  std::vector<TensorId> src{x};
  if (weight != kNoTensor) {
    require_type(g, weight, "rms_norm", {DType::F32});
    require(g[weight].dims() == 1 && g[weight].ne[0] == g[x].ne[0], "rms_norm",
            fmt::format("weight {} does not match rows of {}", describe(g, weight), describe(g, x)));
    src.push_back(weight);
  }
  return g.add(Op::RmsNorm, DType::F32, g[x].ne, std::move(src), p);
}

namespace {

// The checks of mul_mat (and mul_mat_add, under its own name); returns the product's shape.
Graph::Shape mul_mat_shape(const Graph& g, TensorId w, TensorId x, const char* op) {
  require_type(g, w, op, kWeights);
  require_type(g, x, op, {DType::F32});
  require_rows_contiguous(g, w, op);
  require_rows_contiguous(g, x, op);
  require(g[w].dims() <= 2 && g[x].dims() <= 2, op,
          fmt::format("w {} and x {} must be 2-D", describe(g, w), describe(g, x)));
  require(g[w].ne[0] == g[x].ne[0], op,
          fmt::format("w {} and x {} disagree in dimension 0", describe(g, w), describe(g, x)));
  return {g[w].ne[1], g[x].ne[1], 1, 1};
}

}  // namespace

TensorId mul_mat(Graph& g, TensorId w, TensorId x) {
  return g.add(Op::MulMat, DType::F32, mul_mat_shape(g, w, x, "mul_mat"), {w, x});
}

TensorId mul_mat_add(Graph& g, TensorId w, TensorId x, TensorId plus) {
  const Graph::Shape shape = mul_mat_shape(g, w, x, "mul_mat_add");
  require_type(g, plus, "mul_mat_add", {DType::F32});
  require(g[plus].ne == shape && g[plus].is_contiguous(), "mul_mat_add",
          fmt::format("plus {} must be contiguous, of the product's shape [{}, {}]", describe(g, plus), shape[0],
                      shape[1]));
  return g.add(Op::MulMat, DType::F32, shape, {w, x, plus});
}

TensorId mul_mat_id(Graph& g, TensorId w, TensorId x, TensorId ids, int slot) {
  require_type(g, w, "mul_mat_id", kWeights);
  require_type(g, x, "mul_mat_id", {DType::F32});
  require_type(g, ids, "mul_mat_id", {DType::I32});
  require_rows_contiguous(g, x, "mul_mat_id");
  require(g[w].dims() <= 3 && g[x].dims() <= 2 && g[ids].dims() <= 2, "mul_mat_id",
          fmt::format("w {} must be 3-D, x {} and ids {} 2-D", describe(g, w), describe(g, x),
                      describe(g, ids)));
  require(g[w].is_contiguous(), "mul_mat_id", "expert weights must be contiguous");
  require(g[w].ne[0] == g[x].ne[0], "mul_mat_id",
          fmt::format("w {} and x {} disagree in dimension 0", describe(g, w), describe(g, x)));
  require(g[ids].ne[1] == g[x].ne[1], "mul_mat_id",
          fmt::format("ids {} and x {} disagree in token count", describe(g, ids), describe(g, x)));
  require(slot >= 0 && slot < g[ids].ne[0], "mul_mat_id",
          fmt::format("slot {} outside ids {}", slot, describe(g, ids)));
  OpParams p;
  p.i[0] = slot;
  return g.add(Op::MulMatId, DType::F32, {g[w].ne[1], g[x].ne[1], 1, 1}, {w, x, ids}, p);
}

namespace {

// Checks rope's operands and parameters under the name `op`; the node's OpParams.
OpParams rope_params(const Graph& g, TensorId x, TensorId positions, int mode, int dims, float base, float freq_scale,
                     TensorId freq_factors, const char* op) {
  require_type(g, x, op, {DType::F32});
  require_type(g, positions, op, {DType::I32});
  require_rows_contiguous(g, x, op);
  require(mode == kRopeNormal || mode == kRopeNeox, op, fmt::format("unknown mode {}", mode));
  require(dims > 0 && dims % 2 == 0 && dims <= g[x].ne[0], op,
          fmt::format("cannot rotate {} dimensions of {}", dims, describe(g, x)));
  require(g[x].dims() <= 3 && g[positions].dims() == 1 && g[positions].ne[0] == g[x].ne[2], op,
          fmt::format("x {} must be [head_dim, heads, n] and positions {} [n]", describe(g, x),
                      describe(g, positions)));
  require(base > 0, op, "frequency base must be positive");
  if (freq_factors != kNoTensor) {
    require_type(g, freq_factors, op, {DType::F32});
    require(g[freq_factors].is_contiguous() && g[freq_factors].dims() == 1 && g[freq_factors].ne[0] == dims / 2, op,
            fmt::format("frequency factors {} must be a contiguous [{}] (one per rotated pair)",
                        describe(g, freq_factors), dims / 2));
  }
  OpParams p;
  p.i[0] = mode;
  p.i[1] = dims;
  p.f[0] = base;
  p.f[1] = freq_scale;
  return p;
}

// kv_write's checks under the name `op`, then the node (params: rope's, or none).
TensorId kv_write_node(Graph& g, TensorId cache, TensorId x, TensorId positions, const OpParams& params,
                       TensorId freq_factors, const char* op) {
  require_type(g, cache, op, kFloat);
  require_type(g, x, op, {DType::F32});
  require_type(g, positions, op, {DType::I32});
  require_rows_contiguous(g, x, op);
  const Tensor& c = g[cache];
  require(c.is_contiguous() && c.dims() <= 3, op,
          fmt::format("cache {} must be a contiguous [head_dim, kv_heads, ctx]", describe(g, cache)));
  require(g[x].ne[0] == c.ne[0] && g[x].ne[1] == c.ne[1] && g[x].ne[3] == 1, op,
          fmt::format("x {} does not fit cache {}", describe(g, x), describe(g, cache)));
  require(g[positions].dims() == 1 && g[positions].ne[0] == g[x].ne[2], op,
          fmt::format("positions {} must have one entry per token of x {}", describe(g, positions),
                      describe(g, x)));
  require(g[x].ne[2] <= c.ne[2], op, fmt::format("{} tokens do not fit a cache of {}", g[x].ne[2], c.ne[2]));
  std::vector<TensorId> src{cache, x, positions};
  if (freq_factors != kNoTensor) src.push_back(freq_factors);
  return g.add_alias(Op::KvWrite, cache, c.ne, c.nb, 0, std::move(src), params);
}

}  // namespace

TensorId rope(Graph& g, TensorId x, TensorId positions, int mode, int dims, float base, float freq_scale,
              TensorId freq_factors) {
  const OpParams p = rope_params(g, x, positions, mode, dims, base, freq_scale, freq_factors, "rope");
  std::vector<TensorId> src{x, positions};
  if (freq_factors != kNoTensor) src.push_back(freq_factors);
  return g.add(Op::Rope, DType::F32, g[x].ne, std::move(src), p);
}

TensorId kv_write(Graph& g, TensorId cache, TensorId x, TensorId positions) {
  return kv_write_node(g, cache, x, positions, OpParams{}, kNoTensor, "kv_write");
}

TensorId rope_kv_write(Graph& g, TensorId cache, TensorId x, TensorId positions, int mode, int dims, float base,
                       float freq_scale, TensorId freq_factors) {
  const OpParams p = rope_params(g, x, positions, mode, dims, base, freq_scale, freq_factors, "rope_kv_write");
  return kv_write_node(g, cache, x, positions, p, freq_factors, "rope_kv_write");
}

TensorId attention(Graph& g, TensorId q, TensorId k_cache, TensorId v_cache, TensorId positions,
                   float scale, int region) {
  require_type(g, q, "attention", {DType::F32});
  require_type(g, k_cache, "attention", kFloat);
  require_type(g, v_cache, "attention", kFloat);
  require_type(g, positions, "attention", {DType::I32});
  require_rows_contiguous(g, q, "attention");
  const Tensor& k = g[k_cache];
  const Tensor& v = g[v_cache];
  require(k.ne == v.ne && k.type == v.type && k.is_contiguous() && v.is_contiguous(), "attention",
          fmt::format("k {} and v {} must be contiguous caches of one shape and type",
                      describe(g, k_cache), describe(g, v_cache)));
  require(g[q].ne[0] == k.ne[0] && g[q].ne[1] % k.ne[1] == 0 && g[q].ne[3] == 1, "attention",
          fmt::format("q {} heads do not fit kv heads of {}", describe(g, q), describe(g, k_cache)));
  require(g[positions].dims() == 1 && g[positions].ne[0] == g[q].ne[2], "attention",
          fmt::format("positions {} must have one entry per query of {}", describe(g, positions),
                      describe(g, q)));
  require(region >= 0 && (region == 0 || k.ne[2] % region == 0), "attention",
          fmt::format("region {} must divide the {} rows of cache {}", region, k.ne[2], describe(g, k_cache)));
  OpParams p;
  p.f[0] = scale;
  p.i[0] = region;
  return g.add(Op::Attention, DType::F32, g[q].ne, {q, k_cache, v_cache, positions}, p);
}

TensorId silu(Graph& g, TensorId a) { return unary(g, Op::Silu, a); }

TensorId swiglu(Graph& g, TensorId a, TensorId b) {
  require_type(g, a, "swiglu", {DType::F32});
  require_type(g, b, "swiglu", {DType::F32});
  require_rows_contiguous(g, a, "swiglu");
  require_rows_contiguous(g, b, "swiglu");
  require(g[a].ne == g[b].ne, "swiglu",
          fmt::format("{} and {} differ in shape", describe(g, a), describe(g, b)));
  return g.add(Op::Swiglu, DType::F32, g[a].ne, {a, b});
}

TensorId softmax(Graph& g, TensorId a, float scale) {
  OpParams p;
  p.f[0] = scale;
  return unary(g, Op::Softmax, a, p);
}

TensorId copy(Graph& g, TensorId a, DType type) {
  require_valid(g, a, "copy");
  require(!traits(type).quantized && type != DType::I32 && !traits(g[a].type).quantized &&
              g[a].type != DType::I32,
          "copy", fmt::format("cannot copy {} to {}", describe(g, a), traits(type).name));
  return g.add(Op::Copy, type, g[a].ne, {a});
}

TensorId top_k(Graph& g, TensorId logits, int k) {
  require_type(g, logits, "top_k", {DType::F32});
  require_rows_contiguous(g, logits, "top_k");
  require(g[logits].dims() <= 2 && k > 0 && k <= g[logits].ne[0], "top_k",
          fmt::format("cannot take {} of {}", k, describe(g, logits)));
  OpParams p;
  p.i[0] = k;
  return g.add(Op::TopK, DType::I32, {k, g[logits].ne[1], 1, 1}, {logits}, p);
}

TensorId top_logits(Graph& g, TensorId logits, int k, int64_t columns) {
  require_type(g, logits, "top_logits", {DType::F32});
  require_rows_contiguous(g, logits, "top_logits");
  require(g[logits].dims() <= 2 && k > 0 && k <= columns && columns <= g[logits].ne[0] && columns <= (1 << 24),
          "top_logits", fmt::format("cannot take {} of the first {} of {}", k, columns, describe(g, logits)));
  OpParams p;
  p.i[0] = k;
  p.i[1] = static_cast<int32_t>(columns);
  return g.add(Op::TopLogits, DType::F32, {k, 2, g[logits].ne[1], 1}, {logits}, p);
}

TensorId moe_weights(Graph& g, TensorId logits, TensorId ids) {
  require_type(g, logits, "moe_weights", {DType::F32});
  require_type(g, ids, "moe_weights", {DType::I32});
  require_rows_contiguous(g, logits, "moe_weights");
  require(g[logits].dims() <= 2 && g[ids].dims() <= 2 && g[ids].ne[1] == g[logits].ne[1], "moe_weights",
          fmt::format("ids {} do not match logits {}", describe(g, ids), describe(g, logits)));
  return g.add(Op::MoeWeights, DType::F32, g[ids].ne, {logits, ids});
}

TensorId moe_combine(Graph& g, TensorId weights, const std::vector<TensorId>& expert_outputs) {
  require_type(g, weights, "moe_combine", {DType::F32});
  require(!expert_outputs.empty() && static_cast<int64_t>(expert_outputs.size()) == g[weights].ne[0],
          "moe_combine",
          fmt::format("{} expert outputs for weights {}", expert_outputs.size(), describe(g, weights)));
  std::vector<TensorId> src{weights};
  for (TensorId y : expert_outputs) {
    require_type(g, y, "moe_combine", {DType::F32});
    require_rows_contiguous(g, y, "moe_combine");
    require(g[y].ne == g[expert_outputs[0]].ne && g[y].dims() <= 2 && g[y].ne[1] == g[weights].ne[1],
            "moe_combine",
            fmt::format("expert output {} does not match weights {}", describe(g, y), describe(g, weights)));
    src.push_back(y);
  }
  return g.add(Op::MoeCombine, DType::F32, g[expert_outputs[0]].ne, std::move(src));
}

TensorId all_reduce(Graph& g, TensorId x, int ranks) {
  require_type(g, x, "all_reduce", {DType::F32});
  require(g[x].is_contiguous(), "all_reduce", fmt::format("{} must be contiguous", describe(g, x)));
  require(ranks >= 1, "all_reduce", fmt::format("a group of {} ranks", ranks));
  OpParams p;
  p.i[0] = ranks;
  return g.add(Op::AllReduce, DType::F32, g[x].ne, {x}, p);
}

}  // namespace braid::ops
