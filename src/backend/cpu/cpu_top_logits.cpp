// TopLogits: the best logits of each row and their token ids, for a sampler that needs
// no more of the row (see ops::top_logits).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace braid::cpu {
namespace {

struct Scored {
  float logit;
  int32_t id;
};

// Larger logits first, equal ones (-0 and +0 too) by the lower id, NaN last.
bool ranks_before(const Scored& a, const Scored& b) {
  if (std::isnan(b.logit)) return !std::isnan(a.logit) || a.id < b.id;
  if (std::isnan(a.logit)) return false;
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

// One pass over the row with a heap of the best so far, whose front is the worst of them;
// once it is full, a run of 16 logits all below that worst is passed over with one maximum
// (a NaN in the run is ignored by it, and ranks below everything anyway; with a NaN the
// worst kept, no run is below it).
void top_logits_row(const NodeArgs& args, int64_t row) {
  const auto k = static_cast<size_t>(args.node.params.i[0]);
  const auto columns = static_cast<size_t>(args.node.params.i[1]);
  const auto* x = reinterpret_cast<const float*>(args.src[0].row(row));
  std::vector<Scored> best;
  best.reserve(k);
  auto consider = [&](size_t i) {
    const Scored c{x[i], static_cast<int32_t>(i)};
    if (best.size() < k) {
      best.push_back(c);
      std::push_heap(best.begin(), best.end(), ranks_before);
    } else if (ranks_before(c, best.front())) {
      std::pop_heap(best.begin(), best.end(), ranks_before);
      best.back() = c;
      std::push_heap(best.begin(), best.end(), ranks_before);
    }
  };
  constexpr size_t kRun = 16;
  size_t i = 0;
  for (; i + kRun <= columns; i += kRun) {
    if (best.size() == k) {
      float run_max = x[i];
      for (size_t j = 1; j < kRun; ++j) run_max = std::max(run_max, x[i + j]);
      if (run_max < best.front().logit) continue;
    }
    for (size_t j = 0; j < kRun; ++j) consider(i + j);
  }
  for (; i < columns; ++i) consider(i);
  std::sort_heap(best.begin(), best.end(), ranks_before);
  // out [k, 2, n]: row (0, t) holds the values, row (1, t) the ids.
  auto* values = reinterpret_cast<float*>(args.out.row(0, row));
  auto* ids = reinterpret_cast<float*>(args.out.row(1, row));
  for (size_t j = 0; j < k; ++j) {
    values[j] = best[j].logit;
    ids[j] = static_cast<float>(best[j].id);
  }
}

void compute_top_logits(const NodeArgs& args) {
  for (int64_t t = 0; t < args.src[0].ne[1]; ++t) top_logits_row(args, t);
}

}  // namespace braid::cpu
