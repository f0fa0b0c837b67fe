#include "braid/generate.h"

#include <fmt/format.h>

#include <chrono>

#include "braid/graph.h"
#include "braid/parallel_runner.h"

namespace braid {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfSequence:
      return "end of sequence";
    case StopReason::TokenLimit:
      return "token limit";
    case StopReason::ContextFull:
      return "context full";
  }
  return "?";
}

GenerateResult generate(ModelRunner& runner, const Tokenizer& tokenizer, std::string_view prompt,
                        const GenerateOptions& options, const TokenCallback& on_token) {
  const bool add_bos = options.add_bos && tokenizer.vocabulary().add_bos;
  return generate_tokens(runner, tokenizer, tokenizer.encode(prompt, add_bos), options, on_token);
}

// One loop for both runners (ModelRunner, ParallelRunner): they share eval, eval_continuing,
// prepare, position and model, and nothing else here.
template <typename Runner>
GenerateResult generate_with(Runner& runner, const Tokenizer& tokenizer, std::vector<int32_t> prompt_tokens,
                             const GenerateOptions& options, const TokenCallback& on_token) {
  const Vocabulary& vocab = tokenizer.vocabulary();
  const ModelConfig& config = runner.model().config;
  if (vocab.size() > config.n_vocab) {
    throw Error(fmt::format("the tokenizer has {} tokens but the model only {}", vocab.size(), config.n_vocab));
  }
  GenerateResult result;
  result.prompt_tokens = std::move(prompt_tokens);
  const int n_prompt = static_cast<int>(result.prompt_tokens.size());
  if (n_prompt == 0) throw Error("the prompt is empty");
  if (runner.position() + n_prompt > config.n_ctx) {
    throw Error(fmt::format("the prompt's {} tokens do not fit the context of {} (at position {})", n_prompt,
                            config.n_ctx, runner.position()));
  }

  Sampler sampler(options.sampling);
  for (int32_t t : result.prompt_tokens) sampler.accept(t);

  // Build (with the auto policy: tune) both graphs before the sequence starts; tuning
  // overwrites the cache. Prompt timing then measures evaluation alone.
  if (runner.position() == 0) runner.prepare({n_prompt, 1});
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits = runner.eval_continuing(result.prompt_tokens);
  result.prompt_seconds = seconds_since(start);
  // A model may have more logits than pieces (a padded embedding): only pieces can be chosen.
  logits.resize(static_cast<size_t>(vocab.size()));
  result.prompt_logits = logits;

  start = std::chrono::steady_clock::now();
  while (true) {
    if (static_cast<int>(result.tokens.size()) >= options.max_tokens) {
      result.stop = StopReason::TokenLimit;
      break;
    }
    const int32_t token = sampler.sample(logits);
    if (tokenizer.is_end_of_generation(token)) {
      result.stop = StopReason::EndOfSequence;
      break;
    }
    sampler.accept(token);
    result.tokens.push_back(token);
    const std::string piece = tokenizer.token_to_piece(token);
    result.text += piece;
    if (on_token) on_token(token, piece);
    if (static_cast<int>(result.tokens.size()) >= options.max_tokens) {
      result.stop = StopReason::TokenLimit;  // (no decode step for a token nobody will read)
      break;
    }
    if (runner.position() >= config.n_ctx) {
      result.stop = StopReason::ContextFull;
      break;
    }
    logits = runner.eval({token});
    logits.resize(static_cast<size_t>(vocab.size()));
  }
  result.generate_seconds = seconds_since(start);
  return result;
}

GenerateResult generate_tokens(ModelRunner& runner, const Tokenizer& tokenizer, std::vector<int32_t> prompt_tokens,
                               const GenerateOptions& options, const TokenCallback& on_token) {
  return generate_with(runner, tokenizer, std::move(prompt_tokens), options, on_token);
}

GenerateResult generate(ParallelRunner& runner, const Tokenizer& tokenizer, std::string_view prompt,
                        const GenerateOptions& options, const TokenCallback& on_token) {
  const bool add_bos = options.add_bos && tokenizer.vocabulary().add_bos;
  return generate_with(runner, tokenizer, tokenizer.encode(prompt, add_bos), options, on_token);
}

}  // namespace braid
