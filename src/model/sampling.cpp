#include "braid/sampling.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "braid/graph.h"

namespace braid {

int32_t argmax(std::span<const float> logits) {
  BRAID_ASSERT(!logits.empty());
  // max_element returns the first of equal maxima: the lowest id.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void penalize_repetitions(std::vector<float>& logits, std::span<const int32_t> recent, float penalty) {
  if (penalty == 1.0f) return;
  std::unordered_set<int32_t> seen;
  for (int32_t id : recent) {
    // Each token once, however often it occurred: the penalty marks presence.
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || !seen.insert(id).second) continue;
    float& logit = logits[static_cast<size_t>(id)];
    logit = logit > 0 ? logit / penalty : logit * penalty;
  }
}

void penalize_chosen(std::vector<float>& logits, const std::unordered_map<int32_t, int>& times, float presence,
                     float frequency) {
  for (const auto& [id, n] : times) {
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) {
      logits[static_cast<size_t>(id)] -= presence + frequency * static_cast<float>(n);
    }
  }
}

std::vector<TokenProbability> to_probabilities(std::span<const float> logits, float temperature) {
  BRAID_ASSERT(temperature > 0 && !logits.empty());
  const float max_logit = logits[static_cast<size_t>(argmax(logits))];
  std::vector<TokenProbability> out(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    // Subtracting the maximum keeps exp() finite; the result is the same softmax.
    const double e = std::exp(static_cast<double>(logits[i] - max_logit) / temperature);
    out[i] = {static_cast<int32_t>(i), static_cast<float>(e)};
    sum += e;
  }
  for (auto& c : out) c.p = static_cast<float>(c.p / sum);
  std::sort(out.begin(), out.end(), [](const TokenProbability& a, const TokenProbability& b) {
    return a.p > b.p || (a.p == b.p && a.id < b.id);
  });
  return out;
}

namespace {

void renormalize(std::vector<TokenProbability>& candidates) {
  double sum = 0;
  for (const auto& c : candidates) sum += c.p;
  if (sum <= 0) return;
  for (auto& c : candidates) c.p = static_cast<float>(c.p / sum);
}

}  // namespace

void keep_top_k(std::vector<TokenProbability>& candidates, int k) {
  if (k <= 0 || static_cast<size_t>(k) >= candidates.size()) return;
  candidates.resize(static_cast<size_t>(k));
  renormalize(candidates);
}

void keep_top_p(std::vector<TokenProbability>& candidates, float p) {
  if (p >= 1.0f || candidates.empty()) return;
  double mass = 0;
  size_t keep = 0;
  while (keep < candidates.size()) {
    mass += candidates[keep].p;
    ++keep;
    if (mass >= p) break;
  }
  candidates.resize(keep);
  renormalize(candidates);
}

int32_t draw(const std::vector<TokenProbability>& candidates, std::mt19937_64& rng) {
  BRAID_ASSERT(!candidates.empty());
  double total = 0;
  for (const auto& c : candidates) total += c.p;
  // 53 random bits make a double in [0, 1) the same way on every platform.
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0;
  for (const auto& c : candidates) {
    cumulative += c.p;
    if (u < cumulative) return c.id;
  }
  return candidates.back().id;  // u within rounding of the total
}

namespace {

// The order of candidates: a before b when a has the higher value in .p (a logit or a
// probability), then the lower id (to_probabilities' order).
bool more_likely(const TokenProbability& a, const TokenProbability& b) {
  return a.p > b.p || (a.p == b.p && a.id < b.id);
}

// The `count` tokens of highest logit, most likely first (logits in .p), in one pass: a
// heap of the best so far whose front is the worst of them. Once the heap is full, a run
// of 16 logits all below its worst is passed over with one (vectorized) maximum.
std::vector<TokenProbability> best_logits(std::span<const float> logits, size_t count) {
  std::vector<TokenProbability> best;
  best.reserve(count);
  auto consider = [&](size_t i) {
    const TokenProbability c{static_cast<int32_t>(i), logits[i]};
    if (best.size() < count) {
      best.push_back(c);
      std::push_heap(best.begin(), best.end(), more_likely);
    } else if (more_likely(c, best.front())) {
      std::pop_heap(best.begin(), best.end(), more_likely);
      best.back() = c;
      std::push_heap(best.begin(), best.end(), more_likely);
    }
  };
  constexpr size_t kRun = 16;
  size_t i = 0;
  for (; i + kRun <= logits.size(); i += kRun) {
    if (best.size() == count) {
      float run_max = logits[i];
      for (size_t j = 1; j < kRun; ++j) run_max = std::max(run_max, logits[i + j]);
      if (run_max < best.front().p) continue;
    }
    for (size_t j = 0; j < kRun; ++j) consider(i + j);
  }
  for (; i < logits.size(); ++i) consider(i);
  std::sort_heap(best.begin(), best.end(), more_likely);
  return best;
}

// Moves the shortest prefix of `c` (in more_likely order) whose mass reaches `mass` to the
// front, sorted, and returns its length (at least 1): halving selections (nth_element) find
// where it ends in expected linear time, and only the prefix is sorted.
size_t nucleus_prefix(std::vector<TokenProbability>& c, double mass) {
  size_t lo = 0, hi = c.size();  // the prefix ends in [lo, hi); c[0, lo) belongs to it
  double before = 0;             // mass of c[0, lo)
  while (hi - lo > 64) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(c.begin() + static_cast<std::ptrdiff_t>(lo), c.begin() + static_cast<std::ptrdiff_t>(mid),
                     c.begin() + static_cast<std::ptrdiff_t>(hi), more_likely);
    double upper = before;  // c[lo, mid) are the more likely half
    for (size_t i = lo; i < mid; ++i) upper += c[i].p;
    if (upper >= mass) {
      hi = mid;
    } else {
      before = upper;
      lo = mid;
    }
  }
  std::sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(hi), more_likely);
  double sum = 0;
  size_t keep = 0;
  while (keep < hi && sum < mass) sum += c[keep++].p;
  return std::max<size_t>(keep, 1);
}

