// The validator: an independent check of a plan against its graph. It shares no code with
// the policies or the allocator (except the one-line list of element-wise ops): it
// recomputes dependencies from the graph, happens-before by plain reachability over the
// steps (not the vector clocks), and the arena's live ranges from scratch.
//
// The same checks serve a persistent schedule (persistent_schedule.h): there the edges of
// happens-before are the schedule's waits instead of stream order and events.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>

#include "plan/plan_internal.h"

namespace braid {
namespace {

class Checker {
 public:
  // schedule_waits: per step, the earlier steps it waits for (a persistent schedule's
  // happens-before edges); null: the plan's streams and events.
  Checker(const Graph& graph, const Plan& plan, const std::vector<std::vector<int>>* schedule_waits = nullptr)
      : graph_(graph), plan_(plan), schedule_waits_(schedule_waits) {}

  ValidationReport run() {
    if (!graph_.finalized()) {
      fail("the graph is not finalized");
      return std::move(report_);
    }
    if (!check_steps()) return std::move(report_);
    if (schedule_waits_) {
      if (!check_schedule_waits()) return std::move(report_);
    } else {
      check_events();
    }
    build_reachability();
    check_dependencies();
    check_state_writes();
    check_arena();
    return std::move(report_);
  }

 private:
  template <typename... Args>
  void fail(fmt::format_string<Args...> format, Args&&... args) {
    report_.ok = false;
    report_.problems.push_back(fmt::format(format, std::forward<Args>(args)...));
  }

  std::string describe_step(int s) const {
    const PlanStep& step = plan_.steps[static_cast<size_t>(s)];
    return fmt::format("{} (step {}, stream {})", graph_[step.node].name, s, step.stream);
  }

  // Every compute node exactly once, nothing else, streams in range. Without this the
  // other checks have nothing sound to stand on.
  bool check_steps() {
    const int n = static_cast<int>(plan_.steps.size());
    step_of_.assign(static_cast<size_t>(graph_.tensor_count()), -1);
    bool ok = true;
    if (plan_.stream_count < 1) {
      fail("stream_count is {}", plan_.stream_count);
      ok = false;
    }
    for (int s = 0; s < n; ++s) {
      const PlanStep& step = plan_.steps[static_cast<size_t>(s)];
      if (step.node < 0 || step.node >= graph_.tensor_count() || !is_compute_op(graph_[step.node].op)) {
        fail("step {} names tensor {}, which is not a compute node", s, step.node);
        ok = false;
        continue;
      }
      if (step_of_[static_cast<size_t>(step.node)] >= 0) {
        fail("{} appears twice (steps {} and {})", graph_[step.node].name, step_of_[static_cast<size_t>(step.node)], s);
        ok = false;
      }
      step_of_[static_cast<size_t>(step.node)] = s;
      if (step.stream < 0 || step.stream >= plan_.stream_count) {
        fail("{} runs on stream {}, outside 0..{}", describe_step(s), step.stream, plan_.stream_count - 1);
        ok = false;
      }
    }
    for (TensorId node : graph_.compute_nodes()) {
      if (step_of_[static_cast<size_t>(node)] < 0) {
        fail("compute node {} has no step", graph_[node].name);
        ok = false;
      }
    }
    return ok;
  }

  void check_events() {
    recorded_at_.assign(static_cast<size_t>(std::max(0, plan_.event_count)), -1);
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      const int e = plan_.steps[static_cast<size_t>(s)].record;
      if (e < 0) continue;
      if (e >= plan_.event_count) {
        fail("{} records event {}, outside 0..{}", describe_step(s), e, plan_.event_count - 1);
      } else if (recorded_at_[static_cast<size_t>(e)] >= 0) {
        fail("event {} is recorded twice: by {} and by {}", e, describe_step(recorded_at_[static_cast<size_t>(e)]),
             describe_step(s));
      } else {
        recorded_at_[static_cast<size_t>(e)] = s;
      }
    }
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      for (int e : plan_.steps[static_cast<size_t>(s)].waits) {
        if (e < 0 || e >= plan_.event_count) {
          fail("{} waits on event {}, outside 0..{}", describe_step(s), e, plan_.event_count - 1);
        } else if (recorded_at_[static_cast<size_t>(e)] < 0 || recorded_at_[static_cast<size_t>(e)] >= s) {
          fail("{} waits on event {} before any step records it", describe_step(s), e);
        }
      }
    }
  }

  // A schedule's waits name earlier steps only (which is also what makes it deadlock-free).
  bool check_schedule_waits() {
    const size_t n = plan_.steps.size();
    if (schedule_waits_->size() != n) {
      fail("the schedule has waits for {} steps, the plan {} steps", schedule_waits_->size(), n);
      return false;
    }
    bool ok = true;
    for (size_t s = 0; s < n; ++s) {
      for (int w : (*schedule_waits_)[s]) {
        if (w < 0 || static_cast<size_t>(w) >= s) {
          fail("{} waits for step {}, which is not an earlier step", describe_step(static_cast<int>(s)), w);
          ok = false;
        }
      }
    }
    return ok;
  }

