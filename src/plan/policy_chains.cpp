// chains: the Nimble scheme (Kwon et al., NeurIPS 2020). Take the transitive reduction of
// the DAG, find a maximum bipartite matching on its edges (each node matched to at most
// one successor and one predecessor), and read off the chains: a minimum chain cover of
// the reduced DAG. Nimble gives each chain its own stream; we have at most max_streams, so
// chains are packed like intervals: a chain reuses a stream whose chains ended (by DAG
// level) before it starts, and otherwise goes to the least loaded stream.
#include <algorithm>
#include <cstdint>

#include "plan/plan_internal.h"

namespace braid::plan_detail {
namespace {

using Bits = std::vector<uint64_t>;

// Successors kept by the transitive reduction: an edge u->v is redundant when v is
// reachable from another successor of u.
std::vector<std::vector<int>> transitive_reduction(const Dag& dag) {
  const int n = dag.size();
  const size_t words = (static_cast<size_t>(n) + 63) / 64;
  std::vector<Bits> reach(static_cast<size_t>(n), Bits(words, 0));  // descendants, itself included
  std::vector<std::vector<int>> kept(static_cast<size_t>(n));
  for (int u = n - 1; u >= 0; --u) {
    Bits& mine = reach[static_cast<size_t>(u)];
    mine[static_cast<size_t>(u) / 64] |= uint64_t{1} << (u % 64);
    // Successors in ascending order: anything reachable from a successor comes after it.
    for (int v : dag.succs[static_cast<size_t>(u)]) {
      if (mine[static_cast<size_t>(v) / 64] >> (v % 64) & 1) continue;
      kept[static_cast<size_t>(u)].push_back(v);
      const Bits& theirs = reach[static_cast<size_t>(v)];
      for (size_t w = 0; w < words; ++w) mine[w] |= theirs[w];
    }
  }
  return kept;
}

// Maximum bipartite matching (Kuhn's augmenting paths, iterative): next[u] = matched successor.
std::vector<int> match_successors(const std::vector<std::vector<int>>& edges) {
  const int n = static_cast<int>(edges.size());
  std::vector<int> next(static_cast<size_t>(n), -1), prev(static_cast<size_t>(n), -1);
  // Greedy start, then augment from every unmatched left node.
  for (int u = 0; u < n; ++u) {
    for (int v : edges[static_cast<size_t>(u)]) {
      if (prev[static_cast<size_t>(v)] < 0) {
        next[static_cast<size_t>(u)] = v;
        prev[static_cast<size_t>(v)] = u;
        break;
      }
    }
  }
  std::vector<int> seen(static_cast<size_t>(n), -1);
  std::vector<std::pair<int, size_t>> stack;  // (left node, next edge to try)
  for (int root = 0; root < n; ++root) {
    if (next[static_cast<size_t>(root)] >= 0 || edges[static_cast<size_t>(root)].empty()) continue;
    stack.assign(1, {root, 0});
    bool augmented = false;
    while (!stack.empty() && !augmented) {
      auto& [u, e] = stack.back();
      if (e == edges[static_cast<size_t>(u)].size()) {
        stack.pop_back();
        continue;
      }
      const int v = edges[static_cast<size_t>(u)][e++];
      if (seen[static_cast<size_t>(v)] == root) continue;
      seen[static_cast<size_t>(v)] = root;
      const int owner = prev[static_cast<size_t>(v)];
      if (owner < 0) {
        // Flip the path: each left node on the stack takes the right node below it.
        int right = v;
        for (size_t i = stack.size(); i-- > 0;) {
          const int left = stack[i].first;
          const int old = next[static_cast<size_t>(left)];
          next[static_cast<size_t>(left)] = right;
          prev[static_cast<size_t>(right)] = left;
          right = old;
        }
        augmented = true;
      } else {
        stack.emplace_back(owner, 0);
      }
    }
  }
  return next;
}

}  // namespace

Schedule schedule_chains(const Dag& dag, int max_streams) {
  const int n = dag.size();
  const std::vector<int> next = match_successors(transitive_reduction(dag));
  std::vector<int> level(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) {
    for (int p : dag.preds[static_cast<size_t>(i)]) {
      level[static_cast<size_t>(i)] = std::max(level[static_cast<size_t>(i)], level[static_cast<size_t>(p)] + 1);
    }
  }
  std::vector<char> has_prev(static_cast<size_t>(n), 0);
  for (int u = 0; u < n; ++u) {
    if (next[static_cast<size_t>(u)] >= 0) has_prev[static_cast<size_t>(next[static_cast<size_t>(u)])] = 1;
  }
  struct Chain {
    std::vector<int> nodes;
    int start = 0, end = 0;
  };
  std::vector<Chain> chains;
  for (int head = 0; head < n; ++head) {
    if (has_prev[static_cast<size_t>(head)]) continue;
    Chain chain;
    for (int v = head; v >= 0; v = next[static_cast<size_t>(v)]) chain.nodes.push_back(v);
    chain.start = level[static_cast<size_t>(head)];
    chain.end = level[static_cast<size_t>(chain.nodes.back())];
    chains.push_back(std::move(chain));
  }
  // Longest chains first among those starting together, so the main line gets stream 0.
  std::stable_sort(chains.begin(), chains.end(), [](const Chain& a, const Chain& b) {
    if (a.start != b.start) return a.start < b.start;
    return a.nodes.size() > b.nodes.size();
  });
  std::vector<int> stream_end;   // per stream: last level its chains occupy
  std::vector<size_t> load;      // per stream: nodes assigned
  Schedule schedule = schedule_serial(dag);
  for (const Chain& chain : chains) {
    int pick = -1;
    for (size_t s = 0; s < stream_end.size(); ++s) {  // a stream that is free again, the latest freed
      if (stream_end[s] < chain.start && (pick < 0 || stream_end[s] > stream_end[static_cast<size_t>(pick)])) {
        pick = static_cast<int>(s);
      }
    }
    if (pick < 0 && static_cast<int>(stream_end.size()) < max_streams) {
      pick = static_cast<int>(stream_end.size());
      stream_end.push_back(-1);
      load.push_back(0);
    }
    if (pick < 0) {
      pick = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    }
    stream_end[static_cast<size_t>(pick)] = std::max(stream_end[static_cast<size_t>(pick)], chain.end);
    load[static_cast<size_t>(pick)] += chain.nodes.size();
    for (int v : chain.nodes) schedule.stream[static_cast<size_t>(v)] = pick;
  }
  return schedule;
}

}  // namespace braid::plan_detail
