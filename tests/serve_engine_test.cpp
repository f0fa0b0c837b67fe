// The engine of `braid serve` on a real model (stories260K, CPU): batching never changes
// a greedy answer, sequences leave and join between steps, cancelled requests free their
// slots, a full queue is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/tokenizer.h"
#include "serve/engine.h"
#include "test_support.h"

namespace braid::serve {
namespace {

const char* const kStories = "stories260K.gguf";

struct Stories {
  Stories() : file(GgufFile::open(test::fixture(kStories))), tokenizer(load_tokenizer(file)), model(load_gguf_model(file)) {
    model.config.n_ctx = 256;
  }
  GgufFile file;
  std::unique_ptr<Tokenizer> tokenizer;
  Model model;
};

EngineOptions engine_options(int slots, int max_waiting = 64) {
  EngineOptions o;
  o.scheduler.slots = slots;
  o.scheduler.max_waiting = max_waiting;
  o.scheduler.chunk_size = 8;  // several chunks per prompt
  return o;
}

Job greedy_job(const Tokenizer& tokenizer, const std::string& prompt, int max_tokens) {
  Job job;
  job.prompt = tokenizer.encode(prompt, true);
  job.max_tokens = max_tokens;
  job.sampling.temperature = 0;
  return job;
}

std::vector<std::string> prompts() {
  const char* starts[] = {"Once upon a time", "The cat", "Lily and Ben went to the park", "One day, a big dog",
                          "Tom had a red ball", "The sun was", "Sara liked to sing", "There was a little bird"};
  std::vector<std::string> out;
  for (int i = 0; i < 16; ++i) {
    out.push_back(std::string(starts[i % 8]) + (i >= 8 ? " and a tree. It was a very happy day for everyone" : ""));
  }
  return out;
}

TEST(ServeEngineTest, SixteenConcurrentGreedyRequestsGiveWhatEachGivesAlone) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  const std::vector<std::string> texts = prompts();
  std::vector<StreamUpdate> alone;
  {
    Engine engine(s.model, *s.tokenizer, engine_options(1));
    for (const std::string& text : texts) alone.push_back(engine.submit(greedy_job(*s.tokenizer, text, 40))->wait_all());
  }
  Engine engine(s.model, *s.tokenizer, engine_options(16));
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < texts.size(); ++i) {
    handles.push_back(engine.submit(greedy_job(*s.tokenizer, texts[i], 20 + static_cast<int>(i) * 2 % 21)));
    ASSERT_NE(handles.back(), nullptr);
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const StreamUpdate together = handles[i]->wait_all();
    ASSERT_EQ(together.finish == FinishReason::Error, false) << together.error;
    const size_t n = together.tokens.size();
    ASSERT_GT(n, 0u);
    // Each ran to its own limit: a prefix of what it gave alone (or all of it at EOS).
    ASSERT_LE(n, alone[i].tokens.size());
    EXPECT_EQ(together.tokens, std::vector<int32_t>(alone[i].tokens.begin(), alone[i].tokens.begin() + n))
        << "prompt " << i << ": " << texts[i];
    EXPECT_EQ(together.usage.completion_tokens, static_cast<int>(n));
    EXPECT_EQ(together.usage.prompt_tokens, static_cast<int>(s.tokenizer->encode(texts[i], true).size()));
  }
}

// Sampled requests with seeds: each request's sampler is its own, so drawing the tokens of
// a step side by side (engine.cpp) gives each the tokens it draws alone.
TEST(ServeEngineTest, SixteenConcurrentSeededRequestsDrawWhatEachDrawsAlone) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  const std::vector<std::string> texts = prompts();
  auto job = [&](size_t i) {
    Job j = greedy_job(*s.tokenizer, texts[i], 24);
    j.sampling.temperature = 0.9f;
    j.sampling.top_k = i % 2 ? 40 : 0;
    j.sampling.seed = 100 + i;
    return j;
  };
  std::vector<StreamUpdate> alone;
  {
    Engine engine(s.model, *s.tokenizer, engine_options(1));
    for (size_t i = 0; i < texts.size(); ++i) alone.push_back(engine.submit(job(i))->wait_all());
  }
  Engine engine(s.model, *s.tokenizer, engine_options(16));
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < texts.size(); ++i) handles.push_back(engine.submit(job(i)));
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_NE(handles[i], nullptr);
    const StreamUpdate together = handles[i]->wait_all();
    EXPECT_EQ(together.tokens, alone[i].tokens) << "prompt " << i << ": " << texts[i];
  }
}

