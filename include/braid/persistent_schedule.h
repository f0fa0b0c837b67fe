// A plan as the task list of one persistent kernel (issue 17; docs/DESIGN.md, "A persistent
// schedule"): instead of one kernel launch per node, resident thread blocks take tasks --
// independent slices of a node (rows of a product, a span of elements) -- in ticket order
// from one atomic counter, and a task starts once every task of each step its step waits
// for is done (one completion counter per step, in global memory). Independent branches
// (Q/K/V, gate/up, experts) then run side by side, and a block that finishes its share of
// one node goes on to the next node's tiles instead of waiting for a kernel boundary.
//
// The waits are the plan's own happens-before edges (the step before on the same stream and
// the recorders of the events it waits on), so the schedule orders exactly what the plan
// orders, and its arena stays valid. validate_schedule checks that independently, with the
// plan validator's checks.
//
// Deadlock freedom for any number of resident blocks: every wait names an earlier step,
// tickets are taken in order, and a block takes its next ticket only after its task is done.
// So the unfinished task with the lowest ticket waits only on steps whose tasks all hold
// lower tickets, hence are done: it can run. simulate_schedule plays this out.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "braid/graph.h"
#include "braid/plan.h"

namespace braid {

struct ScheduleStep {
  TensorId node = kNoTensor;
  int tiles = 1;           // tasks of this step
  int first_task = 0;      // its tasks are tickets first_task .. first_task + tiles - 1
  std::vector<int> waits;  // earlier steps (indices into steps) all of whose tasks must be done
};

struct PersistentSchedule {
  std::vector<ScheduleStep> steps;  // the plan's steps, in its order
  int task_count = 0;
  int step_of_task(int task) const;  // binary search; task in [0, task_count)
};

// How a node is cut into tasks: products by rows of the output, attention by query head and
// token, a cache write by the elements it writes, other ops by elements of the output.
struct TileOptions {
  int64_t rows_per_task = 64;
  int64_t elements_per_task = 16384;
};
int tiles_of(const Graph& graph, TensorId node, const TileOptions& options = {});

// Throws braid::Error when the plan does not cover the graph's compute nodes once each.
PersistentSchedule make_persistent_schedule(const Graph& graph, const Plan& plan, const TileOptions& options = {});

// The plan validator's checks (dependencies, in-place state writes, arena reuse) with the
// schedule's waits as the only happens-before edges, and the schedule's own shape: the
// plan's steps in order, tiles >= 1, tickets contiguous, waits on earlier steps only.
ValidationReport validate_schedule(const Graph& graph, const Plan& plan, const PersistentSchedule& schedule);

// Plays the schedule on `blocks` resident blocks, task t taking duration(t): returns when the
// last task finishes. Throws braid::Error if the blocks stall with tasks left (a deadlock).
double simulate_schedule(const PersistentSchedule& schedule, int blocks, const std::function<double(int)>& duration);

// The schedule as a persistent kernel reads it: flat int32 arrays (a device copies them
// as they are). Step s has tiles[s] tasks from ticket first_task[s]; it waits on steps
// waits[wait_begin[s] .. wait_begin[s + 1]); ticket t belongs to step task_step[t].
struct FlatSchedule {
  std::vector<int32_t> task_step;   // task_count entries
  std::vector<int32_t> tiles;       // per step
  std::vector<int32_t> first_task;  // per step
  std::vector<int32_t> wait_begin;  // steps + 1 entries
  std::vector<int32_t> waits;
};
FlatSchedule flatten(const PersistentSchedule& schedule);
// The inverse, given the plan whose steps name the nodes; throws braid::Error when the
// arrays are inconsistent (sizes, ranges, a ticket outside its step).
PersistentSchedule unflatten(const FlatSchedule& flat, const Plan& plan);

// One line per step: ticket range, node, op, tiles, waits.
std::string to_text(const Graph& graph, const PersistentSchedule& schedule);

}  // namespace braid
