#include "braid/graph.h"

#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

namespace braid {

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "braid: internal error: %s:%d: assertion failed: %s\n", file, line, expr);
  std::abort();
}

const char* op_name(Op op) {
  switch (op) {
    case Op::None: return "leaf";
    case Op::Reshape: return "reshape";
    case Op::View: return "view";
    case Op::Permute: return "permute";
    case Op::GetRows: return "get_rows";
    case Op::Add: return "add";
    case Op::Mul: return "mul";
    case Op::Scale: return "scale";
    case Op::RmsNorm: return "rms_norm";
    case Op::MulMat: return "mul_mat";
    case Op::MulMatId: return "mul_mat_id";
    case Op::Rope: return "rope";
    case Op::KvWrite: return "kv_write";
    case Op::Attention: return "attention";
    case Op::Silu: return "silu";
    case Op::Swiglu: return "swiglu";
    case Op::Softmax: return "softmax";
    case Op::Copy: return "copy";
    case Op::TopK: return "top_k";
    case Op::TopLogits: return "top_logits";
    case Op::MoeWeights: return "moe_weights";
    case Op::MoeCombine: return "moe_combine";
    case Op::AllReduce: return "all_reduce";
  }
  return "?";
}

std::array<size_t, kMaxDims> contiguous_strides(DType type, const std::array<int64_t, kMaxDims>& ne) {
  std::array<size_t, kMaxDims> nb{};
  nb[0] = static_cast<size_t>(traits(type).block_bytes);
  nb[1] = row_bytes(type, ne[0]);
  for (int d = 2; d < kMaxDims; ++d) nb[d] = nb[d - 1] * static_cast<size_t>(ne[d - 1]);
  return nb;
}

size_t Tensor::bytes() const {
  if (elements() == 0) return 0;
  size_t last = row_bytes(type, ne[0]);
  for (int d = 1; d < kMaxDims; ++d) last += static_cast<size_t>(ne[d] - 1) * nb[d];
  return last;
}

// Strides of dimensions with one element never matter, so a row view is contiguous.
bool Tensor::is_contiguous() const {
  const auto expected = contiguous_strides(type, ne);
  if (nb[0] != expected[0]) return false;
  for (int d = 1; d < kMaxDims; ++d) {
    if (ne[d] > 1 && nb[d] != expected[d]) return false;
  }
  return true;
}

int Tensor::dims() const {
  int d = kMaxDims;
  while (d > 1 && ne[d - 1] == 1) --d;
  return d;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < dims(); ++d) s += fmt::format("{}{}", d ? ", " : "", ne[d]);
  return s + "]";
}

TensorId Graph::push(Tensor t) {
  BRAID_ASSERT(!finalized_);
  for (int64_t n : t.ne) {
    if (n < 0) throw Error(fmt::format("{}: negative dimension in {}", t.name, t.shape_string()));
  }
  t.id = static_cast<TensorId>(tensors_.size());
  if (t.name.empty()) t.name = fmt::format("{}_{}", op_name(t.op), t.id);
  tensors_.push_back(std::move(t));
  return tensors_.back().id;
}

static Tensor make_leaf(std::string name, DType type, Graph::Shape ne, uint8_t flags) {
  Tensor t;
  t.name = std::move(name);
  t.type = type;
  t.ne = ne;
  if (ne[0] % traits(type).block_elements != 0) {
    throw Error(fmt::format("{}: dimension 0 ({}) is not a multiple of the {} block size {}", t.name,
                            ne[0], traits(type).name, traits(type).block_elements));
  }
  t.nb = contiguous_strides(type, ne);
  t.flags = flags;
  return t;
}

TensorId Graph::weight(std::string name, DType type, Shape ne, const void* host_data) {
  Tensor t = make_leaf(std::move(name), type, ne, kWeight);
  t.host_data = host_data;
  return push(std::move(t));
}