  // before_[b] holds every step that completes before step b starts: the previous step on
  // b's stream and the recorders of b's waits (or the schedule's waits), transitively.
  void build_reachability() {
    const size_t n = plan_.steps.size();
    words_ = (n + 63) / 64;
    before_.assign(n * words_, 0);
    std::vector<int> last_on_stream(static_cast<size_t>(plan_.stream_count), -1);
    auto absorb = [&](size_t into, int from) {
      uint64_t* dst = &before_[into * words_];
      const uint64_t* src = &before_[static_cast<size_t>(from) * words_];
      for (size_t w = 0; w < words_; ++w) dst[w] |= src[w];
      dst[static_cast<size_t>(from) / 64] |= uint64_t{1} << (from % 64);
    };
    if (schedule_waits_) {
      for (size_t s = 0; s < n; ++s) {
        for (int w : (*schedule_waits_)[s]) absorb(s, w);
      }
      return;
    }
    for (size_t s = 0; s < n; ++s) {
      const PlanStep& step = plan_.steps[s];
      int& last = last_on_stream[static_cast<size_t>(step.stream)];
      if (last >= 0) absorb(s, last);
      for (int e : step.waits) {
        if (e < 0 || e >= plan_.event_count) continue;
        const int r = recorded_at_[static_cast<size_t>(e)];
        if (r >= 0 && static_cast<size_t>(r) < s) absorb(s, r);
      }
      last = static_cast<int>(s);
    }
  }

  bool before(int a, int b) const {
    return a != b && (before_[static_cast<size_t>(b) * words_ + static_cast<size_t>(a) / 64] >> (a % 64) & 1);
  }

