// Text and Graphviz renderings of a graph.
#include <fmt/format.h>

#include "braid/graph.h"

namespace braid {

std::string to_text(const Graph& graph) {
  std::string out;
  for (TensorId id : graph.order()) {
    const Tensor& t = graph[id];
    std::string sources;
    for (TensorId s : t.src) sources += fmt::format("{}{}", sources.empty() ? "" : ", ", graph[s].name);
    out += fmt::format("{:>5} {:<12} {:<28} {:<18} {:<5} <- {}\n", id, op_name(t.op), t.name,
                       t.shape_string(), traits(t.type).name, sources);
  }
  return out;
}

std::string to_dot(const Graph& graph) {
  std::string out = "digraph braid {\n  rankdir=TB;\n  node [shape=box, fontname=monospace];\n";
  std::vector<bool> drawn(static_cast<size_t>(graph.tensor_count()), false);
  auto draw = [&](TensorId id) {
    if (drawn[static_cast<size_t>(id)]) return;
    drawn[static_cast<size_t>(id)] = true;
    const Tensor& t = graph[id];
    const char* style = t.is_leaf() ? (t.has(kWeight) ? "filled,dashed" : "filled")
                                    : (is_view_op(t.op) ? "dotted" : "solid");
    out += fmt::format("  n{} [label=\"{}\\n{} {}\", style=\"{}\", fillcolor=\"#eeeeee\"];\n", id,
                       t.name, op_name(t.op), t.shape_string(), style);
  };
  for (TensorId id : graph.order()) {
    draw(id);
    for (TensorId s : graph[id].src) {
      draw(s);
      out += fmt::format("  n{} -> n{};\n", s, id);
    }
  }
  return out + "}\n";
}

}  // namespace braid
