// Model: named weight tensors whose bytes live in the model or in a kept-alive owner
// (e.g. a GGUF file's memory map).
#include "braid/model.h"

#include <fmt/format.h>

namespace braid {

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
  if (!t) throw Error(fmt::format("model {}: no tensor named {}", config.name, name));
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
  WeightTensor tensor{name, type, ne, nullptr};
  auto bytes = std::shared_ptr<uint8_t[]>(new uint8_t[tensor.bytes()]);
  tensor.data = bytes.get();
  uint8_t* data = bytes.get();
  add_tensor(std::move(tensor), std::shared_ptr<const void>(bytes, bytes.get()));
  return data;
}

}  // namespace braid
