// serial: every node on stream 0 in the graph's order. The baseline all others must beat.
#include "plan/plan_internal.h"

namespace braid::plan_detail {

Schedule schedule_serial(const Dag& dag) {
  Schedule schedule;
  schedule.order.resize(static_cast<size_t>(dag.size()));
  for (int i = 0; i < dag.size(); ++i) schedule.order[static_cast<size_t>(i)] = i;
  schedule.stream.assign(static_cast<size_t>(dag.size()), 0);
  return schedule;
}

}  // namespace braid::plan_detail
