#include "trace_render.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace braid::cli {
namespace {

// One colour per op family, so matmuls, attention and the small ops read apart.
const char* op_colour(Op op) {
  switch (op) {
    case Op::MulMat:
    case Op::MulMatId: return "#4e79a7";
    case Op::Attention: return "#e15759";
    case Op::KvWrite: return "#f28e2b";
    case Op::Rope: return "#edc948";
    case Op::RmsNorm: return "#76b7b2";
    case Op::TopK:
    case Op::MoeWeights:
    case Op::MoeCombine: return "#b07aa1";
    case Op::TopLogits: return "#9c755f";  // the logits' candidates for sampling
    case Op::AllReduce: return "#ff9da7";  // communication: where tensor parallelism waits
    default: return "#59a14f";
  }
}

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string chrome_trace_json(const Graph& graph, const Plan& plan, const std::vector<StepTiming>& timings,
                              const std::string& title) {
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0}, {"args", {{"name", title}}}});
  for (int s = 0; s < plan.stream_count; ++s) {
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", s},
                      {"args", {{"name", fmt::format("stream {}", s)}}}});
  }
  for (const StepTiming& t : timings) {
    const Tensor& node = graph[t.node];
    const PlanStep& step = plan.steps[static_cast<size_t>(t.step)];
    events.push_back({{"name", node.name},
                      {"cat", op_name(node.op)},
                      {"ph", "X"},
                      {"pid", 0},
                      {"tid", t.stream},
                      {"ts", t.start_us},
                      {"dur", std::max(0.0, t.end_us - t.start_us)},
                      {"args", {{"op", op_name(node.op)}, {"shape", node.shape_string()}, {"waits", step.waits},
                                {"record", step.record}}}});
  }
  return nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ns"}}.dump(1);
}

std::string timeline_svg(const Graph& graph, const Plan& plan, const std::vector<StepTiming>& timings,
                         const std::string& title) {
  double end = 1e-3;
  for (const StepTiming& t : timings) end = std::max(end, t.end_us);
  const int lane = 28, left = 80, width = 1200, top = 40;
  const int height = top + lane * plan.stream_count + 40;
  const double scale = (width - left - 20) / end;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"monospace\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
      width, height, escape_xml(title));
  for (int s = 0; s < plan.stream_count; ++s) {
    const int y = top + s * lane;
    svg += fmt::format("<text x=\"10\" y=\"{}\">stream {}</text>\n", y + lane / 2 + 4, s);
    svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#dddddd\"/>\n", left, y + lane - 2,
                       width - 20, y + lane - 2);
  }
  for (const StepTiming& t : timings) {
    const Tensor& node = graph[t.node];
    const double x = left + t.start_us * scale;
    const double w = std::max(0.5, (t.end_us - t.start_us) * scale);
    svg += fmt::format(
        "<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"><title>{} ({}) {:.1f} us</title></rect>\n",
        x, top + t.stream * lane + 3, w, lane - 8, op_colour(node.op), escape_xml(node.name), op_name(node.op),
        t.end_us - t.start_us);
  }
  // Time axis: five ticks.
  const int axis = top + plan.stream_count * lane + 14;
  for (int i = 0; i <= 4; ++i) {
    const double us = end * i / 4;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.0f} us</text>\n", left + us * scale,
                       axis, us);
  }
  return svg + "</svg>\n";
}

}  // namespace braid::cli