// The top_k best logits (in .p, most likely first) as probabilities, cut to top_p.
std::vector<TokenProbability> weigh_best(std::vector<TokenProbability> best, float temperature, float top_p) {
  const double max_logit = best.front().p;  // (the most likely token's)
  for (auto& c : best) c.p = static_cast<float>(std::exp((static_cast<double>(c.p) - max_logit) / temperature));
  renormalize(best);
  keep_top_p(best, top_p);
  return best;
}

}  // namespace

std::vector<TokenProbability> nucleus(std::span<const float> logits, float temperature, int top_k, float top_p) {
  BRAID_ASSERT(temperature > 0 && !logits.empty());
  const size_t vocab = logits.size();
  if (top_k > 0 && static_cast<size_t>(top_k) < vocab) {
    return weigh_best(best_logits(logits, static_cast<size_t>(top_k)), temperature, top_p);
  }
  const double max_logit = logits[static_cast<size_t>(argmax(logits))];
  auto weight = [&](float logit) { return std::exp((static_cast<double>(logit) - max_logit) / temperature); };
  // The softmax as to_probabilities computes it (the same sum, the same roundings), unsorted.
  std::vector<TokenProbability> out(vocab);
  double total = 0;
  for (size_t i = 0; i < vocab; ++i) {
    const double e = weight(logits[i]);
    out[i] = {static_cast<int32_t>(i), static_cast<float>(e)};
    total += e;
  }
  for (auto& c : out) c.p = static_cast<float>(c.p / total);
  if (top_p >= 1.0f) return out;
  out.resize(nucleus_prefix(out, top_p));
  renormalize(out);
  return out;
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  if (options.repeat_penalty <= 0) {
    throw Error(fmt::format("repetition penalty must be positive, got {}", options.repeat_penalty));
  }
  if (options.repeat_last_n < 0) throw Error("repeat_last_n must not be negative");
  if (!std::isfinite(options.presence_penalty) || !std::isfinite(options.frequency_penalty)) {
    throw Error("presence and frequency penalties must be finite");
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw Error("sample: no logits");
  std::span<const float> scores = logits;
  const bool repeat = options_.repeat_penalty != 1.0f && !recent_.empty();
  const bool chosen = counts_chosen() && !chosen_.empty();
  if (repeat || chosen) {
    scratch_.assign(logits.begin(), logits.end());
    if (repeat) penalize_repetitions(scratch_, recent_, options_.repeat_penalty);
    if (chosen) penalize_chosen(scratch_, chosen_, options_.presence_penalty, options_.frequency_penalty);
    scores = scratch_;
  }
  const int32_t token = options_.temperature <= 0
                            ? argmax(scores)
                            : draw(nucleus(scores, options_.temperature, options_.top_k, options_.top_p), rng_);
  if (counts_chosen()) ++chosen_[token];
  return token;
}

bool Sampler::needs_whole_row(int64_t count, int64_t vocabulary) const {
  if (options_.repeat_penalty != 1.0f && options_.repeat_last_n != 0) return true;
  if (counts_chosen()) return true;
  if (options_.temperature <= 0) return count < 1;
  // (With top_k at or past the vocabulary, nucleus weighs the whole softmax instead.)
  return options_.top_k <= 0 || options_.top_k > count || options_.top_k >= vocabulary;
}

int32_t Sampler::sample(const BestLogits& best) {
  const auto count = static_cast<int64_t>(best.logits.size());
  if (best.ids.size() != best.logits.size() || needs_whole_row(count, best.vocabulary)) {
    throw Error(fmt::format("sample: {} best logits of {} do not decide this sampler's token", best.logits.size(),
                            best.vocabulary));
  }
  if (options_.temperature <= 0) return static_cast<int32_t>(best.ids[0]);
  std::vector<TokenProbability> top(static_cast<size_t>(options_.top_k));
  for (size_t i = 0; i < top.size(); ++i) top[i] = {static_cast<int32_t>(best.ids[i]), best.logits[i]};
  return draw(weigh_best(std::move(top), options_.temperature, options_.top_p), rng_);
}

void Sampler::accept(int32_t token) {
  if (options_.repeat_last_n == 0) return;
  recent_.push_back(token);
  if (recent_.size() > static_cast<size_t>(options_.repeat_last_n)) recent_.erase(recent_.begin());
}

}  // namespace braid
