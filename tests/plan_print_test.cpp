// Plan renderings: JSON carries the documented fields, DOT shows streams and event edges.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

TEST(PlanPrint, JsonHasTheDocumentedFields) {
  test::LlamaShape shape;
  shape.layers = 2;
  const Graph g = test::llama_decode_graph(shape);
  const Plan plan = make_plan(g, Policy::Cost);
  const nlohmann::json j = nlohmann::json::parse(to_json(g, plan));
  EXPECT_EQ(j["policy"], "cost");
  EXPECT_EQ(j["nodes"], plan.steps.size());
  EXPECT_EQ(j["streams_used"], plan.stream_count);
  EXPECT_EQ(j["events"], plan.event_count);
  EXPECT_EQ(j["waits"], plan.wait_count());
  EXPECT_EQ(j["arena_peak_bytes"], plan.arena_bytes);
  EXPECT_DOUBLE_EQ(j["critical_path_estimate"].get<double>(), plan.critical_path_estimate_us);
  EXPECT_EQ(j["valid"], true);
  ASSERT_EQ(j["steps"].size(), plan.steps.size());
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const nlohmann::json& step = j["steps"][i];
    EXPECT_EQ(step["node"], g[plan.steps[i].node].name);
    EXPECT_EQ(step["op"], op_name(g[plan.steps[i].node].op));
    EXPECT_EQ(step["stream"], plan.steps[i].stream);
    EXPECT_EQ(step["waits"].get<std::vector<int>>(), plan.steps[i].waits);
    EXPECT_EQ(step["record"], plan.steps[i].record);
    EXPECT_EQ(step["offset"], plan.arena_offset[static_cast<size_t>(plan.steps[i].node)]);
  }
}

TEST(PlanPrint, JsonReportsAnInvalidPlan) {
  const Graph g = test::random_dag(5, 30);
  Plan plan = make_plan(g, Policy::Levels);
  ASSERT_GT(plan.wait_count(), 0);
  for (PlanStep& step : plan.steps) step.waits.clear();
  const nlohmann::json j = nlohmann::json::parse(to_json(g, plan));
  EXPECT_EQ(j["valid"], false);
  EXPECT_FALSE(j["problems"].empty());
}

TEST(PlanPrint, TextAndDotShowStreamsAndEvents) {
  const Graph g = test::random_dag(11, 30);
  const Plan plan = make_plan(g, Policy::Branch);
  ASSERT_GT(plan.event_count, 0);
  const std::string text = to_text(g, plan);
  EXPECT_NE(text.find("plan branch"), std::string::npos);
  EXPECT_NE(text.find("valid"), std::string::npos);
  EXPECT_NE(text.find(g[plan.steps.back().node].name), std::string::npos);
  EXPECT_NE(text.find("wait["), std::string::npos);
  const std::string dot = to_dot(g, plan);
  EXPECT_EQ(dot.rfind("digraph plan {", 0), 0u);
  EXPECT_NE(dot.find("style=dashed"), std::string::npos);
  EXPECT_NE(dot.find("fillcolor=\"#ff7f0e\""), std::string::npos);  // stream 1's colour
}

}  // namespace
}  // namespace braid
