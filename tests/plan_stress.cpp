// 10,000 random DAGs through every policy and stream cap: the validator must pass, and
// removing any wait must be caught. Label "stress" (not in the default suite).
#include <gtest/gtest.h>

#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

TEST(PlanStress, TenThousandRandomDags) {
  int plans = 0, mutations = 0;
  for (uint32_t seed = 100000; seed < 110000; ++seed) {
    const Graph g = test::random_dag(seed, 3 + static_cast<int>(seed % 80), seed % 5 != 0);
    PlanOptions options;
    options.max_streams = 1 + static_cast<int>(seed % 6);
    options.in_place = seed % 2 == 0;
    for (const Plan& plan : candidate_plans(g, options)) {
      const ValidationReport report = validate(g, plan);
      ASSERT_TRUE(report.ok) << "seed " << seed << " " << plan.policy << ": " << report.problems[0];
      ++plans;
      if (seed % 10 != 0) continue;
      for (size_t s = 0; s < plan.steps.size(); ++s) {
        for (size_t w = 0; w < plan.steps[s].waits.size(); ++w) {
          Plan broken = plan;
          broken.steps[s].waits.erase(broken.steps[s].waits.begin() + static_cast<long>(w));
          ASSERT_FALSE(validate(g, broken).ok) << "seed " << seed << " " << plan.policy;
          ++mutations;
        }
      }
    }
  }
  EXPECT_GT(plans, 20000);
  EXPECT_GT(mutations, 1000);
}

}  // namespace
}  // namespace braid
