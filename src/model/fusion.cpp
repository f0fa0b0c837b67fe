// fuse_projections: a model whose sibling projections are concatenated, made once.
#include "model/fusion.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <set>

#include "model/weight_names.h"

namespace braid {

std::vector<FusedGroup> fused_groups(const ModelConfig& config) {
  return {kFusedQkv, config.n_expert == 0 ? kFusedGateUp : kFusedGateUpExperts};
}

bool can_stack(const std::vector<const WeightTensor*>& parts) {
  for (const WeightTensor* p : parts) {
    const WeightTensor& first = *parts.front();
    if (p->type != first.type || p->ne[0] != first.ne[0] || p->ne[2] != first.ne[2] || p->ne[3] != first.ne[3]) {
      return false;
    }
  }
  return true;
}

Graph::Shape stacked_shape(const std::vector<Graph::Shape>& parts) {
  Graph::Shape ne = parts.front();
  ne[1] = 0;
  for (const Graph::Shape& p : parts) ne[1] += p[1];
  return ne;
}

namespace {

// Stacks the parts' rows, matrix by matrix (for expert tensors: expert by expert, so
// that expert e of the result is expert e's gate rows followed by its up rows).
void stack_into(uint8_t* out, const std::vector<const WeightTensor*>& parts) {
  const WeightTensor& first = *parts.front();
  const int64_t matrices = first.ne[2] * first.ne[3];
  const size_t row = row_bytes(first.type, first.ne[0]);
  for (int64_t m = 0; m < matrices; ++m) {
    for (const WeightTensor* p : parts) {
      const size_t bytes = row * static_cast<size_t>(p->ne[1]);
      std::memcpy(out, static_cast<const uint8_t*>(p->data) + static_cast<size_t>(m) * bytes, bytes);
      out += bytes;
    }
  }
}

}  // namespace

Model fuse_projections(const Model& model) {
  model.config.check();
  // Which groups to fuse, found by their first part. A group already fused (its
  // concatenation present) is left as it is; one whose parts differ in type stays apart.
  struct Pending {
    std::string name;
    std::vector<const WeightTensor*> parts;
  };
  std::map<std::string, Pending> by_first_part;
  std::set<std::string> replaced;
  for (int l = 0; l < model.config.n_layer; ++l) {
    for (const FusedGroup& group : fused_groups(model.config)) {
      Pending p{layer_weight(l, group.fused.c_str()), {}};
      if (model.find(p.name)) continue;
      for (const std::string& part : group.parts) p.parts.push_back(&model.get(layer_weight(l, part.c_str())));
      if (!can_stack(p.parts)) continue;
      for (const WeightTensor* part : p.parts) replaced.insert(part->name);
      by_first_part.emplace(p.parts.front()->name, std::move(p));
    }
  }

  // The result shares every other tensor's bytes with the source, whose copy (sharing
  // its storage) it keeps alive.
  Model fused;
  fused.config = model.config;
  auto source = std::make_shared<const Model>(model);
  bool holds_source = false;
  for (const WeightTensor& t : source->tensors()) {
    auto group = by_first_part.find(t.name);
    if (group != by_first_part.end()) {
      const Pending& p = group->second;
      std::vector<Graph::Shape> shapes;
      for (const WeightTensor* part : p.parts) shapes.push_back(part->ne);
      stack_into(fused.add_owned_tensor(p.name, t.type, stacked_shape(shapes)), p.parts);
    } else if (!replaced.count(t.name)) {
      fused.add_tensor(t, holds_source ? nullptr : source);
      holds_source = true;
    }
  }
  return fused;
}

}  // namespace braid
