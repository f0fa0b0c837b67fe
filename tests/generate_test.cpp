// Text generation with a real trained model (stories260K, TinyStories) on the CPU:
// greedy decoding must give the same tokens under every plan policy, with worker
// threads on and off, and the text must read as English. Also `braid generate` and
// `braid tokenize` end to end.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <memory>

#include "braid/backend.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/tokenizer.h"
#include "test_support.h"

namespace braid {
namespace {

const char* const kStories = "stories260K.gguf";
const char* const kPrompt = "Once upon a time, there was a little girl";

GenerateResult generate_greedy(const Model& model, const Tokenizer& tokenizer, Policy policy, bool threads,
                               int max_tokens = 48) {
  auto backend = make_cpu_backend();
  RunnerOptions ro;
  ro.policy = policy;
  ro.plan.max_streams = 4;
  ro.exec.threads = threads;
  ModelRunner runner(model, *backend, ro);
  GenerateOptions options;
  options.max_tokens = max_tokens;
  options.sampling.temperature = 0;
  return generate(runner, tokenizer, kPrompt, options);
}

TEST(Generate, StoriesVocabularyMatchesTheModel) {
  if (!test::have_fixture(kStories)) return;
  const GgufFile file = GgufFile::open(test::fixture(kStories));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  EXPECT_EQ(tokenizer->vocabulary().size(), 512);
  EXPECT_EQ(model.config.n_vocab, 512);
  const auto ids = tokenizer->encode(kPrompt, true);
  EXPECT_EQ(ids.front(), tokenizer->vocabulary().bos_id);
  EXPECT_EQ(tokenizer->decode(ids), kPrompt);
}

TEST(Generate, GreedyStoriesAreTheSameForEveryPolicyAndReadAsEnglish) {
  if (!test::have_fixture(kStories)) return;
  const GgufFile file = GgufFile::open(test::fixture(kStories));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);

  const GenerateResult reference = generate_greedy(model, *tokenizer, Policy::Serial, false);
  std::printf("stories260K, greedy: %s%s\n", kPrompt, reference.text.c_str());
  ASSERT_FALSE(reference.tokens.empty());
  EXPECT_EQ(tokenizer->decode(reference.tokens), reference.text.substr(reference.text.front() == ' ' ? 1 : 0));
  const std::string text = std::string(kPrompt) + reference.text;
  EXPECT_TRUE(text.find(" the ") != std::string::npos || text.find(" was ") != std::string::npos ||
              text.find(" she ") != std::string::npos)
      << text;
  // Greedy decoding of a trained model: mostly letters and spaces, several words.
  int letters = 0;
  for (char c : reference.text) letters += std::isalpha(static_cast<unsigned char>(c)) || c == ' ';
  EXPECT_GT(letters, static_cast<int>(reference.text.size() * 9 / 10)) << reference.text;

  for (Policy policy : all_policies()) {
    for (bool threads : {false, true}) {
      const GenerateResult run = generate_greedy(model, *tokenizer, policy, threads);
      EXPECT_EQ(run.tokens, reference.tokens) << policy_name(policy) << " threads=" << threads << ": " << run.text;
      EXPECT_EQ(run.stop, reference.stop);
    }
  }
}

TEST(Generate, StopsAtTheTokenLimitAndTheContextEnd) {
  if (!test::have_fixture(kStories)) return;
  const GgufFile file = GgufFile::open(test::fixture(kStories));
  const auto tokenizer = load_tokenizer(file);
  Model model = load_gguf_model(file);
  const GenerateResult limited = generate_greedy(model, *tokenizer, Policy::Serial, true, 5);
  EXPECT_LE(limited.tokens.size(), 5u);
  if (limited.tokens.size() < 5) {
    EXPECT_EQ(limited.stop, StopReason::EndOfSequence);
  }

  const int prompt_tokens = static_cast<int>(tokenizer->encode(kPrompt, true).size());
  model.config.n_ctx = prompt_tokens + 3;
  const GenerateResult full = generate_greedy(model, *tokenizer, Policy::Serial, true, 100);
  // Three decode steps fit after the prompt, each giving one more token.
  if (full.stop == StopReason::ContextFull) {
    EXPECT_EQ(full.tokens.size(), 4u);
  }
  EXPECT_LE(full.tokens.size(), 4u);

  model.config.n_ctx = prompt_tokens - 1;
  EXPECT_THROW(generate_greedy(model, *tokenizer, Policy::Serial, true), Error);
}

TEST(Generate, SeededSamplingRepeats) {
  if (!test::have_fixture(kStories)) return;
  const GgufFile file = GgufFile::open(test::fixture(kStories));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  auto run = [&](uint64_t seed) {
    auto backend = make_cpu_backend();
    ModelRunner runner(model, *backend);
    GenerateOptions options;
    options.max_tokens = 24;
    options.sampling.temperature = 1.0f;
    options.sampling.seed = seed;
    std::string streamed;
    const auto result = generate(runner, *tokenizer, kPrompt, options,
                                 [&](int32_t, const std::string& piece) { streamed += piece; });
    EXPECT_EQ(streamed, result.text);
    return result.tokens;
  };
  EXPECT_EQ(run(3), run(3));
}

// Runs a command; returns its stdout (stderr goes to `stderr_path`).
std::string run_command(const std::string& command, const std::string& stderr_path, int* status) {
  std::string out;
  FILE* pipe = popen((command + " 2>" + stderr_path).c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buffer;
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) out.append(buffer.data(), n);
  *status = pclose(pipe);
  return out;
}

std::string read_file(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::array<char, 4096> buffer;
    for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0;) out.append(buffer.data(), n);
    std::fclose(f);
  }
  return out;
}

TEST(Generate, CliStreamsTheGreedyTextAndReportsSpeeds) {
  if (!test::have_fixture(kStories)) return;
  const GgufFile file = GgufFile::open(test::fixture(kStories));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  const GenerateResult expected = generate_greedy(model, *tokenizer, Policy::Serial, true, 16);

  const std::string err = ::testing::TempDir() + "braid_generate_stderr.txt";
  int status = -1;
  const std::string out = run_command(std::string(BRAID_CLI_PATH) + " generate -m '" + test::fixture(kStories) +
                                          "' -p '" + kPrompt + "' -n 16 --temp 0 --backend cpu --policy cost",
                                      err, &status);
  const std::string log = read_file(err);
  EXPECT_EQ(status, 0) << log;
  EXPECT_EQ(out, std::string(kPrompt) + expected.text + "\n");
  EXPECT_NE(log.find("prompt:"), std::string::npos) << log;
  EXPECT_NE(log.find("generated:"), std::string::npos) << log;
  EXPECT_NE(log.find("t/s"), std::string::npos) << log;

  run_command(std::string(BRAID_CLI_PATH) + " generate -m '" + test::fixture(kStories) + "' -p x --policy nope", err,
              &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(read_file(err).find("unknown policy"), std::string::npos);
  std::remove(err.c_str());
}

TEST(Generate, CliTokenizePrintsTheIds) {
  if (!test::have_fixture("ggml-vocab-llama-spm.gguf")) return;
  const std::string err = ::testing::TempDir() + "braid_tokenize_stderr.txt";
  int status = -1;
  const std::string out = run_command(std::string(BRAID_CLI_PATH) + " tokenize -m '" +
                                          test::fixture("ggml-vocab-llama-spm.gguf") + "' -p 'Hello world'",
                                      err, &status);
  EXPECT_EQ(status, 0) << read_file(err);
  EXPECT_EQ(out, "1 15043 3186\n");
  std::remove(err.c_str());
}

}  // namespace
}  // namespace braid
