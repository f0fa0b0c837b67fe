// Building, checking and simulating a persistent schedule (persistent_schedule.h).
#include "braid/persistent_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <queue>

#include "plan/plan_internal.h"

namespace braid {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per plan step: the steps just before it in happens-before -- the previous step on its
// stream and the recorder of every event it waits on.
std::vector<std::vector<int>> plan_edges(const Plan& plan) {
  std::vector<int> recorded_at(static_cast<size_t>(std::max(0, plan.event_count)), -1);
  std::vector<int> last_on_stream(static_cast<size_t>(std::max(1, plan.stream_count)), -1);
  std::vector<std::vector<int>> edges(plan.steps.size());
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const PlanStep& step = plan.steps[s];
    if (step.stream < 0 || step.stream >= plan.stream_count) {
      throw Error(fmt::format("persistent schedule: step {} runs on stream {} of {}", s, step.stream,
                              plan.stream_count));
    }
    std::vector<int>& e = edges[s];
    int& last = last_on_stream[static_cast<size_t>(step.stream)];
    if (last >= 0) e.push_back(last);
    for (int event : step.waits) {
      const int r = event >= 0 && event < plan.event_count ? recorded_at[static_cast<size_t>(event)] : -1;
      if (r < 0) throw Error(fmt::format("persistent schedule: step {} waits on event {}, never recorded", s, event));
      e.push_back(r);
    }
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());
    last = static_cast<int>(s);
    if (step.record >= 0 && step.record < plan.event_count) recorded_at[static_cast<size_t>(step.record)] = static_cast<int>(s);
  }
  return edges;
}

}  // namespace

int PersistentSchedule::step_of_task(int task) const {
  const auto it = std::upper_bound(steps.begin(), steps.end(), task,
                                   [](int t, const ScheduleStep& s) { return t < s.first_task; });
  return static_cast<int>(it - steps.begin()) - 1;
}

int tiles_of(const Graph& graph, TensorId node, const TileOptions& options) {
  const Tensor& t = graph[node];
  const int64_t rows = std::max<int64_t>(1, options.rows_per_task);
  const int64_t elements = std::max<int64_t>(1, options.elements_per_task);
  int64_t tiles = 1;
  switch (t.op) {
    case Op::MulMat:
    case Op::MulMatId: tiles = ceil_div(t.ne[0], rows); break;
    case Op::Attention: tiles = t.ne[1] * t.ne[2]; break;  // one query head of one token a task
    case Op::KvWrite: tiles = ceil_div(graph[t.src[1]].elements(), elements); break;  // the rows written, not the cache
    default: tiles = ceil_div(t.elements(), elements); break;
  }
  return static_cast<int>(std::clamp<int64_t>(tiles, 1, 1 << 20));
}

PersistentSchedule make_persistent_schedule(const Graph& graph, const Plan& plan, const TileOptions& options) {
  const std::vector<std::vector<int>> edges = plan_edges(plan);
  PersistentSchedule schedule;
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    ScheduleStep step;
    step.node = plan.steps[s].node;
    if (step.node < 0 || step.node >= graph.tensor_count()) {
      throw Error(fmt::format("persistent schedule: step {} names tensor {}", s, step.node));
    }
    step.tiles = tiles_of(graph, step.node, options);
    step.first_task = schedule.task_count;
    step.waits = edges[s];
    schedule.task_count += step.tiles;
    schedule.steps.push_back(std::move(step));
  }
  const ValidationReport report = validate_schedule(graph, plan, schedule);
  if (!report.ok) throw Error("persistent schedule: " + report.problems.front());
  return schedule;
}

ValidationReport validate_schedule(const Graph& graph, const Plan& plan, const PersistentSchedule& schedule) {
  ValidationReport shape;
  auto fail = [&](std::string problem) {
    shape.ok = false;
    shape.problems.push_back(std::move(problem));
  };
  if (schedule.steps.size() != plan.steps.size()) {
    fail(fmt::format("the schedule has {} steps, the plan {}", schedule.steps.size(), plan.steps.size()));
    return shape;
  }
  int next_task = 0;
  std::vector<std::vector<int>> waits;
  for (size_t s = 0; s < schedule.steps.size(); ++s) {
    const ScheduleStep& step = schedule.steps[s];
    if (step.node != plan.steps[s].node) fail(fmt::format("schedule step {} is not the plan's step {}", s, s));
    if (step.tiles < 1) fail(fmt::format("schedule step {} has {} tiles", s, step.tiles));
    if (step.first_task != next_task) {
      fail(fmt::format("schedule step {} starts at ticket {}, not {}", s, step.first_task, next_task));
    }
    next_task = step.first_task + std::max(step.tiles, 1);
    waits.push_back(step.waits);
  }
  if (schedule.task_count != next_task) fail(fmt::format("task_count {} for {} tickets", schedule.task_count, next_task));
  if (!shape.ok) return shape;
  return plan_detail::validate_with_waits(graph, plan, waits);
}

