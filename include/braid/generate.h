// Text generation: a prompt through the model in one batch, then one decode step per
// new token, each sampled from the last logits, until the end-of-sequence token, the
// token limit or the end of the context.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "braid/runner.h"
#include "braid/sampling.h"
#include "braid/tokenizer.h"

namespace braid {

struct GenerateOptions {
  int max_tokens = 128;
  SamplingOptions sampling;
  bool add_bos = true;  // and only when the vocabulary asks for BOS (Vocabulary::add_bos)
};

enum class StopReason { EndOfSequence, TokenLimit, ContextFull };
std::string_view stop_reason_name(StopReason reason);  // "end of sequence", ...

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;  // as the model saw them, BOS included
  std::vector<int32_t> tokens;         // generated, EOS excluded
  std::string text;                    // the generated tokens' text
  std::vector<float> prompt_logits;    // after the prompt: what the first token was sampled from
  StopReason stop = StopReason::TokenLimit;
  double prompt_seconds = 0;    // the prompt batch
  double generate_seconds = 0;  // sampling and decode steps, from the first new token to the last
};

// Called with each new token and its text as soon as it is chosen (for streaming).
using TokenCallback = std::function<void(int32_t token, const std::string& piece)>;

// Generates from the runner's current position (reset() it for a new sequence).
// Throws braid::Error when the prompt is empty or does not fit the context, or the
// tokenizer's vocabulary is larger than the model's.
GenerateResult generate(ModelRunner& runner, const Tokenizer& tokenizer, std::string_view prompt,
                        const GenerateOptions& options, const TokenCallback& on_token = {});

// The same for a prompt already in tokens (options.add_bos is not looked at): they are
// evaluated from the runner's current position, so a sequence can be continued (a chat's
// next turn); under the auto policy past position 0 they go through batch sizes already
// prepared (ModelRunner::eval_continuing).
GenerateResult generate_tokens(ModelRunner& runner, const Tokenizer& tokenizer, std::vector<int32_t> prompt_tokens,
                               const GenerateOptions& options, const TokenCallback& on_token = {});

// generate() on a model split over simulated ranks (tensor parallelism on the CPU).
class ParallelRunner;
GenerateResult generate(ParallelRunner& runner, const Tokenizer& tokenizer, std::string_view prompt,
                        const GenerateOptions& options, const TokenCallback& on_token = {});

}  // namespace braid
