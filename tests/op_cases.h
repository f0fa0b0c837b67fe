// One small graph per compute op, for tests that must cover every op: the CPU coverage
// test, and backend tests that compare each op with the CPU reference.
#pragma once

#include <functional>
#include <map>

#include "op_harness.h"

namespace braid::test {

// Adds the op's operands (random data, fixed seeds) and the op node to the graph, and
// returns the node.
using OpCaseBuilder = std::function<TensorId(OpGraph&)>;

// Every compute op of the IR has an entry (checked by CpuOpCoverage).
const std::map<Op, OpCaseBuilder>& one_node_graphs();

}  // namespace braid::test
