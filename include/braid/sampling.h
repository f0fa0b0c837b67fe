// Choosing the next token from a model's logits.
//
// The steps, in the order Sampler runs them (the order of Hugging Face's generate):
//   1. repetition penalty over the last N tokens seen (CTRL's rule, as llama.cpp applies
//      it: a positive logit is divided by the penalty, a negative one multiplied), then
//      OpenAI's presence and frequency penalties over the tokens this sampler chose;
//   2. temperature <= 0: greedy, the highest logit (lowest id on ties); stop here;
//   3. softmax of logits / temperature;
//   4. top-k: the k most likely tokens;
//   5. top-p (nucleus): the smallest set of most likely tokens whose mass reaches p;
//   6. a draw from what is left, renormalized, with std::mt19937_64 from the seed.
// Draws use the generator's raw 64-bit output (not std::uniform_real_distribution, whose
// algorithm differs between standard libraries), so a seed gives the same tokens
// everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

namespace braid {

struct SamplingOptions {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: no limit
  float top_p = 0.95f;          // >= 1: no limit
  float repeat_penalty = 1.0f;  // 1: off; > 1 discourages repeats
  int repeat_last_n = 64;       // tokens the penalty looks back over
  // OpenAI's penalties (braid serve's presence_penalty, frequency_penalty): subtracted from
  // the logit of every token this sampler has chosen before, presence once, frequency once
  // a time chosen. The prompt does not count. 0: off; negative values encourage repeats.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
};

struct TokenProbability {
  int32_t id;
  float p;
};

// The steps, exposed for tests and other samplers.
int32_t argmax(std::span<const float> logits);  // lowest id among equal maxima
void penalize_repetitions(std::vector<float>& logits, std::span<const int32_t> recent, float penalty);
// logits[t] -= presence + frequency * times[t], for every token t chosen times[t] > 0 times.
void penalize_chosen(std::vector<float>& logits, const std::unordered_map<int32_t, int>& times, float presence,
                     float frequency);
// Softmax of logits / temperature (> 0), sorted by probability, then by id.
std::vector<TokenProbability> to_probabilities(std::span<const float> logits, float temperature);
// Both keep a prefix of a sorted list (at least one token) and renormalize it.
void keep_top_k(std::vector<TokenProbability>& candidates, int k);
void keep_top_p(std::vector<TokenProbability>& candidates, float p);
// A token drawn with probability proportional to p.
int32_t draw(const std::vector<TokenProbability>& candidates, std::mt19937_64& rng);

// What Sampler draws from, without sorting the vocabulary (to_probabilities' sort took
// milliseconds a token at 32k-128k tokens, per sequence of a batched step): the top_k
// (> 0, below the vocabulary's size) tokens of highest logit, then the shortest prefix of them reaching top_p (< 1) of
// their renormalized mass; without top_k, the shortest prefix reaching top_p of the whole
// softmax; without either, every token (in id order). Sorted by probability, then id, and
// renormalized: the tokens of to_probabilities -> keep_top_k -> keep_top_p, with
// probabilities equal up to float rounding.
std::vector<TokenProbability> nucleus(std::span<const float> logits, float temperature, int top_k, float top_p);

// How many best logits a batched decode step reads back for sampling (braid serve, and
// braid bench --parallel as a greedy request): greedy, and any top_k up to this (the
// default is 40).
inline constexpr int kSamplingBestLogits = 64;

// The best logits of a row, most likely first (equal logits by the lower id), as the
// device finds them for a batched decode step (ops::top_logits): all that a greedy
// sampler, or one whose top_k they cover, needs of the row.
struct BestLogits {
  std::span<const float> logits;
  std::span<const float> ids;  // their token ids (exact in f32)
  int64_t vocabulary = 0;      // how many tokens of the row they were chosen among
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // The next token. It counts as chosen for OpenAI's penalties; call accept() with every
  // token the model sees (prompt included) so that the repetition penalty knows them.
  int32_t sample(std::span<const float> logits);
  // The same token from a row's `best` logits alone (the same draw, bit for bit), where
  // they hold every token it could choose: see needs_whole_row.
  int32_t sample(const BestLogits& best);
  // Whether a sample needs more of a row than its best `count` of `vocabulary` logits: a
  // penalty (which reorders them), or sampling with top_k 0 or above count.
  bool needs_whole_row(int64_t count, int64_t vocabulary) const;
  void accept(int32_t token);
  const SamplingOptions& options() const { return options_; }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> recent_;  // the last repeat_last_n tokens, oldest first
  // Whether OpenAI's penalties are on (only then are the chosen tokens kept).
  bool counts_chosen() const { return options_.presence_penalty != 0.0f || options_.frequency_penalty != 0.0f; }
  std::unordered_map<int32_t, int> chosen_;  // times sample() returned each token, for OpenAI's penalties
  std::vector<float> scratch_;
};

}  // namespace braid