  void check_dependencies() {
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      const TensorId node = plan_.steps[static_cast<size_t>(s)].node;
      for (TensorId src : graph_[node].src) {
        TensorId p = src;  // the compute node whose run makes src ready
        while (is_view_op(graph_[p].op)) p = graph_[p].view_source;
        if (!is_compute_op(graph_[p].op)) continue;
        const int ps = step_of_[static_cast<size_t>(p)];
        if (ps > s) {
          fail("steps are not in topological order: {} reads {}, which runs later at {}", describe_step(s),
               graph_[src].name, describe_step(ps));
        } else if (!before(ps, s)) {
          fail("{} reads {} produced by {} on another stream, with no wait that orders them", describe_step(s),
               graph_[src].name, describe_step(ps));
        }
      }
    }
  }

  // A KvWrite overwrites its state in place: every other step touching the same state
  // must be ordered against it (either way round).
  void check_state_writes() {
    std::map<TensorId, std::vector<std::pair<int, bool>>> touches;  // state root -> (step, writes)
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      const Tensor& t = graph_[plan_.steps[static_cast<size_t>(s)].node];
      if (t.op == Op::KvWrite) touches[graph_.storage_root(t.id)].emplace_back(s, true);
    }
    if (touches.empty()) return;
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      for (TensorId src : graph_[plan_.steps[static_cast<size_t>(s)].node].src) {
        auto it = touches.find(graph_.storage_root(src));
        if (it != touches.end()) it->second.emplace_back(s, false);
      }
    }
    for (const auto& [root, list] : touches) {
      for (const auto& [writer, writes] : list) {
        if (!writes) continue;
        for (const auto& [other, unused] : list) {
          if (other != writer && !before(writer, other) && !before(other, writer)) {
            fail("{} writes {} in place while {} touches it, and the two are not ordered", describe_step(writer),
                 graph_[root].name, describe_step(other));
          }
        }
      }
    }
  }

  bool should_be_in_arena(TensorId id) const {
    const Tensor& t = graph_[id];
    return is_compute_op(t.op) && t.op != Op::KvWrite && t.view_source == kNoTensor &&
           step_of_[static_cast<size_t>(id)] >= 0;
  }

  void check_arena() {
    if (plan_.arena_offset.size() != static_cast<size_t>(graph_.tensor_count())) {
      fail("arena_offset has {} entries for {} tensors", plan_.arena_offset.size(), graph_.tensor_count());
      return;
    }
    // Users of each arena tensor: producer and every reader, looking through views.
    std::vector<std::vector<int>> users(static_cast<size_t>(graph_.tensor_count()));
    std::vector<TensorId> placed;
    output_root_.assign(static_cast<size_t>(graph_.tensor_count()), 0);
    for (TensorId out : graph_.outputs()) output_root_[static_cast<size_t>(graph_.storage_root(out))] = 1;
    for (TensorId id = 0; id < graph_.tensor_count(); ++id) {
      const int64_t offset = plan_.arena_offset[static_cast<size_t>(id)];
      if (!should_be_in_arena(id)) {
        if (offset != -1) fail("{} is not an arena tensor but has offset {}", graph_[id].name, offset);
        continue;
      }
      const size_t bytes = graph_[id].bytes();
      if (offset < 0) {
        fail("{} has no arena offset", graph_[id].name);
      } else if (static_cast<size_t>(offset) % kArenaAlignment != 0) {
        fail("{} at offset {} is not {}-byte aligned", graph_[id].name, offset, kArenaAlignment);
      } else if (static_cast<size_t>(offset) + bytes > plan_.arena_bytes) {
        fail("{} (bytes [{}, {})) ends past the arena's {} bytes", graph_[id].name, offset,
             static_cast<size_t>(offset) + bytes, plan_.arena_bytes);
      } else {
        placed.push_back(id);
        users[static_cast<size_t>(id)].push_back(step_of_[static_cast<size_t>(id)]);
      }
    }
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      for (TensorId src : graph_[plan_.steps[static_cast<size_t>(s)].node].src) {
        const TensorId root = graph_.storage_root(src);
        if (!users[static_cast<size_t>(root)].empty()) users[static_cast<size_t>(root)].push_back(s);
      }
    }
    std::sort(placed.begin(), placed.end(), [&](TensorId a, TensorId b) {
      return plan_.arena_offset[static_cast<size_t>(a)] < plan_.arena_offset[static_cast<size_t>(b)];
    });
    for (size_t i = 0; i < placed.size(); ++i) {
      const TensorId a = placed[i];
      const int64_t a_end = plan_.arena_offset[static_cast<size_t>(a)] + static_cast<int64_t>(graph_[a].bytes());
      for (size_t j = i + 1; j < placed.size(); ++j) {
        const TensorId b = placed[j];
        const int64_t b_offset = plan_.arena_offset[static_cast<size_t>(b)];
        if (b_offset >= a_end) break;
        if (graph_[b].bytes() == 0 || graph_[a].bytes() == 0) continue;
        check_overlap(a, b, users);
      }
    }
  }

  // Two tensors share bytes: legal only if one's whole life precedes the other's producer.
  void check_overlap(TensorId a, TensorId b, const std::vector<std::vector<int>>& users) {
    const int64_t lo = std::max(plan_.arena_offset[static_cast<size_t>(a)], plan_.arena_offset[static_cast<size_t>(b)]);
    const int64_t hi = std::min(plan_.arena_offset[static_cast<size_t>(a)] + static_cast<int64_t>(graph_[a].bytes()),
                                plan_.arena_offset[static_cast<size_t>(b)] + static_cast<int64_t>(graph_[b].bytes()));
    // first: the tensor produced earlier in the step list (the one that must die first).
    const bool a_first = step_of_[static_cast<size_t>(a)] < step_of_[static_cast<size_t>(b)];
    const TensorId first = a_first ? a : b;
    const TensorId second = a_first ? b : a;
    if (output_root_[static_cast<size_t>(first)]) {
      fail("output {} shares bytes [{}, {}) with {}, produced later; outputs are never reused", graph_[first].name,
           lo, hi, graph_[second].name);
      return;
    }
    const int producer = step_of_[static_cast<size_t>(second)];
    for (int u : users[static_cast<size_t>(first)]) {
      if (u == producer && in_place_ok(first, second)) continue;
      if (!before(u, producer)) {
        fail("{} and {} share bytes [{}, {}), but {} (which {} {}) is not ordered before {}, which produces {}",
             graph_[first].name, graph_[second].name, lo, hi, describe_step(u),
             u == step_of_[static_cast<size_t>(first)] ? "produces" : "reads", graph_[first].name,
             describe_step(producer), graph_[second].name);
        return;
      }
    }
  }

  // An element-wise op may overwrite a direct input of its shape and type in place.
  bool in_place_ok(TensorId input, TensorId output) const {
    const Tensor& out = graph_[output];
    const Tensor& in = graph_[input];
    return plan_detail::is_elementwise(out.op) && in.ne == out.ne && in.type == out.type &&
           plan_.arena_offset[static_cast<size_t>(input)] == plan_.arena_offset[static_cast<size_t>(output)] &&
           std::find(out.src.begin(), out.src.end(), input) != out.src.end();
  }

  const Graph& graph_;
  const Plan& plan_;
  const std::vector<std::vector<int>>* schedule_waits_;
  ValidationReport report_;
  std::vector<int> step_of_;
  std::vector<int> recorded_at_;
  std::vector<char> output_root_;  // tensors whose memory an output (or a view of it) is read from
  size_t words_ = 0;
  std::vector<uint64_t> before_;
};

}  // namespace

ValidationReport validate(const Graph& graph, const Plan& plan) { return Checker(graph, plan).run(); }

namespace plan_detail {
ValidationReport validate_with_waits(const Graph& graph, const Plan& plan,
                                     const std::vector<std::vector<int>>& waits) {
  return Checker(graph, plan, &waits).run();
}
}  // namespace plan_detail

}  // namespace braid
