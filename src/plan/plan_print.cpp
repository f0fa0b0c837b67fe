// Text, JSON and Graphviz DOT renderings of a plan.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "braid/plan.h"

namespace braid {
namespace {

std::string join(const std::vector<int>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) s += fmt::format("{}{}", i ? "," : "", values[i]);
  return s;
}

int64_t offset_of(const Plan& plan, TensorId id) {
  return static_cast<size_t>(id) < plan.arena_offset.size() ? plan.arena_offset[static_cast<size_t>(id)] : -1;
}

}  // namespace

std::string to_text(const Graph& graph, const Plan& plan) {
  const ValidationReport report = validate(graph, plan);
  std::string out = fmt::format(
      "plan {}: {} steps, {} streams, {} events, {} waits, arena {} bytes, estimate {:.1f} us, {}\n", plan.policy,
      plan.steps.size(), plan.stream_count, plan.event_count, plan.wait_count(), plan.arena_bytes,
      plan.critical_path_estimate_us, report.ok ? "valid" : "INVALID");
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    const Tensor& t = graph[step.node];
    std::string line = fmt::format("{:4} s{} {:<24} {:<11}", i, step.stream, t.name, op_name(t.op));
    if (!step.waits.empty()) line += fmt::format(" wait[{}]", join(step.waits));
    if (step.record >= 0) line += fmt::format(" record {}", step.record);
    const int64_t offset = offset_of(plan, step.node);
    if (offset >= 0) line += fmt::format(" @{} +{}", offset, t.bytes());
    out += line + "\n";
  }
  for (const std::string& problem : report.problems) out += "problem: " + problem + "\n";
  return out;
}

std::string to_json(const Graph& graph, const Plan& plan) {
  nlohmann::json j;
  j["policy"] = plan.policy;
  j["nodes"] = plan.steps.size();
  j["streams_used"] = plan.stream_count;
  j["events"] = plan.event_count;
  j["waits"] = plan.wait_count();
  j["arena_peak_bytes"] = plan.arena_bytes;
  j["critical_path_estimate"] = plan.critical_path_estimate_us;
  const ValidationReport report = validate(graph, plan);
  j["valid"] = report.ok;
  j["problems"] = report.problems;
  nlohmann::json steps = nlohmann::json::array();
  for (const PlanStep& step : plan.steps) {
    const Tensor& t = graph[step.node];
    const int64_t offset = offset_of(plan, step.node);
    steps.push_back({{"node", t.name},
                     {"op", op_name(t.op)},
                     {"stream", step.stream},
                     {"waits", step.waits},
                     {"record", step.record},
                     {"offset", offset},
                     {"bytes", offset >= 0 ? t.bytes() : 0}});
  }
  j["steps"] = std::move(steps);
  return j.dump(2);
}

std::string to_dot(const Graph& graph, const Plan& plan) {
  static const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                        "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  std::string out = fmt::format("digraph plan {{\n  label=\"{} plan: {} streams\";\n  node [shape=box, style=filled, fontcolor=white];\n",
                                plan.policy, plan.stream_count);
  std::vector<int> step_of(static_cast<size_t>(graph.tensor_count()), -1);
  std::vector<int> recorded_at(static_cast<size_t>(std::max(0, plan.event_count)), -1);
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    const Tensor& t = graph[step.node];
    step_of[static_cast<size_t>(step.node)] = static_cast<int>(i);
    if (step.record >= 0 && step.record < plan.event_count) recorded_at[static_cast<size_t>(step.record)] = static_cast<int>(i);
    out += fmt::format("  s{} [label=\"{}\\n{} s{}\", fillcolor=\"{}\"];\n", i, t.name, op_name(t.op), step.stream,
                       kColors[static_cast<size_t>(step.stream) % 8]);
  }
  // Solid: data dependencies. Dashed: event edges (record -> wait) across streams.
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& step = plan.steps[i];
    for (TensorId src : graph[step.node].src) {
      const TensorId p = graph.producer(src);
      if (p != kNoTensor && step_of[static_cast<size_t>(p)] >= 0) out += fmt::format("  s{} -> s{};\n", step_of[static_cast<size_t>(p)], i);
    }
    for (int e : step.waits) {
      if (e >= 0 && e < plan.event_count && recorded_at[static_cast<size_t>(e)] >= 0) {
        out += fmt::format("  s{} -> s{} [style=dashed, color=red, label=\"e{}\"];\n", recorded_at[static_cast<size_t>(e)], i, e);
      }
    }
  }
  return out + "}\n";
}

}  // namespace braid
