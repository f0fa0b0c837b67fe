// Note [Choosing a plan through noise] under an injected timer: a noisy, bursty host
// never makes auto pick a plan slower than serial beyond the margin, and a plan that
// really is faster still wins. Then the run-time guard, on scripted step times.
#include <gtest/gtest.h>

#include <random>

#include "backend/plan_choice.h"
#include "braid/graph.h"
#include "braid/plan_guard.h"

namespace braid {
namespace {

using autotune::ChoiceRule;

// A device whose candidates take `true_ms` each, seen through a host that sometimes
// stalls: with probability `burst`, a sample is inflated by up to `stall` times.
struct NoisyTimer {
  std::vector<double> true_ms;
  double jitter = 0.03;  // relative, uniform +-
  double burst = 0.0;
  double stall = 1.0;
  std::mt19937 random{7};
  // Candidate `c` is slower by `slow_factor` with probability `slow_sometimes`.
  size_t flaky = 0;
  double slow_sometimes = 0.0;
  double slow_factor = 1.0;

  double operator()(size_t c) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double ms = true_ms[c] * (1.0 + jitter * (2 * u(random) - 1));
    if (c == flaky && u(random) < slow_sometimes) ms *= slow_factor;
    if (u(random) < burst) ms *= 1.0 + (stall - 1.0) * u(random);
    return ms;
  }
};

size_t pick(NoisyTimer& timer, int rounds = 7) {
  const std::vector<bool> live(timer.true_ms.size(), true);
  const auto samples = autotune::sample_interleaved(live, rounds, std::ref(timer));
  return autotune::choose(samples, ChoiceRule{});
}

TEST(PlanChoice, AClearlyFasterPlanWinsOnAQuietHost) {
  NoisyTimer timer{{1.0, 0.9, 1.4}};
  EXPECT_EQ(pick(timer), 1u);
}

TEST(PlanChoice, SerialStaysWhenNothingBeatsItBeyondTheMargin) {
  NoisyTimer timer{{1.0, 0.998, 1.001}};
  timer.jitter = 0.002;
  EXPECT_EQ(pick(timer), 0u);
}

TEST(PlanChoice, BurstsOfHostLoadNeverPickASlowerPlan) {
  // The issue-13 situation: candidate 2 is 1.5x slower than serial, the host stalls a
  // third of the samples by up to 3x. Over many seeds, the choice is never a plan slower
  // than serial by more than the margin.
  int faster_found = 0;
  for (unsigned seed = 1; seed <= 500; ++seed) {
    NoisyTimer timer{{1.0, 0.93, 1.5, 1.05}};
    timer.random.seed(seed);
    timer.burst = 0.33;
    timer.stall = 3.0;
    const size_t chosen = pick(timer);
    ASSERT_LE(timer.true_ms[chosen], timer.true_ms[0] * 1.01) << "seed " << seed << " chose " << chosen;
    if (chosen == 1) ++faster_found;
  }
  // Noise this heavy hides a 7% gain in many tunings: serial is then kept, as it must be.
  EXPECT_GT(faster_found, 100) << "the truly faster plan should still win often";
}

TEST(PlanChoice, OneHugeOutlierInSerialDoesNotHandTheWinToAnother) {
  // Block timing would take serial's median from an unlucky block; paired rounds do not.
  std::vector<std::vector<double>> samples = {
      {1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 1.0},       // serial, one round stalled
      {1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2}};      // slower everywhere else
  std::vector<autotune::Verdict> verdicts;
  EXPECT_EQ(autotune::choose(samples, ChoiceRule{}, &verdicts), 0u);
  EXPECT_NEAR(verdicts[1].median_ratio, 1.2, 1e-9);
  EXPECT_NEAR(verdicts[1].win_fraction, 1.0 / 7, 1e-9);
  EXPECT_FALSE(verdicts[1].beats_serial);
}

TEST(PlanChoice, APlanFastOnlySometimesIsRarelyChosen) {
  // Candidate 1 is 10% faster, but 40% of its samples take 1.6x: on average 12% slower.
  // It passes only when (nearly) every round happened to catch it fast: a few percent of
  // tunings (0.6^9 + 9 * 0.4 * 0.6^8 = 7% for 9 rounds), which the run-time guard then
  // catches. Over 400 seeds it must stay near that rate.
  int chosen = 0;
  for (unsigned seed = 1; seed <= 400; ++seed) {
    NoisyTimer timer{{1.0, 0.9}};
    timer.random.seed(seed);
    timer.flaky = 1;
    timer.slow_sometimes = 0.4;
    timer.slow_factor = 1.6;
    chosen += pick(timer, 9) == 1;
  }
  EXPECT_LT(chosen, 48) << "chosen in " << chosen << " of 400 tunings";
}

TEST(PlanChoice, CandidatesThatCouldNotRunAreSkipped) {
  const std::vector<bool> live = {true, false, true};
  int sampled_dead = 0;
  const auto samples = autotune::sample_interleaved(live, 3, [&](size_t c) {
    if (c == 1) ++sampled_dead;
    return c == 2 ? 0.5 : 1.0;
  });
  EXPECT_EQ(sampled_dead, 0);
  EXPECT_TRUE(samples[1].empty());
  EXPECT_EQ(autotune::choose(samples, ChoiceRule{}), 2u);
}

TEST(PlanChoice, RoundsRotateTheOrder) {
  std::vector<size_t> order;
  autotune::sample_interleaved({true, true, true}, 3, [&](size_t c) {
    order.push_back(c);
    return 1.0;
  });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 1, 2, 0, 2, 0, 1}));
}

