// branch: the rule of llama.cpp PR 4719 ("CUDA: parallelize graph evaluation across
// multiple streams"), kept as the reference point.
//
// Each tensor remembers the stream it ran on and a branch counter: the stream its next
// consumer should use. A node runs on the counter of its first non-weight input, and every
// use of a tensor as input increments that tensor's counter, so the second and third
// consumers of one tensor (Q, K, V of one norm) land on new streams. Weights never branch.
// Inputs and state count like computed tensors (a leaf "ran" on stream 0); nodes whose
// only sources are weights run on stream 0. The PR had no cap; here
// streams wrap modulo max_streams.
#include "plan/plan_internal.h"

namespace braid::plan_detail {

Schedule schedule_branch(const Dag& dag, int max_streams) {
  Schedule schedule = schedule_serial(dag);
  // Per TensorId: the stream the tensor's next consumer takes. Leaves count from 0.
  std::vector<int> next_branch(dag.index_of.size(), 0);
  for (int i = 0; i < dag.size(); ++i) {
    const auto& inputs = dag.branch_inputs[static_cast<size_t>(i)];
    int stream = 0;
    if (!inputs.empty()) stream = next_branch[static_cast<size_t>(inputs.front())];
    for (TensorId input : inputs) ++next_branch[static_cast<size_t>(input)];
    stream %= max_streams;
    schedule.stream[static_cast<size_t>(i)] = stream;
    next_branch[static_cast<size_t>(dag.nodes[static_cast<size_t>(i)])] = stream;  // first consumer stays here
  }
  return schedule;
}

}  // namespace braid::plan_detail
