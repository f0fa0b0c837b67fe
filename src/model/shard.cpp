// shard_model: one rank's share of a model for tensor parallelism (Megatron's split).
//
// A layer's attention is independent per head and its feed-forward per column of ff, so
// rank r can compute its heads and its ff columns alone; only the two products that read
// them back (attn_output, ffn_down) need every rank's part, and their partial results add
// up (a sum over the input dimension split into pieces). The graph adds them with an
// all_reduce. Splitting the output rows of a weight takes whole rows, which are whole
// quantization blocks for every type; splitting its input columns cuts every row, which
// only works where the cut falls between blocks.
#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <optional>

#include "braid/model.h"
#include "model/fusion.h"

namespace braid {
namespace {

// How a tensor is split: along dimension `dim` (0: input columns, 1: output rows), whose
// full size is `size`.
struct Split {
  int dim = 0;
  int64_t size = 0;
};

// "blk.3.attn_q.weight" -> "attn_q.weight"; empty for tensors outside the layers.
std::string layer_part(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return {};
  const size_t dot = name.find('.', 4);
  return dot == std::string::npos ? std::string{} : name.substr(dot + 1);
}

// The split of a tensor, or none when every rank keeps all of it.
std::optional<Split> split_of(const std::string& name, const ModelConfig& c) {
  const std::string part = layer_part(name);
  if (part == "attn_q.weight") return Split{1, c.q_dim()};
  if (part == "attn_k.weight" || part == "attn_v.weight") return Split{1, c.kv_dim()};
  if (part == "attn_q.bias") return Split{0, c.q_dim()};
  if (part == "attn_k.bias" || part == "attn_v.bias") return Split{0, c.kv_dim()};
  if (part == "attn_output.weight") return Split{0, c.q_dim()};
  if (part == "ffn_gate.weight" || part == "ffn_up.weight") return Split{1, c.n_ff};
  if (part == "ffn_gate_exps.weight" || part == "ffn_up_exps.weight") return Split{1, c.n_ff};
  if (part == "ffn_down.weight" || part == "ffn_down_exps.weight") return Split{0, c.n_ff};
  for (const FusedGroup& group : {kFusedQkv, kFusedGateUp, kFusedGateUpExperts}) {
    if (part == group.fused + ".weight") {
      throw Error(fmt::format("model {}: cannot shard fused tensor {} (shard the model before fusing it)", c.name,
                              name));
    }
  }
  return std::nullopt;
}

// Copies elements [first, first + count) of dimension `dim` of every matrix of `t`.
void copy_slice(const WeightTensor& t, int dim, int64_t first, int64_t count, uint8_t* out) {
  const auto* src = static_cast<const uint8_t*>(t.data);
  const size_t row = row_bytes(t.type, t.ne[0]);
  const int64_t matrices = t.ne[2] * t.ne[3];
  if (dim == 1) {  // whole rows: one block of bytes per matrix
    const size_t bytes = row * static_cast<size_t>(count);
    for (int64_t m = 0; m < matrices; ++m) {
      std::memcpy(out, src + (static_cast<size_t>(m * t.ne[1] + first)) * row, bytes);
      out += bytes;
    }
    return;
  }
  const size_t skip = row_bytes(t.type, first), bytes = row_bytes(t.type, count);
  for (int64_t r = 0; r < t.ne[1] * matrices; ++r) {
    std::memcpy(out, src + static_cast<size_t>(r) * row + skip, bytes);
    out += bytes;
  }
}

void require_divides(const ModelConfig& c, int ranks) {
  if (ranks < 1) throw Error(fmt::format("model {}: {} ranks", c.name, ranks));
  auto require = [&](int value, const char* what) {
    if (value % ranks != 0) {
      throw Error(fmt::format("model {}: {} {} do not split over {} ranks", c.name, value, what, ranks));
    }
  };
  require(c.n_head, "attention heads");
  require(c.n_head_kv, "kv heads");
  require(c.n_ff, "feed-forward columns");
}

// Throws unless tensor `t` splits over `ranks` as `split` says.
void check_split(const ModelConfig& c, const WeightTensor& t, const Split& split, int ranks) {
  if (t.ne[split.dim] != split.size) {
    throw Error(fmt::format("model {}: tensor {} has {} elements in dimension {}, expected {}", c.name, t.name,
                            t.ne[split.dim], split.dim, split.size));
  }
  const int64_t count = split.size / ranks;
  const int block = traits(t.type).block_elements;
  if (split.size % ranks != 0 || (split.dim == 0 && count % block != 0)) {
    throw Error(fmt::format("model {}: tensor {} ({}) cannot split its {} columns over {} ranks: {} per rank "
                            "is not a multiple of its {}-element blocks",
                            c.name, t.name, traits(t.type).name, split.size, ranks, count, block));
  }
  if (t.data == nullptr) throw Error(fmt::format("model {}: tensor {} has no data", c.name, t.name));
}

}  // namespace

ModelConfig shard_config(const ModelConfig& config, int ranks) {
  config.check();
  if (config.tensor_ranks != 1) {
    throw Error(fmt::format("model {}: already a shard of {} ranks", config.name, config.tensor_ranks));
  }
  require_divides(config, ranks);
  if (ranks == 1) return config;
  ModelConfig shard = config;
  shard.n_head_dim = config.head_dim();  // n_embd / n_head no longer gives it
  shard.n_head /= ranks;
  shard.n_head_kv /= ranks;
  shard.n_ff /= ranks;
  shard.tensor_ranks = ranks;
  try {
    shard.check();
  } catch (const Error& e) {
    throw Error(fmt::format("{} split over {} ranks: {}", config.name, ranks, e.what()));
  }
  return shard;
}

Model shard_model(const Model& model, int ranks, int rank) {
  const ModelConfig& c = model.config;
  if (rank < 0 || rank >= ranks) throw Error(fmt::format("model {}: rank {} of {}", c.name, rank, ranks));
  // Every tensor's split is checked before shard_config's check of the shard, whose
  // message about quantized widths is vaguer than the tensor's.
  require_divides(c, ranks);
  for (const WeightTensor& t : model.tensors()) {
    if (const std::optional<Split> split = ranks > 1 ? split_of(t.name, c) : std::nullopt) check_split(c, t, *split, ranks);
  }
  Model shard;
  shard.config = shard_config(c, ranks);
  // Replicated tensors share the source's bytes; a copy of the source (sharing its
  // storage) keeps them alive as long as the shard lives.
  auto source = std::make_shared<const Model>(model);
  bool kept = false;
  for (const WeightTensor& t : model.tensors()) {
    const std::optional<Split> split = ranks > 1 ? split_of(t.name, c) : std::nullopt;
    if (!split) {
      shard.add_tensor(t, kept ? nullptr : source);
      kept = true;
      continue;
    }
    const int64_t count = split->size / ranks;
    Graph::Shape ne = t.ne;
    ne[split->dim] = count;
    copy_slice(t, split->dim, count * rank, count, shard.add_owned_tensor(t.name, t.type, ne));
  }
  return shard;
}

}  // namespace braid