TEST(PlanChoice, BadSampleCountsAreErrors) {
  EXPECT_THROW(autotune::judge({1.0}, {1.0, 2.0}, ChoiceRule{}), Error);
  EXPECT_THROW(autotune::choose({{}}, ChoiceRule{}), Error);
  EXPECT_THROW(autotune::sample_interleaved({true}, 0, [](size_t) { return 1.0; }), Error);
}

// Drives a guard with scripted times: serial steps take serial_ms, chosen ones chosen_ms.
int runs_until_fallback(PlanGuard& guard, double serial_ms, double chosen_ms, int max_runs) {
  for (int i = 0; i < max_runs; ++i) {
    switch (guard.next()) {
      case PlanGuard::Action::TimeSerial: guard.record(serial_ms); break;
      case PlanGuard::Action::TimeChosen: guard.record(chosen_ms); break;
      case PlanGuard::Action::RunChosen: break;
    }
    if (guard.fell_back()) return i + 1;
  }
  return -1;
}

TEST(PlanGuard, KeepsAPlanThatStillWins) {
  PlanGuard guard(GuardOptions{});
  EXPECT_EQ(runs_until_fallback(guard, 1.0, 0.9, 2000), -1);
  EXPECT_NEAR(guard.last_ratio(), 0.9, 1e-9);
}

TEST(PlanGuard, FallsBackWhenTheChosenPlanStopsWinning) {
  GuardOptions options;
  PlanGuard guard(options);
  EXPECT_EQ(runs_until_fallback(guard, 1.0, 0.9, 200), -1);
  // Conditions change: the chosen plan now takes 1.3x serial's time. The guard notices
  // within a window of pairs (each pair `period` runs apart).
  const int runs = runs_until_fallback(guard, 1.0, 1.3, 2000);
  ASSERT_GT(runs, 0);
  EXPECT_LE(runs, options.period * (options.window + 1));
  EXPECT_NEAR(guard.last_ratio(), 1.3, 1e-9);
  // From then on it only runs (the runner has switched to serial).
  for (int i = 0; i < 100; ++i) EXPECT_EQ(guard.next(), PlanGuard::Action::RunChosen);
}

TEST(PlanGuard, OffMeansNoTimedSteps) {
  GuardOptions options;
  options.enabled = false;
  PlanGuard guard(options);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(guard.next(), PlanGuard::Action::RunChosen);
}

TEST(PlanGuard, TimesOnePairPerPeriod) {
  GuardOptions options;
  options.period = 8;
  PlanGuard guard(options);
  int serial = 0, chosen = 0;
  for (int i = 0; i < 80; ++i) {
    const auto action = guard.next();
    serial += action == PlanGuard::Action::TimeSerial;
    chosen += action == PlanGuard::Action::TimeChosen;
    if (action != PlanGuard::Action::RunChosen) guard.record(1.0);
  }
  EXPECT_EQ(serial, 10);
  EXPECT_EQ(chosen, 10);
  // A short job (a prompt or two) is never timed.
  PlanGuard fresh(options);
  for (int i = 0; i < options.period - 2; ++i) EXPECT_EQ(fresh.next(), PlanGuard::Action::RunChosen);
  EXPECT_THROW(PlanGuard(GuardOptions{true, 2, 5, 0.02}), Error);
}

}  // namespace
}  // namespace braid
