// levels: Taskflow's old CUDA-graph optimizer. Nodes are grouped by DAG level (longest
// path from a source); within a level they are dealt round-robin onto the streams. Issue
// order is level by level.
#include <algorithm>

#include "plan/plan_internal.h"

namespace braid::plan_detail {

Schedule schedule_levels(const Dag& dag, int max_streams) {
  const int n = dag.size();
  std::vector<int> level(static_cast<size_t>(n), 0);
  int max_level = 0;
  for (int i = 0; i < n; ++i) {  // node indices are topological
    for (int p : dag.preds[static_cast<size_t>(i)]) {
      level[static_cast<size_t>(i)] = std::max(level[static_cast<size_t>(i)], level[static_cast<size_t>(p)] + 1);
    }
    max_level = std::max(max_level, level[static_cast<size_t>(i)]);
  }
  Schedule schedule;
  schedule.stream.assign(static_cast<size_t>(n), 0);
  std::vector<int> next_in_level(static_cast<size_t>(max_level) + 1, 0);
  schedule.order.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) schedule.order[static_cast<size_t>(i)] = i;
  std::stable_sort(schedule.order.begin(), schedule.order.end(),
                   [&](int a, int b) { return level[static_cast<size_t>(a)] < level[static_cast<size_t>(b)]; });
  for (int node : schedule.order) {
    int& next = next_in_level[static_cast<size_t>(level[static_cast<size_t>(node)])];
    schedule.stream[static_cast<size_t>(node)] = next++ % max_streams;
  }
  return schedule;
}

}  // namespace braid::plan_detail
