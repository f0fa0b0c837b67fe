// The graph IR: tensors, ops, and the graph that holds them.
//
// A Graph owns its tensors; they refer to each other by TensorId (an index), so a graph
// is plain data that can be copied, printed and compared. Leaves are weights (constant,
// host bytes attached), inputs (set before each run: token ids, positions) and state
// (persistent across runs, zero at start: the KV cache). Every other tensor is an op
// result. View ops (reshape, view, permute, transpose) compute nothing and alias their
// source's memory; KvWrite computes, but writes into its state source and aliases it.
//
// Dimension 0 is innermost (ggml's convention): a matrix of M rows of K elements has
// ne = {K, M}. Op builders (ops.h) check shapes when a node is built.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "braid/types.h"

namespace braid {

// Every error that braid reports to its caller: bad input, impossible shapes, device
// failures. Programming errors (broken invariants) abort through BRAID_ASSERT instead.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A graph that an optional way of running cannot run (the persistent executor without a
// kernel for one of its ops or weight types), said before anything was allocated: a caller
// with another way may carry on without this one.
class Unsupported : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);
#define BRAID_ASSERT(expr) ((expr) ? (void)0 : ::braid::assert_fail(#expr, __FILE__, __LINE__))

using TensorId = int32_t;
inline constexpr TensorId kNoTensor = -1;
inline constexpr int kMaxDims = 4;

enum class Op : uint8_t {
  None,  // leaf
  // Views: no computation, alias the source.
  Reshape,
  View,
  Permute,
  // Compute.
  GetRows,     // (table [d, rows], ids I32 [n]) -> f32 [d, n]
  Add,         // (a, b) -> a + b, b broadcast by repetition
  Mul,         // (a, b) -> a * b, b broadcast by repetition
  Scale,       // (a) -> a * f[0]
  RmsNorm,     // (x [d, ...], weight [d] optional) -> x / rms(x) * weight; f[0] = eps
  MulMat,      // (w [k, m], x [k, n]) -> f32 [m, n]
  MulMatId,    // (w [k, m, experts], x [k, n], ids I32 [used, n]) -> f32 [m, n]; i[0] = slot
  Rope,        // (x [head_dim, heads, n], positions I32 [n], freq factors f32 [dims/2] optional) -> rotated; i[0] = mode, i[1] = dims rotated, f[0] = base, f[1] = freq scale
  KvWrite,     // (cache [head_dim, kv_heads, ctx], x [head_dim, kv_heads, n], positions [n], freq factors optional) -> cache with x[:,:,i] at slot positions[i]; rotated first when i[1] > 0 (Rope's params)
  Attention,   // (q [hd, heads, n], k cache, v cache, positions [n]) -> f32 [hd, heads, n]; causal; f[0] = scale
  Silu,        // (a) -> a * sigmoid(a)
  Swiglu,      // (a, b) -> silu(a) * b
  Softmax,     // (a) -> softmax of each row of a * f[0]
  Copy,        // (a) -> contiguous copy, converted to the node's type
  TopK,        // (logits [experts, n]) -> I32 [k, n], indices of the k largest, descending; i[0] = k
  TopLogits,   // (logits [vocab, n]) -> f32 [k, 2, n]: the k largest of each row's first i[1], descending,
               // then their indices; i[0] = k
  MoeWeights,  // (logits [experts, n], ids [k, n]) -> f32 [k, n], softmax over the selected logits
  MoeCombine,  // (weights [k, n], y_0 .. y_{k-1} [d, n]) -> sum_s weights[s] * y_s
  AllReduce,   // (x f32) -> sum of x over the i[0] ranks of a tensor-parallel group, same shape
};
inline constexpr int kOpCount = static_cast<int>(Op::AllReduce) + 1;
const char* op_name(Op op);
inline bool is_view_op(Op op) { return op == Op::Reshape || op == Op::View || op == Op::Permute; }
inline bool is_compute_op(Op op) { return op != Op::None && !is_view_op(op); }

// Rope modes, as llama.cpp numbers them: 0 rotates adjacent pairs (LLaMA GGUF files),
// 2 (NeoX) rotates element i with element i + dims/2.
inline constexpr int kRopeNormal = 0;
inline constexpr int kRopeNeox = 2;

