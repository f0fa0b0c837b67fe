// Note [Choosing a plan through noise]
//
// The auto policy must never pick a plan slower than serial, also on a busy host. A
// host under load delays graph launches at random: a run timed while the launching
// thread was descheduled looks slow, whichever plan it was. Timing each candidate in one
// block (all of serial, then all of the next plan) lets a burst of load fall on one
// candidate only, and a median of that block then ranks plans by luck (issue 13,
// bench/NOTES.md). So:
//
// - candidates are timed in rounds, every candidate once per round, in an order that
//   rotates from round to round: a burst or a drift of the clocks falls on all of them;
// - each candidate is compared with serial *within* a round (a paired ratio), so what
//   slowed the whole round cancels out;
// - a candidate wins only when the median of its ratios is below 1 - margin, it beat
//   serial in most rounds (a sign test) AND its mean ratio is below 1 (the rounds it
//   lost count by how much): a plan that one lucky round made look fast does not pass,
//   and one that is fast usually but much slower sometimes rarely does. Otherwise
//   serial stays.
//
// The same judgement runs at run time on pairs of sampled steps (PlanGuard).
// This file is plain data and arithmetic: tests drive it with an injected timer.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace braid::autotune {

struct ChoiceRule {
  double margin = 0.01;           // the median ratio must be below 1 - margin
  double min_win_fraction = 0.75;  // share of rounds the candidate must win
};

struct Verdict {
  double median_ratio = 0;  // candidate / serial, median over the paired rounds
  double mean_ratio = 0;    // the same, mean
  double win_fraction = 0;  // share of rounds in which the candidate was faster
  bool beats_serial = false;
};

// Paired samples of one candidate against serial (same length, one pair per round).
Verdict judge(const std::vector<double>& serial_ms, const std::vector<double>& candidate_ms,
              const ChoiceRule& rule);

// samples[c][r]: candidate c's time in round r; candidate 0 is serial; an empty row is a
// candidate that could not run. Returns the winner: the candidate with the lowest median
// ratio among those that beat serial, else 0. verdicts (if given) gets one per candidate.
size_t choose(const std::vector<std::vector<double>>& samples, const ChoiceRule& rule,
              std::vector<Verdict>* verdicts = nullptr);

// Samples every live candidate once per round, for `rounds` rounds, starting each round
// one candidate further along (see the note). sample(c) returns candidate c's time.
std::vector<std::vector<double>> sample_interleaved(const std::vector<bool>& live, int rounds,
                                                    const std::function<double(size_t)>& sample);

}  // namespace braid::autotune