TEST(ServeEngineTest, GreedyAnswerEqualsGenerate) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  auto backend = make_cpu_backend();
  ModelRunner runner(s.model, *backend);
  GenerateOptions options;
  options.max_tokens = 30;
  options.sampling.temperature = 0;
  const std::string prompt = "Lily and Ben went to the park with their mom and dad";
  const GenerateResult reference = generate(runner, *s.tokenizer, prompt, options);

  Engine engine(s.model, *s.tokenizer, engine_options(2));
  const StreamUpdate served = engine.submit(greedy_job(*s.tokenizer, prompt, 30))->wait_all();
  EXPECT_EQ(served.tokens, reference.tokens);
  EXPECT_EQ(served.text, reference.text);
  EXPECT_EQ(served.finish, reference.stop == StopReason::EndOfSequence ? FinishReason::Stop : FinishReason::Length);
}

TEST(ServeEngineTest, StopStringEndsTheRequestAndIsNotSent) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  Engine engine(s.model, *s.tokenizer, engine_options(1));
  const StreamUpdate full = engine.submit(greedy_job(*s.tokenizer, "Once upon a time", 40))->wait_all();
  ASSERT_GT(full.text.size(), 12u);
  const std::string stop = full.text.substr(8, 3);  // text that spans tokens, most likely
  Job job = greedy_job(*s.tokenizer, "Once upon a time", 40);
  job.stop = {stop};
  const StreamUpdate stopped = engine.submit(job)->wait_all();
  EXPECT_EQ(stopped.finish, FinishReason::Stop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
}

// With a token of its greedy answer made the end of a turn, a request stops there; with
// ignore_eos it goes on, through that token, to max_tokens, and gives the tokens of the
// unmodified tokenizer.
TEST(ServeEngineTest, IgnoreEosGeneratesPastTheEndToMaxTokens) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  constexpr int kMax = 40;
  const Job job = greedy_job(*s.tokenizer, "Once upon a time", kMax);
  const StreamUpdate plain = Engine(s.model, *s.tokenizer, engine_options(1)).submit(job)->wait_all();
  ASSERT_EQ(plain.tokens.size(), static_cast<size_t>(kMax));

  Vocabulary vocab = s.tokenizer->vocabulary();
  vocab.eot_id = plain.tokens[10];
  const std::unique_ptr<Tokenizer> ending = make_tokenizer(vocab);
  const auto first_end = std::find(plain.tokens.begin(), plain.tokens.end(), vocab.eot_id) - plain.tokens.begin();
  Engine engine(s.model, *ending, engine_options(1));
  const StreamUpdate ended = engine.submit(job)->wait_all();
  EXPECT_EQ(ended.finish, FinishReason::Stop);
  EXPECT_EQ(ended.tokens.size(), static_cast<size_t>(first_end));

  Job ignoring = job;
  ignoring.ignore_eos = true;
  const StreamUpdate full = engine.submit(ignoring)->wait_all();
  EXPECT_EQ(full.finish, FinishReason::Length);
  EXPECT_EQ(full.tokens, plain.tokens);
}

TEST(ServeEngineTest, CancelFreesTheSlotAndAFullQueueIsRefused) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  Engine engine(s.model, *s.tokenizer, engine_options(1, 1));
  // Long requests: one runs, one waits, the third finds the queue full.
  Job long_job = greedy_job(*s.tokenizer, "Once upon a time", 200);
  long_job.sampling.temperature = 1;  // (sampled: unlikely to end early)
  auto first = engine.submit(long_job);
  auto second = engine.submit(long_job);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(engine.submit(long_job), nullptr);
  engine.cancel(first->id());
  engine.cancel(second->id());
  // (a sampled story may have ended on its own before the cancel came)
  for (const auto& handle : {first, second}) {
    const StreamUpdate end = handle->wait_all();
    EXPECT_TRUE(end.finish == FinishReason::Cancelled || end.finish == FinishReason::Stop ||
                end.finish == FinishReason::Length);
  }
  // The slot is free again: a short request runs to its end.
  const StreamUpdate after = engine.submit(greedy_job(*s.tokenizer, "The cat", 5))->wait_all();
  EXPECT_NE(after.finish, FinishReason::Cancelled);
  EXPECT_EQ(after.usage.completion_tokens, static_cast<int>(after.tokens.size()));
}

TEST(ServeEngineTest, StopEndsRequestsInFlight) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  auto engine = std::make_unique<Engine>(s.model, *s.tokenizer, engine_options(1, 4));
  Job job = greedy_job(*s.tokenizer, "Once upon a time", 200);
  job.sampling.temperature = 1;
  auto running = engine->submit(job);
  auto waiting = engine->submit(job);
  engine->stop();
  EXPECT_TRUE(running->wait_all().done);
  EXPECT_EQ(waiting->wait_all().finish, FinishReason::Error);
  EXPECT_EQ(engine->submit(job), nullptr);
}

}  // namespace
}  // namespace braid::serve