enum TensorFlag : uint8_t {
  kWeight = 1 << 0,  // constant, data from the host
  kInput = 1 << 1,   // set before each run
  kOutput = 1 << 2,  // read after a run; its memory is never reused within the run
  kState = 1 << 3,   // persistent across runs (KV cache), zero-initialized
};

struct OpParams {
  std::array<int32_t, 4> i{};
  std::array<float, 4> f{};
  bool operator==(const OpParams&) const = default;
};

struct Tensor {
  TensorId id = kNoTensor;
  std::string name;
  DType type = DType::F32;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // elements per dimension
  std::array<size_t, kMaxDims> nb{};             // byte strides; nb[0] = block bytes
  Op op = Op::None;
  std::vector<TensorId> src;
  OpParams params;
  uint8_t flags = 0;
  // Views and KvWrite alias the memory of view_source, starting view_offset bytes in.
  TensorId view_source = kNoTensor;
  size_t view_offset = 0;
  // Weights: the bytes in host memory (owned by whoever built the graph, e.g. a Model).
  // May be null for graphs that are only planned or printed.
  const void* host_data = nullptr;

  bool has(TensorFlag flag) const { return (flags & flag) != 0; }
  bool is_leaf() const { return op == Op::None; }
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  // Bytes spanned by the tensor (from its first to one past its last byte).
  size_t bytes() const;
  bool is_contiguous() const;
  int dims() const;  // number of dimensions, ignoring trailing 1s (at least 1)
  std::string shape_string() const;  // "[4096, 32, 1]"
};

// Strides of a contiguous tensor of this type and shape.
std::array<size_t, kMaxDims> contiguous_strides(DType type, const std::array<int64_t, kMaxDims>& ne);

class Graph {
 public:
  using Shape = std::array<int64_t, kMaxDims>;

  TensorId weight(std::string name, DType type, Shape ne, const void* host_data = nullptr);
  TensorId input(std::string name, DType type, Shape ne);
  TensorId state(std::string name, DType type, Shape ne);
  // Low level: adds an op result. Op builders in ops.h check shapes and call this.
  TensorId add(Op op, DType type, Shape ne, std::vector<TensorId> src, OpParams params = {},
               std::string name = {});
  // Low level: adds a view of `source` (op must be a view op, or KvWrite).
  TensorId add_alias(Op op, TensorId source, Shape ne, std::array<size_t, kMaxDims> nb,
                     size_t offset, std::vector<TensorId> src, OpParams params = {},
                     std::string name = {});

  void mark_output(TensorId id);
  // Computes the topological order of everything reachable from the outputs. Call after
  // the last mark_output; the graph must not change afterwards.
  void finalize();

  Tensor& operator[](TensorId id) { return tensors_.at(static_cast<size_t>(id)); }
  const Tensor& operator[](TensorId id) const { return tensors_.at(static_cast<size_t>(id)); }
  int tensor_count() const { return static_cast<int>(tensors_.size()); }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const std::vector<TensorId>& outputs() const { return outputs_; }
  // Non-leaf tensors reachable from the outputs, sources before users (after finalize).
  const std::vector<TensorId>& order() const { return order_; }
  // The compute nodes of order(), in the same order: what a plan schedules.
  std::vector<TensorId> compute_nodes() const;
  // The tensor that owns the memory `id` lives in (follows view_source to the end).
  TensorId storage_root(TensorId id) const;
  // The compute node whose run makes `id` ready, looking through views; kNoTensor for
  // leaves and views of leaves.
  TensorId producer(TensorId id) const;
  TensorId find(const std::string& name) const;  // kNoTensor when absent
  bool finalized() const { return finalized_; }

 private:
  TensorId push(Tensor t);
  std::vector<Tensor> tensors_;
  std::vector<TensorId> outputs_;
  std::vector<TensorId> order_;
  bool finalized_ = false;
};

// Human-readable listing (one line per node) and Graphviz DOT.
std::string to_text(const Graph& graph);
std::string to_dot(const Graph& graph);

}  // namespace braid
