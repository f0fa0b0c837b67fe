// The arithmetic of Note [Choosing a plan through noise] (plan_choice.h).
#include "backend/plan_choice.h"

#include <fmt/format.h>

#include "braid/backend.h"
#include "braid/graph.h"

namespace braid::autotune {

Verdict judge(const std::vector<double>& serial_ms, const std::vector<double>& candidate_ms,
              const ChoiceRule& rule) {
  if (serial_ms.size() != candidate_ms.size() || serial_ms.empty()) {
    throw Error(fmt::format("plan choice: {} serial and {} candidate samples (need equal, at least one)",
                            serial_ms.size(), candidate_ms.size()));
  }
  std::vector<double> ratios;
  int wins = 0;
  for (size_t r = 0; r < serial_ms.size(); ++r) {
    if (!(serial_ms[r] > 0) || !(candidate_ms[r] > 0)) continue;  // a failed sample says nothing
    ratios.push_back(candidate_ms[r] / serial_ms[r]);
    if (candidate_ms[r] < serial_ms[r]) ++wins;
  }
  Verdict v;
  if (ratios.empty()) return v;  // no evidence: serial stays
  double sum = 0;
  for (double r : ratios) sum += r;
  v.median_ratio = median(ratios);
  v.mean_ratio = sum / static_cast<double>(ratios.size());
  v.win_fraction = static_cast<double>(wins) / static_cast<double>(ratios.size());
  v.beats_serial = v.median_ratio < 1.0 - rule.margin && v.mean_ratio < 1.0 &&
                   v.win_fraction >= rule.min_win_fraction;
  return v;
}

size_t choose(const std::vector<std::vector<double>>& samples, const ChoiceRule& rule,
              std::vector<Verdict>* verdicts) {
  if (samples.empty() || samples[0].empty()) throw Error("plan choice: serial has no samples");
  size_t best = 0;
  double best_ratio = 1.0;
  std::vector<Verdict> all(samples.size());
  all[0].median_ratio = 1.0;
  for (size_t c = 1; c < samples.size(); ++c) {
    if (samples[c].empty()) continue;
    all[c] = judge(samples[0], samples[c], rule);
    if (all[c].beats_serial && all[c].median_ratio < best_ratio) {
      best = c;
      best_ratio = all[c].median_ratio;
    }
  }
  if (verdicts) *verdicts = std::move(all);
  return best;
}

std::vector<std::vector<double>> sample_interleaved(const std::vector<bool>& live, int rounds,
                                                    const std::function<double(size_t)>& sample) {
  if (rounds < 1) throw Error(fmt::format("plan choice: {} rounds (at least 1)", rounds));
  const size_t n = live.size();
  std::vector<std::vector<double>> samples(n);
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < n; ++k) {
      const size_t c = (k + static_cast<size_t>(r)) % n;
      if (live[c]) samples[c].push_back(sample(c));
    }
  }
  return samples;
}

}  // namespace braid::autotune
