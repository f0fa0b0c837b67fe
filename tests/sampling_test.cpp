// Sampling: greedy, temperature, top-k, top-p, seeds, the repetition penalty and OpenAI's
// presence and frequency penalties.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "braid/graph.h"
#include "braid/sampling.h"
#include "test_support.h"

namespace braid {
namespace {

SamplingOptions options(float temperature, int top_k, float top_p, uint64_t seed) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  o.seed = seed;
  return o;
}

// Logits of a made-up vocabulary for step `step`: varied, with one clear maximum.
std::vector<float> logits_for(uint32_t step, size_t vocab = 500) {
  return test::random_floats(vocab, 1000 + step, -4.0f, 4.0f);
}

TEST(Sampling, ArgmaxTakesTheLowestIdAmongEqualMaxima) {
  EXPECT_EQ(argmax(std::vector<float>{0.5f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-3.0f}), 0);
}

TEST(Sampling, TemperatureZeroOrBelowIsGreedy) {
  for (float temperature : {0.0f, -1.0f}) {
    Sampler sampler(options(temperature, 40, 0.9f, 7));
    for (uint32_t step = 0; step < 50; ++step) {
      const auto logits = logits_for(step);
      EXPECT_EQ(sampler.sample(logits), argmax(logits)) << step;
    }
  }
}

TEST(Sampling, TopKOneIsGreedyAtAnyTemperature) {
  for (float temperature : {0.1f, 1.0f, 5.0f}) {
    Sampler sampler(options(temperature, 1, 1.0f, 11));
    for (uint32_t step = 0; step < 50; ++step) {
      const auto logits = logits_for(step);
      EXPECT_EQ(sampler.sample(logits), argmax(logits)) << temperature << " " << step;
    }
  }
}

std::vector<int32_t> sequence(const SamplingOptions& o, int n) {
  Sampler sampler(o);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(sampler.sample(logits_for(static_cast<uint32_t>(i))));
    sampler.accept(out.back());
  }
  return out;
}

TEST(Sampling, TheSameSeedGivesTheSameSequence) {
  const SamplingOptions a = options(1.5f, 0, 1.0f, 42);
  const auto first = sequence(a, 200);
  EXPECT_EQ(sequence(a, 200), first);
  SamplingOptions b = a;
  b.seed = 43;
  EXPECT_NE(sequence(b, 200), first);
  // A hot temperature over 500 tokens chooses many different ones.
  EXPECT_GT(std::set<int32_t>(first.begin(), first.end()).size(), 50u);
}

TEST(Sampling, ProbabilitiesAreASortedSoftmax) {
  const auto logits = logits_for(3);
  const auto probs = to_probabilities(logits, 1.0f);
  ASSERT_EQ(probs.size(), logits.size());
  double sum = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    sum += probs[i].p;
    if (i > 0) {
      EXPECT_GE(probs[i - 1].p, probs[i].p);
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_EQ(probs[0].id, argmax(logits));
  // The ratio of two probabilities is exp of the logit difference.
  const auto a = static_cast<size_t>(probs[0].id), b = static_cast<size_t>(probs[1].id);
  EXPECT_NEAR(probs[0].p / probs[1].p, std::exp(logits[a] - logits[b]), 1e-3);
  // A lower temperature sharpens the distribution.
  EXPECT_GT(to_probabilities(logits, 0.5f)[0].p, probs[0].p);
  EXPECT_LT(to_probabilities(logits, 2.0f)[0].p, probs[0].p);
}

std::vector<TokenProbability> five_tokens() {
  return {{4, 0.5f}, {1, 0.2f}, {3, 0.15f}, {0, 0.1f}, {2, 0.05f}};
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingTheMass) {
  auto c = five_tokens();
  keep_top_p(c, 0.6f);  // 0.5 < 0.6 <= 0.5 + 0.2
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 4);
  EXPECT_EQ(c[1].id, 1);
  EXPECT_NEAR(c[0].p, 0.5 / 0.7, 1e-6);
  EXPECT_NEAR(c[0].p + c[1].p, 1.0, 1e-6);

  c = five_tokens();
  keep_top_p(c, 0.8f);  // 0.7 < 0.8 <= 0.85
  EXPECT_EQ(c.size(), 3u);
  c = five_tokens();
  keep_top_p(c, 0.3f);  // the most likely token alone already reaches it
  EXPECT_EQ(c.size(), 1u);
  c = five_tokens();
  keep_top_p(c, 1.0f);
  EXPECT_EQ(c.size(), 5u);
}