TensorId Graph::input(std::string name, DType type, Shape ne) {
  return push(make_leaf(std::move(name), type, ne, kInput));
}

TensorId Graph::state(std::string name, DType type, Shape ne) {
  return push(make_leaf(std::move(name), type, ne, kState));
}

TensorId Graph::add(Op op, DType type, Shape ne, std::vector<TensorId> src, OpParams params,
                    std::string name) {
  BRAID_ASSERT(is_compute_op(op) && op != Op::KvWrite);
  for (TensorId s : src) BRAID_ASSERT(s >= 0 && s < tensor_count());
  Tensor t;
  t.name = std::move(name);
  t.op = op;
  t.type = type;
  t.ne = ne;
  t.nb = contiguous_strides(type, ne);
  t.src = std::move(src);
  t.params = params;
  return push(std::move(t));
}

TensorId Graph::add_alias(Op op, TensorId source, Shape ne, std::array<size_t, kMaxDims> nb,
                          size_t offset, std::vector<TensorId> src, OpParams params,
                          std::string name) {
  BRAID_ASSERT(is_view_op(op) || op == Op::KvWrite);
  BRAID_ASSERT(source >= 0 && source < tensor_count());
  for (TensorId s : src) BRAID_ASSERT(s >= 0 && s < tensor_count());
  Tensor t;
  t.name = std::move(name);
  t.op = op;
  t.type = tensors_[static_cast<size_t>(source)].type;
  t.ne = ne;
  t.nb = nb;
  t.src = std::move(src);
  t.params = params;
  t.view_source = source;
  t.view_offset = offset;
  return push(std::move(t));
}

void Graph::mark_output(TensorId id) {
  BRAID_ASSERT(!finalized_);
  Tensor& t = (*this)[id];
  if (!t.has(kOutput)) {
    t.flags |= kOutput;
    outputs_.push_back(id);
  }
}

void Graph::finalize() {
  BRAID_ASSERT(!finalized_);
  // Iterative post-order DFS from the outputs; sources (and view sources) come first.
  std::vector<uint8_t> state(tensors_.size(), 0);  // 0 new, 1 on stack, 2 done
  std::vector<std::pair<TensorId, size_t>> stack;
  for (TensorId out : outputs_) {
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      const Tensor& t = tensors_[static_cast<size_t>(id)];
      if (next == 0 && state[static_cast<size_t>(id)] != 0) {
        stack.pop_back();
        continue;
      }
      state[static_cast<size_t>(id)] = 1;
      const size_t deps = t.src.size() + (t.view_source != kNoTensor ? 1 : 0);
      if (next < deps) {
        const TensorId dep = next < t.src.size() ? t.src[next] : t.view_source;
        ++next;
        BRAID_ASSERT(state[static_cast<size_t>(dep)] != 1);  // ids only point backwards: no cycles
        if (state[static_cast<size_t>(dep)] == 0) stack.emplace_back(dep, 0);
        continue;
      }
      state[static_cast<size_t>(id)] = 2;
      if (!t.is_leaf()) order_.push_back(id);
      stack.pop_back();
    }
  }
  finalized_ = true;
}

std::vector<TensorId> Graph::compute_nodes() const {
  std::vector<TensorId> nodes;
  for (TensorId id : order_) {
    if (is_compute_op((*this)[id].op)) nodes.push_back(id);
  }
  return nodes;
}

TensorId Graph::storage_root(TensorId id) const {
  while ((*this)[id].view_source != kNoTensor) id = (*this)[id].view_source;
  return id;
}

TensorId Graph::producer(TensorId id) const {
  while (is_view_op((*this)[id].op)) id = (*this)[id].view_source;
  return is_compute_op((*this)[id].op) ? id : kNoTensor;
}

TensorId Graph::find(const std::string& name) const {
  for (const Tensor& t : tensors_) {
    if (t.name == name) return t.id;
  }
  return kNoTensor;
}

}  // namespace braid
