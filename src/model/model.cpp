// Model: config checks and weight storage.
#include "braid/model.h"

#include <fmt/format.h>

namespace braid {

void ModelConfig::check() const {
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(fmt::format("model {}: {}", name, what));
  };
  require(n_embd > 0 && n_ff > 0 && n_head > 0 && n_layer > 0 && n_vocab > 0 && n_ctx > 0,
          fmt::format("sizes must be positive (embd {}, ff {}, heads {}, layers {}, vocab {}, ctx {})",
                      n_embd, n_ff, n_head, n_layer, n_vocab, n_ctx));
  require(tensor_ranks >= 1, fmt::format("a shard of {} ranks", tensor_ranks));
  require(n_head_dim >= 0, fmt::format("head size {} is negative", n_head_dim));
  require(n_head_dim > 0 || n_embd % n_head == 0, fmt::format("{} heads do not divide embedding {}", n_head, n_embd));
  require(head_dim() > 0 && head_dim() % 2 == 0, fmt::format("head size {} must be even for rope", head_dim()));
  require(n_head_kv > 0 && n_head % n_head_kv == 0,
          fmt::format("{} kv heads do not divide {} heads", n_head_kv, n_head));
  require(n_expert == 0 || (n_expert_used > 0 && n_expert_used <= n_expert),
          fmt::format("{} experts used of {}", n_expert_used, n_expert));
  require(rope_mode == kRopeNormal || rope_mode == kRopeNeox, fmt::format("rope mode {}", rope_mode));
  require(rope_base > 0 && rms_eps >= 0, "rope base must be positive and eps not negative");
  // K-quant matrices whose rows are not a multiple of 256 fall back to a 32-element type
  // (weight_mix.h), so 32 is what every quantized type needs.
  const int block = traits(weight_type).quantized ? kQuantBlock : traits(weight_type).block_elements;
  require(n_embd % block == 0 && n_ff % block == 0 && q_dim() % block == 0,
          fmt::format("{} weights need embedding {}, ff {} and q width {} divisible by {}", traits(weight_type).name,
                      n_embd, n_ff, q_dim(), block));
  require(!traits(cache_type).quantized && cache_type != DType::I32,
          fmt::format("cache type {} is not supported", traits(cache_type).name));
}

size_t WeightTensor::bytes() const {
  return row_bytes(type, ne[0]) * static_cast<size_t>(ne[1] * ne[2] * ne[3]);
}

const WeightTensor* Model::find(const std::string& name) const {
  for (const WeightTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const WeightTensor& Model::get(const std::string& name) const {
  const WeightTensor* t = find(name);
  if (!t) throw Error(fmt::format("model {}: tensor {} is missing", config.name, name));
  return *t;
}

size_t Model::weight_bytes() const {
  size_t total = 0;
  for (const WeightTensor& t : tensors_) total += t.bytes();
  return total;
}

int64_t Model::parameter_count() const {
  int64_t total = 0;
  for (const WeightTensor& t : tensors_) total += t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
  return total;
}

void Model::add_tensor(WeightTensor tensor, std::shared_ptr<const void> keep_alive) {
  if (find(tensor.name)) throw Error(fmt::format("model {}: duplicate tensor {}", config.name, tensor.name));
  tensors_.push_back(std::move(tensor));
  if (keep_alive) storage_.push_back(std::move(keep_alive));
}

uint8_t* Model::add_owned_tensor(const std::string& name, DType type, Graph::Shape ne) {
  WeightTensor t{name, type, ne, nullptr};
  auto bytes = std::shared_ptr<uint8_t[]>(new uint8_t[t.bytes()]);
  t.data = bytes.get();
  add_tensor(t, std::shared_ptr<const void>(bytes, bytes.get()));
  return bytes.get();
}

}  // namespace braid