TEST(Sampling, TopKKeepsTheKMostLikely) {
  auto c = five_tokens();
  keep_top_k(c, 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2].id, 3);
  EXPECT_NEAR(c[0].p, 0.5 / 0.85, 1e-6);
  c = five_tokens();
  keep_top_k(c, 0);
  EXPECT_EQ(c.size(), 5u);
}

TEST(Sampling, DrawsFollowTheProbabilities) {
  std::mt19937_64 rng(5);
  const auto c = five_tokens();
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[draw(c, rng)];
  for (const auto& t : c) EXPECT_NEAR(static_cast<double>(counts[t.id]) / n, t.p, 0.015) << t.id;
}

TEST(Sampling, SamplerDrawsOnlyFromTheNucleus) {
  // Token 7 and 3 hold most of the mass; top-p 0.8 keeps exactly those two.
  std::vector<float> logits(20, 0.0f);
  logits[7] = 6.0f;
  logits[3] = 5.5f;
  const auto probs = to_probabilities(logits, 1.0f);
  ASSERT_GT(probs[0].p + probs[1].p, 0.8f);
  ASSERT_LT(probs[0].p, 0.8f);
  Sampler sampler(options(1.0f, 0, 0.8f, 9));
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[sampler.sample(logits)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[7], counts[3]);
  EXPECT_GT(counts[3], 300);
}

// nucleus (what Sampler draws from, without sorting the vocabulary) keeps the tokens of
// the reference pipeline -- to_probabilities, keep_top_k, keep_top_p -- in the same order,
// with the same probabilities up to float rounding, over many logit vectors (with ties)
// and every kind of option.
TEST(Sampling, NucleusKeepsTheTokensOfTheSortedPipeline) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<float> logits(trial % 2 ? 1000 : 37);
    for (float& l : logits) l = normal(rng);
    if (trial % 4 == 0) {
      for (size_t i = 0; i < logits.size(); i += 3) logits[i] = logits[0];  // ties, broken by id
    }
    for (float temperature : {0.3f, 1.0f, 1.7f}) {
      for (int top_k : {0, 1, 5, 40, 5000}) {
        for (float top_p : {0.2f, 0.9f, 1.0f}) {
          SCOPED_TRACE(testing::Message() << "trial " << trial << " T " << temperature << " k " << top_k << " p " << top_p);
          std::vector<TokenProbability> expected = to_probabilities(logits, temperature);
          keep_top_k(expected, top_k);
          keep_top_p(expected, top_p);
          std::vector<TokenProbability> got = nucleus(logits, temperature, top_k, top_p);
          if ((top_k <= 0 || static_cast<size_t>(top_k) >= logits.size()) && top_p >= 1.0f) {  // every token, in id order
            auto by_id = [](const TokenProbability& a, const TokenProbability& b) { return a.id < b.id; };
            std::sort(expected.begin(), expected.end(), by_id);
            ASSERT_TRUE(std::is_sorted(got.begin(), got.end(), by_id));
          }
          ASSERT_EQ(got.size(), expected.size());
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_EQ(got[i].id, expected[i].id) << "at " << i;
            ASSERT_NEAR(got[i].p, expected[i].p, 1e-6 + 1e-5 * expected[i].p) << "at " << i;
          }
        }
      }
    }
  }
}

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce) {
  std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f};
  penalize_repetitions(logits, std::vector<int32_t>{0, 1, 0, 0}, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 3.0f, 0.5f}));
}

