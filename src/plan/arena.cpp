// The activation arena: one buffer, every computed tensor at a byte offset.
//
// Note [Reuse under concurrency]: with several streams, "this tensor's last reader came
// earlier in the step list" no longer means "it has finished". Tensor B may take bytes of
// tensor A only when A's producer and every reader of A (through any view) happen-before
// B's producer. Placement is best-fit among the blocks still live with respect to the
// producing step; outputs stay live for the whole run. Optionally an element-wise op may
// write over an input of its own shape when every other use of that input is done.
#include <algorithm>

#include "plan/plan_internal.h"

namespace braid::plan_detail {
namespace {

size_t align_up(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

struct Block {
  TensorId tensor;
  int64_t offset;
  size_t size;
  uint64_t dead_for;  // streams whose latest step already sees this tensor finished
};

}  // namespace

bool is_elementwise(Op op) {
  return op == Op::Add || op == Op::Mul || op == Op::Scale || op == Op::Silu || op == Op::Swiglu ||
         op == Op::AllReduce;  // (NCCL and the host communicator both reduce in place)
}

void allocate_arena(const Graph& graph, Plan& plan, bool in_place) {
  const HappensBefore order(plan);
  const int steps = static_cast<int>(plan.steps.size());
  const int streams = plan.stream_count;
  plan.arena_offset.assign(static_cast<size_t>(graph.tensor_count()), -1);
  plan.arena_bytes = 0;

  // Users of each arena tensor: its producer first, then every step reading it through any view.
  std::vector<int> step_of(static_cast<size_t>(graph.tensor_count()), -1);
  for (int s = 0; s < steps; ++s) step_of[static_cast<size_t>(plan.steps[static_cast<size_t>(s)].node)] = s;
  auto in_arena = [&](TensorId id) {
    const Tensor& t = graph[id];
    return is_compute_op(t.op) && t.op != Op::KvWrite && t.view_source == kNoTensor &&
           step_of[static_cast<size_t>(id)] >= 0;
  };
  std::vector<std::vector<int>> users(static_cast<size_t>(graph.tensor_count()));
  for (int s = 0; s < steps; ++s) {
    const TensorId node = plan.steps[static_cast<size_t>(s)].node;
    if (in_arena(node)) users[static_cast<size_t>(node)].push_back(s);
    for (TensorId src : graph[node].src) {
      const TensorId root = graph.storage_root(src);
      if (!in_arena(root)) continue;
      auto& list = users[static_cast<size_t>(root)];
      if (list.empty() || list.back() != s) list.push_back(s);
    }
  }
  // Outputs are read after the run, through the memory they live in: a view marked as an
  // output keeps its whole source alive.
  std::vector<char> keeps_alive(static_cast<size_t>(graph.tensor_count()), 0);
  for (TensorId out : graph.outputs()) keeps_alive[static_cast<size_t>(graph.storage_root(out))] = 1;
  auto finished_before = [&](TensorId t, int step, int except) {
    for (int u : users[static_cast<size_t>(t)]) {
      if (u != except && !order.ordered(u, step)) return false;
    }
    return true;
  };

  // A block dead for the latest step of every stream is dead for all later steps and can
  // leave the live list (only tracked up to 64 streams; beyond that blocks just stay).
  const bool can_forget = streams <= 64;
  const uint64_t all_streams = streams >= 64 ? ~uint64_t{0} : (uint64_t{1} << streams) - 1;
  std::vector<Block> live;
  std::vector<const Block*> busy;
  for (int s = 0; s < steps; ++s) {
    const PlanStep& step = plan.steps[static_cast<size_t>(s)];
    const Tensor& t = graph[step.node];
    if (!in_arena(step.node)) continue;
    const size_t size = align_up(t.bytes());
    const uint64_t stream_bit = uint64_t{1} << std::min(step.stream, 63);

    busy.clear();
    for (Block& block : live) {
      if (!keeps_alive[static_cast<size_t>(block.tensor)] && finished_before(block.tensor, s, -1)) {
        block.dead_for |= stream_bit;
      } else {
        busy.push_back(&block);
      }
    }

    int64_t offset = -1;
    if (in_place && is_elementwise(t.op)) {
      for (TensorId src : t.src) {
        const Tensor& input = graph[src];
        // Only a direct input of the same shape and type whose only unfinished use is this step.
        if (!in_arena(src) || keeps_alive[static_cast<size_t>(src)] || input.ne != t.ne || input.type != t.type) continue;
        if (!finished_before(src, s, s)) continue;
        offset = plan.arena_offset[static_cast<size_t>(src)];
        break;
      }
    }
    if (offset < 0) {
      std::sort(busy.begin(), busy.end(), [](const Block* a, const Block* b) { return a->offset < b->offset; });
      int64_t cursor = 0;
      int64_t best_gap = -1;
      for (const Block* block : busy) {
        const int64_t gap = block->offset - cursor;
        if (gap >= static_cast<int64_t>(size) && (best_gap < 0 || gap < best_gap)) {
          best_gap = gap;
          offset = cursor;
        }
        cursor = std::max(cursor, block->offset + static_cast<int64_t>(block->size));
      }
      if (offset < 0) offset = cursor;  // nothing fits between live blocks: after the last one
    }
    plan.arena_offset[static_cast<size_t>(step.node)] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, static_cast<size_t>(offset) + size);
    live.erase(std::remove_if(live.begin(), live.end(), [&](const Block& b) { return can_forget && b.dead_for == all_streams; }),
               live.end());
    live.push_back(Block{step.node, offset, size, 0});
  }
}

}  // namespace braid::plan_detail
