// cost: braid's own policy. Critical-path list scheduling driven by the cost model.
//
// Every node gets an estimated duration (cost_model.cpp). Ready nodes are taken in order
// of their bottom level (longest estimated path to the end of the graph), so the critical
// path is placed first. A node goes to its "home" stream (that of its latest-finishing
// predecessor, which needs no event) unless another stream lets it finish earlier by more
// than sync_us: the fork itself pays one event, and the branch will usually pay another to
// join back. Small nodes therefore stay in line, while independent heavy nodes that share
// an input (Q/K/V, gate/up, MoE expert slots) fork. At most max_streams streams.
// Issue order is by estimated start time, which keeps each stream's host-side issue close
// to when its work becomes ready.
#include <algorithm>
#include <queue>

#include "plan/plan_internal.h"

namespace braid::plan_detail {

Schedule schedule_cost(const Graph& graph, const Dag& dag, const PlanOptions& options) {
  const int n = dag.size();
  const CostModel& cost = options.cost;
  std::vector<double> duration(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) duration[static_cast<size_t>(i)] = node_cost_us(graph, dag.nodes[static_cast<size_t>(i)], cost);
  std::vector<double> bottom(static_cast<size_t>(n), 0.0);
  for (int i = n - 1; i >= 0; --i) {
    double tail = 0;
    for (int s : dag.succs[static_cast<size_t>(i)]) tail = std::max(tail, bottom[static_cast<size_t>(s)]);
    bottom[static_cast<size_t>(i)] = duration[static_cast<size_t>(i)] + tail;
  }

  auto later = [&](int a, int b) {  // priority queue order: highest bottom level, then graph order
    if (bottom[static_cast<size_t>(a)] != bottom[static_cast<size_t>(b)]) {
      return bottom[static_cast<size_t>(a)] < bottom[static_cast<size_t>(b)];
    }
    return a > b;
  };
  std::priority_queue<int, std::vector<int>, decltype(later)> ready(later);
  std::vector<int> missing(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    missing[static_cast<size_t>(i)] = static_cast<int>(dag.preds[static_cast<size_t>(i)].size());
    if (missing[static_cast<size_t>(i)] == 0) ready.push(i);
  }

  Schedule schedule;
  schedule.stream.assign(static_cast<size_t>(n), 0);
  std::vector<double> start(static_cast<size_t>(n), 0.0), finish(static_cast<size_t>(n), 0.0);
  std::vector<double> stream_free;  // per stream in use
  std::vector<int> scheduled;
  scheduled.reserve(static_cast<size_t>(n));
  auto start_on = [&](int node, int stream) {
    double t = stream < static_cast<int>(stream_free.size()) ? stream_free[static_cast<size_t>(stream)] : 0.0;
    for (int p : dag.preds[static_cast<size_t>(node)]) {
      const bool crosses = schedule.stream[static_cast<size_t>(p)] != stream;
      t = std::max(t, finish[static_cast<size_t>(p)] + (crosses ? cost.sync_us : 0.0));
    }
    return t;
  };

  while (!ready.empty()) {
    const int node = ready.top();
    ready.pop();
    int home = 0;
    double latest = -1;
    for (int p : dag.preds[static_cast<size_t>(node)]) {
      if (finish[static_cast<size_t>(p)] > latest) {
        latest = finish[static_cast<size_t>(p)];
        home = schedule.stream[static_cast<size_t>(p)];
      }
    }
    const double home_start = start_on(node, home);
    int best = home;
    double best_start = home_start;
    const int candidates = std::min(options.max_streams, static_cast<int>(stream_free.size()) + 1);
    for (int s = 0; s < candidates; ++s) {
      if (s == home) continue;
      const double t = start_on(node, s);
      if (t + cost.sync_us < home_start && t < best_start) {
        best = s;
        best_start = t;
      }
    }
    if (best >= static_cast<int>(stream_free.size())) stream_free.resize(static_cast<size_t>(best) + 1, 0.0);
    schedule.stream[static_cast<size_t>(node)] = best;
    start[static_cast<size_t>(node)] = best_start;
    finish[static_cast<size_t>(node)] = best_start + duration[static_cast<size_t>(node)];
    stream_free[static_cast<size_t>(best)] = finish[static_cast<size_t>(node)];
    scheduled.push_back(node);
    for (int s : dag.succs[static_cast<size_t>(node)]) {
      if (--missing[static_cast<size_t>(s)] == 0) ready.push(s);
    }
  }
  BRAID_ASSERT(static_cast<int>(scheduled.size()) == n);
  // A successor never starts before its predecessor, and ties keep scheduling order, so
  // sorting by start time stays topological.
  std::vector<int> rank(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rank[static_cast<size_t>(scheduled[static_cast<size_t>(i)])] = i;
  schedule.order = scheduled;
  std::stable_sort(schedule.order.begin(), schedule.order.end(), [&](int a, int b) {
    if (start[static_cast<size_t>(a)] != start[static_cast<size_t>(b)]) {
      return start[static_cast<size_t>(a)] < start[static_cast<size_t>(b)];
    }
    return rank[static_cast<size_t>(a)] < rank[static_cast<size_t>(b)];
  });
  return schedule;
}

}  // namespace braid::plan_detail