TEST(Sampling, RepetitionPenaltyOnlyLooksAtTheLastTokens) {
  SamplingOptions o = options(0.0f, 0, 1.0f, 1);
  o.repeat_penalty = 10.0f;
  o.repeat_last_n = 2;
  Sampler sampler(o);
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, 2.0f};
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(logits), 2);  // 3.0 / 10 falls below 2.5
  sampler.accept(2);
  EXPECT_EQ(sampler.sample(logits), 3);
  sampler.accept(3);  // token 1 has left the window of 2
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampling, PresenceAndFrequencyPenaltiesLowerTheChosenTokens) {
  std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f};
  penalize_chosen(logits, {{0, 3}, {1, 1}}, 0.5f, 0.25f);  // token 0 chosen three times, 1 once
  EXPECT_EQ(logits, (std::vector<float>{2.0f - 0.5f - 0.75f, -1.0f - 0.5f - 0.25f, 3.0f, 0.5f}));

  SamplingOptions o = options(0.0f, 0, 1.0f, 1);
  o.frequency_penalty = 0.3f;
  Sampler sampler(o);
  const std::vector<float> row = {3.0f, 2.9f, 1.0f};
  sampler.accept(0);  // a prompt token: not chosen, not penalized
  std::vector<int32_t> tokens;
  for (int i = 0; i < 4; ++i) {
    tokens.push_back(sampler.sample(row));
    sampler.accept(tokens.back());
  }
  // 0 (3.0); then 0 at 2.7 < 2.9: 1; then 0 at 2.7 > 1 at 2.6: 0; then 0 at 2.4 < 2.6: 1.
  EXPECT_EQ(tokens, (std::vector<int32_t>{0, 1, 0, 1}));

  SamplingOptions presence = options(0.0f, 0, 1.0f, 1);
  presence.presence_penalty = 0.05f;  // once, however often: 0 stays ahead after the first
  Sampler once(presence);
  EXPECT_EQ(once.sample(row), 0);
  EXPECT_EQ(once.sample(row), 0);  // 3.0 - 0.05 > 2.9
  EXPECT_TRUE(once.needs_whole_row(64, 500));  // they reorder the logits
}

TEST(Sampling, BadOptionsAreErrors) {
  SamplingOptions o;
  o.repeat_penalty = 0;
  EXPECT_THROW(Sampler{o}, Error);
  o = SamplingOptions{};
  o.presence_penalty = std::numeric_limits<float>::infinity();
  EXPECT_THROW(Sampler{o}, Error);
  Sampler ok(SamplingOptions{});
  EXPECT_THROW(ok.sample(std::vector<float>{}), Error);
}

// A row's best logits as a batched step hands them over (ops::top_logits's order).
struct Best {
  std::vector<float> logits, ids;
  BestLogits view(int64_t vocabulary) const { return {logits, ids, vocabulary}; }
};
Best best_of(const std::vector<float>& row, size_t count) {
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < row.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  Best best;
  for (size_t i = 0; i < count; ++i) {
    best.logits.push_back(row[static_cast<size_t>(order[i])]);
    best.ids.push_back(static_cast<float>(order[i]));
  }
  return best;
}

TEST(Sampling, BestLogitsGiveTheTokensOfTheWholeRow) {
  for (const SamplingOptions& o : {options(0.0f, 0, 1.0f, 1), options(0.8f, 40, 0.95f, 2), options(1.5f, 64, 1.0f, 3),
                                   options(0.5f, 1, 0.5f, 4), options(1.0f, 7, 0.3f, 5)}) {
    SCOPED_TRACE(::testing::Message() << "temperature " << o.temperature << " top_k " << o.top_k);
    Sampler whole(o), from_best(o);
    ASSERT_FALSE(from_best.needs_whole_row(64, 500));
    for (uint32_t step = 0; step < 200; ++step) {
      const auto logits = logits_for(step);
      const int32_t token = whole.sample(logits);
      ASSERT_EQ(from_best.sample(best_of(logits, 64).view(500)), token) << step;
      whole.accept(token);
      from_best.accept(token);
    }
  }
}

TEST(Sampling, TheWholeRowWhereTheBestDoNotDecide) {
  EXPECT_FALSE(Sampler(options(0.0f, 0, 1.0f, 1)).needs_whole_row(1, 500));  // greedy
  EXPECT_TRUE(Sampler(options(0.8f, 0, 0.95f, 1)).needs_whole_row(64, 500));  // no top_k
  EXPECT_TRUE(Sampler(options(0.8f, 65, 0.95f, 1)).needs_whole_row(64, 500));
  EXPECT_TRUE(Sampler(options(0.8f, 40, 0.95f, 1)).needs_whole_row(40, 40));  // top_k is the whole vocabulary
  SamplingOptions penalized = options(0.0f, 40, 1.0f, 1);
  penalized.repeat_penalty = 1.1f;  // reorders the logits
  EXPECT_TRUE(Sampler(penalized).needs_whole_row(64, 500));
  Sampler no_limit(options(0.8f, 0, 0.95f, 1));
  EXPECT_THROW(no_limit.sample(best_of(logits_for(0), 64).view(500)), Error);
}

}  // namespace
}  // namespace braid
