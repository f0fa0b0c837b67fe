// make_plan and the construction shared by every policy: the dependency DAG, events on
// cross-stream edges, and the pruning of waits already implied by earlier ones.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "plan/plan_internal.h"

namespace braid {

int Plan::wait_count() const {
  int count = 0;
  for (const PlanStep& step : steps) count += static_cast<int>(step.waits.size());
  return count;
}

std::string_view policy_name(Policy policy) {
  switch (policy) {
    case Policy::Serial: return "serial";
    case Policy::Branch: return "branch";
    case Policy::Levels: return "levels";
    case Policy::Chains: return "chains";
    case Policy::Cost: return "cost";
    case Policy::Auto: return "auto";
  }
  return "?";
}

bool parse_policy(std::string_view text, Policy* out) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Policy p : {Policy::Serial, Policy::Branch, Policy::Levels, Policy::Chains, Policy::Cost,
                   Policy::Auto}) {
    if (lower == policy_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

std::vector<Policy> all_policies() {
  return {Policy::Serial, Policy::Branch, Policy::Levels, Policy::Chains, Policy::Cost};
}

namespace plan_detail {
namespace {

void add_edge(Dag& dag, int from, int to) {
  BRAID_ASSERT(from < to);
  dag.preds[static_cast<size_t>(to)].push_back(from);
}

// Note [State overwrites]: KvWrite writes into a state tensor in place. Any other node
// that touches the same state (reads the leaf, a view of it, or writes it too) must be
// ordered against the writer in the graph's own order, or a concurrent plan could read
// half-written memory. In braid's model graphs the readers already depend on the write;
// these edges matter for hand-built graphs and cost nothing when redundant.
void add_state_order_edges(const Graph& graph, Dag& dag) {
  std::map<TensorId, std::vector<std::pair<int, bool>>> accesses;  // root -> (node, writes)
  for (int i = 0; i < dag.size(); ++i) {
    const Tensor& t = graph[dag.nodes[static_cast<size_t>(i)]];
    if (t.op == Op::KvWrite) accesses[graph.storage_root(t.id)].emplace_back(i, true);
  }
  if (accesses.empty()) return;
  for (int i = 0; i < dag.size(); ++i) {
    const Tensor& t = graph[dag.nodes[static_cast<size_t>(i)]];
    for (TensorId s : t.src) {
      auto it = accesses.find(graph.storage_root(s));
      if (it != accesses.end()) it->second.emplace_back(i, false);
    }
  }
  for (const auto& [root, list] : accesses) {
    for (const auto& [writer, writes] : list) {
      if (!writes) continue;
      for (const auto& [other, unused] : list) {
        if (other != writer) add_edge(dag, std::min(writer, other), std::max(writer, other));
      }
    }
  }
}

}  // namespace

Dag build_dag(const Graph& graph) {
  if (!graph.finalized()) throw Error("plan: the graph is not finalized (call Graph::finalize)");
  Dag dag;
  dag.nodes = graph.compute_nodes();
  dag.index_of.assign(static_cast<size_t>(graph.tensor_count()), -1);
  for (int i = 0; i < dag.size(); ++i) dag.index_of[static_cast<size_t>(dag.nodes[static_cast<size_t>(i)])] = i;
  dag.preds.resize(dag.nodes.size());
  dag.succs.resize(dag.nodes.size());
  dag.branch_inputs.resize(dag.nodes.size());
  for (int i = 0; i < dag.size(); ++i) {
    const Tensor& t = graph[dag.nodes[static_cast<size_t>(i)]];
    for (TensorId s : t.src) {
      const TensorId p = graph.producer(s);
      if (p == kNoTensor) {
        const TensorId root = graph.storage_root(s);
        if (!graph[root].has(kWeight)) dag.branch_inputs[static_cast<size_t>(i)].push_back(root);
        continue;
      }
      const int j = dag.index_of[static_cast<size_t>(p)];
      BRAID_ASSERT(j >= 0 && j < i);
      add_edge(dag, j, i);
      dag.branch_inputs[static_cast<size_t>(i)].push_back(p);
    }
  }
  add_state_order_edges(graph, dag);
  for (int i = 0; i < dag.size(); ++i) {
    auto& preds = dag.preds[static_cast<size_t>(i)];
    std::sort(preds.begin(), preds.end());
    preds.erase(std::unique(preds.begin(), preds.end()), preds.end());
    for (int p : preds) dag.succs[static_cast<size_t>(p)].push_back(i);
  }
  return dag;
}

Plan assemble_plan(const Graph& graph, const Dag& dag, const Schedule& schedule,
                   std::string policy, const PlanOptions& options) {
  const int n = dag.size();
  BRAID_ASSERT(static_cast<int>(schedule.order.size()) == n);
  BRAID_ASSERT(static_cast<int>(schedule.stream.size()) == n);

  // Streams are numbered by first use, so stream 0 runs the first step and no number is unused.
  std::vector<int> renumber;
  std::vector<int> step_of(static_cast<size_t>(n), -1);
  std::vector<int> stream_of_step(static_cast<size_t>(n));
  for (int pos = 0; pos < n; ++pos) {
    const int node = schedule.order[static_cast<size_t>(pos)];
    BRAID_ASSERT(step_of[static_cast<size_t>(node)] == -1);
    step_of[static_cast<size_t>(node)] = pos;
    const int s = schedule.stream[static_cast<size_t>(node)];
    BRAID_ASSERT(s >= 0);
    if (static_cast<size_t>(s) >= renumber.size()) renumber.resize(static_cast<size_t>(s) + 1, -1);
    if (renumber[static_cast<size_t>(s)] < 0) {
      renumber[static_cast<size_t>(s)] = static_cast<int>(std::count_if(
          renumber.begin(), renumber.end(), [](int r) { return r >= 0; }));
    }
    stream_of_step[static_cast<size_t>(pos)] = renumber[static_cast<size_t>(s)];
  }
  const int streams = std::max(1, static_cast<int>(std::count_if(
                                      renumber.begin(), renumber.end(), [](int r) { return r >= 0; })));

  // Vector clocks: done[pos * streams + k] = how many steps of stream k are known complete
  // once step pos has completed (its own included).
  std::vector<int> done(static_cast<size_t>(n) * static_cast<size_t>(streams), 0);
  std::vector<int> last_on_stream(static_cast<size_t>(streams), -1);
  std::vector<int> count_on_stream(static_cast<size_t>(streams), 0);
  std::vector<int> index_on_stream(static_cast<size_t>(n));
  std::vector<std::vector<int>> wait_steps(static_cast<size_t>(n));
  std::vector<char> records(static_cast<size_t>(n), 0);
  std::vector<int> clock(static_cast<size_t>(streams));
  std::vector<int> candidates;
  auto done_of = [&](int pos) { return &done[static_cast<size_t>(pos) * static_cast<size_t>(streams)]; };

  for (int pos = 0; pos < n; ++pos) {
    const int node = schedule.order[static_cast<size_t>(pos)];
    const int k = stream_of_step[static_cast<size_t>(pos)];
    const int prev = last_on_stream[static_cast<size_t>(k)];
    if (prev >= 0) {
      std::copy(done_of(prev), done_of(prev) + streams, clock.begin());
    } else {
      std::fill(clock.begin(), clock.end(), 0);
    }
    // A dependency needs a wait unless this stream already knows it is complete.
    candidates.clear();
    for (int p : dag.preds[static_cast<size_t>(node)]) {
      const int ps = step_of[static_cast<size_t>(p)];
      BRAID_ASSERT(ps >= 0 && ps < pos);  // the order must be topological
      const int pk = stream_of_step[static_cast<size_t>(ps)];
      if (pk != k && clock[static_cast<size_t>(pk)] <= index_on_stream[static_cast<size_t>(ps)]) {
        candidates.push_back(ps);
      }
    }
    // Keep only the waits no other candidate implies, so that every remaining wait is
    // needed: dropping any one of them leaves a dependency uncovered.
    for (int c : candidates) {
      const int ck = stream_of_step[static_cast<size_t>(c)];
      bool implied = false;
      for (int other : candidates) {
        if (other == c) continue;
        const bool covers = done_of(other)[ck] > index_on_stream[static_cast<size_t>(c)];
        // Two candidates on one stream: the later covers the earlier (ties cannot happen).
        if (covers) {
          implied = true;
          break;
        }
      }
      if (implied) continue;
      wait_steps[static_cast<size_t>(pos)].push_back(c);
      records[static_cast<size_t>(c)] = 1;
      for (int s = 0; s < streams; ++s) clock[static_cast<size_t>(s)] = std::max(clock[static_cast<size_t>(s)], done_of(c)[s]);
    }
    index_on_stream[static_cast<size_t>(pos)] = count_on_stream[static_cast<size_t>(k)]++;
    clock[static_cast<size_t>(k)] = index_on_stream[static_cast<size_t>(pos)] + 1;
    std::copy(clock.begin(), clock.end(), done_of(pos));
    last_on_stream[static_cast<size_t>(k)] = pos;
  }

  Plan plan;
  plan.policy = std::move(policy);
  plan.stream_count = streams;
  plan.steps.resize(static_cast<size_t>(n));
  std::vector<int> event_of(static_cast<size_t>(n), -1);
  for (int pos = 0; pos < n; ++pos) {  // events numbered in the order they are recorded
    if (records[static_cast<size_t>(pos)]) event_of[static_cast<size_t>(pos)] = plan.event_count++;
  }
  for (int pos = 0; pos < n; ++pos) {
    PlanStep& step = plan.steps[static_cast<size_t>(pos)];
    step.node = dag.nodes[static_cast<size_t>(schedule.order[static_cast<size_t>(pos)])];
    step.stream = stream_of_step[static_cast<size_t>(pos)];
    step.record = event_of[static_cast<size_t>(pos)];
    for (int w : wait_steps[static_cast<size_t>(pos)]) step.waits.push_back(event_of[static_cast<size_t>(w)]);
    std::sort(step.waits.begin(), step.waits.end());
  }
  allocate_arena(graph, plan, options.in_place);
  plan.critical_path_estimate_us = simulate_plan_us(graph, plan, options.cost);
  return plan;
}

}  // namespace plan_detail

Plan make_plan(const Graph& graph, Policy policy, const PlanOptions& options) {
  using namespace plan_detail;
  if (options.max_streams < 1) {
    throw Error(fmt::format("plan: max_streams must be at least 1, not {}", options.max_streams));
  }
  const Dag dag = build_dag(graph);
  Schedule schedule;
  switch (policy) {
    case Policy::Serial:
    case Policy::Auto: schedule = schedule_serial(dag); break;
    case Policy::Branch: schedule = schedule_branch(dag, options.max_streams); break;
    case Policy::Levels: schedule = schedule_levels(dag, options.max_streams); break;
    case Policy::Chains: schedule = schedule_chains(dag, options.max_streams); break;
    case Policy::Cost: schedule = schedule_cost(graph, dag, options); break;
  }
  // Auto's own plan is serial's; the choice among candidates is the backend's measurement.
  const Policy named = policy == Policy::Auto ? Policy::Serial : policy;
  return assemble_plan(graph, dag, schedule, std::string(policy_name(named)), options);
}

std::vector<Plan> candidate_plans(const Graph& graph, const PlanOptions& options) {
  std::vector<Plan> plans;
  for (Policy policy : all_policies()) {
    Plan plan = make_plan(graph, policy, options);
    const bool seen = std::any_of(plans.begin(), plans.end(), [&](const Plan& other) {
      if (other.steps.size() != plan.steps.size()) return false;
      for (size_t i = 0; i < plan.steps.size(); ++i) {
        const PlanStep& a = plan.steps[i];
        const PlanStep& b = other.steps[i];
        if (a.node != b.node || a.stream != b.stream || a.waits != b.waits || a.record != b.record) return false;
      }
      return true;
    });
    if (!seen) plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace braid