double simulate_schedule(const PersistentSchedule& schedule, int blocks, const std::function<double(int)>& duration) {
  if (blocks < 1) throw Error(fmt::format("simulate_schedule: {} blocks", blocks));
  std::vector<int> done(schedule.steps.size(), 0);
  std::vector<int> holding(static_cast<size_t>(blocks), -1);   // the ticket each block waits on or runs
  using Finish = std::pair<double, int>;                       // (time, block)
  std::priority_queue<Finish, std::vector<Finish>, std::greater<>> running;
  int next_ticket = 0;
  double now = 0;
  auto ready = [&](int task) {
    for (int w : schedule.steps[static_cast<size_t>(schedule.step_of_task(task))].waits) {
      if (done[static_cast<size_t>(w)] < schedule.steps[static_cast<size_t>(w)].tiles) return false;
    }
    return true;
  };
  std::vector<char> is_running(static_cast<size_t>(blocks), 0);
  for (;;) {
    // Idle blocks take tickets in order; blocks whose task is ready start it.
    for (int b = 0; b < blocks; ++b) {
      if (holding[static_cast<size_t>(b)] < 0 && next_ticket < schedule.task_count) holding[static_cast<size_t>(b)] = next_ticket++;
      const int task = holding[static_cast<size_t>(b)];
      if (task >= 0 && !is_running[static_cast<size_t>(b)] && ready(task)) {
        is_running[static_cast<size_t>(b)] = 1;
        running.emplace(now + duration(task), b);
      }
    }
    if (running.empty()) {
      const bool left = next_ticket < schedule.task_count ||
                        std::any_of(holding.begin(), holding.end(), [](int t) { return t >= 0; });
      if (left) throw Error(fmt::format("simulate_schedule: {} blocks stall with tasks left (ticket {})", blocks, next_ticket));
      return now;
    }
    const auto [time, b] = running.top();
    running.pop();
    now = time;
    const int step = schedule.step_of_task(holding[static_cast<size_t>(b)]);
    ++done[static_cast<size_t>(step)];
    holding[static_cast<size_t>(b)] = -1;
    is_running[static_cast<size_t>(b)] = 0;
  }
}

FlatSchedule flatten(const PersistentSchedule& schedule) {
  FlatSchedule flat;
  flat.task_step.resize(static_cast<size_t>(schedule.task_count));
  flat.wait_begin.push_back(0);
  for (size_t s = 0; s < schedule.steps.size(); ++s) {
    const ScheduleStep& step = schedule.steps[s];
    flat.tiles.push_back(step.tiles);
    flat.first_task.push_back(step.first_task);
    for (int t = step.first_task; t < step.first_task + step.tiles; ++t) {
      flat.task_step.at(static_cast<size_t>(t)) = static_cast<int32_t>(s);
    }
    flat.waits.insert(flat.waits.end(), step.waits.begin(), step.waits.end());
    flat.wait_begin.push_back(static_cast<int32_t>(flat.waits.size()));
  }
  return flat;
}

PersistentSchedule unflatten(const FlatSchedule& flat, const Plan& plan) {
  const size_t steps = plan.steps.size();
  if (flat.tiles.size() != steps || flat.first_task.size() != steps || flat.wait_begin.size() != steps + 1) {
    throw Error(fmt::format("unflatten: arrays for {} steps ({} tiles, {} first tasks, {} wait offsets)", steps,
                            flat.tiles.size(), flat.first_task.size(), flat.wait_begin.size()));
  }
  PersistentSchedule schedule;
  schedule.task_count = static_cast<int>(flat.task_step.size());
  for (size_t s = 0; s < steps; ++s) {
    ScheduleStep step;
    step.node = plan.steps[s].node;
    step.tiles = flat.tiles[s];
    step.first_task = flat.first_task[s];
    const int32_t begin = flat.wait_begin[s], end = flat.wait_begin[s + 1];
    if (begin < 0 || end < begin || static_cast<size_t>(end) > flat.waits.size()) {
      throw Error(fmt::format("unflatten: step {} has waits {}..{} of {}", s, begin, end, flat.waits.size()));
    }
    step.waits.assign(flat.waits.begin() + begin, flat.waits.begin() + end);
    for (int t = step.first_task; t < step.first_task + step.tiles; ++t) {
      if (t < 0 || t >= schedule.task_count || flat.task_step[static_cast<size_t>(t)] != static_cast<int32_t>(s)) {
        throw Error(fmt::format("unflatten: ticket {} is not step {}'s", t, s));
      }
    }
    schedule.steps.push_back(std::move(step));
  }
  return schedule;
}

std::string to_text(const Graph& graph, const PersistentSchedule& schedule) {
  std::string out = fmt::format("persistent schedule: {} steps, {} tasks\n", schedule.steps.size(), schedule.task_count);
  for (size_t s = 0; s < schedule.steps.size(); ++s) {
    const ScheduleStep& step = schedule.steps[s];
    const Tensor& t = graph[step.node];
    std::string waits;
    for (int w : step.waits) waits += (waits.empty() ? "" : ",") + std::to_string(w);
    out += fmt::format("{:4} tasks {:5}..{:<5} {:<10} {:<32} waits [{}]\n", s, step.first_task,
                       step.first_task + step.tiles - 1, op_name(t.op), t.name, waits);
  }
  return out;
}

}  // namespace braid
