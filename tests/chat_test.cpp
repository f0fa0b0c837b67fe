// Chat: special tokens written in the text, the tokens that end a turn, and conversations
// with a real model (stories260K, SentencePiece, no template of its own: ChatML forced)
// whose KV cache is kept from turn to turn; `braid chat` through a pipe and
// `braid generate --chat`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "braid/backend.h"
#include "braid/chat.h"
#include "braid/gguf.h"
#include "cli_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

const char* const kStories = "stories260K.gguf";
const char* const kSpmVocab = "ggml-vocab-llama-spm.gguf";

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ChatTokens, SpecialPiecesInTheTextBecomeTheirTokens) {
  if (!test::have_fixture(kSpmVocab)) return;
  const auto tokenizer = load_tokenizer(GgufFile::open(test::fixture(kSpmVocab)));
  const Tokenizer& t = *tokenizer;
  // Each stretch of text between special tokens is encoded on its own (with its own
  // SentencePiece space prefix, as llama.cpp does).
  EXPECT_EQ(t.encode_with_special("<s>[INST] Hi [/INST]", false), concat({1}, t.encode("[INST] Hi [/INST]", false)));
  EXPECT_EQ(t.encode_with_special("a</s>b", true),
            concat(concat(concat({1}, t.encode("a", false)), {2}), t.encode("b", false)));
  EXPECT_EQ(t.encode_with_special("</s></s>", false), (std::vector<int32_t>{2, 2}));
  // Without special pieces it is encode().
  EXPECT_EQ(t.encode_with_special("Hello world", true), t.encode("Hello world", true));
  // encode() itself leaves them as text.
  EXPECT_NE(t.encode("a</s>b", false), t.encode_with_special("a</s>b", false));
}

Vocabulary small_vocabulary(TokenType im_end_type) {
  Vocabulary v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "<|im_end|>", "<end_of_turn>", "\xE2\x96\x81hi", "x"};
  v.scores.assign(v.tokens.size(), 0.0f);
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, im_end_type,
             TokenType::UserDefined, TokenType::Normal, TokenType::Normal};
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_space_prefix = false;
  return v;
}

TEST(ChatTokens, EndOfTurnTokensEndGeneration) {
  const auto tokenizer = make_tokenizer(small_vocabulary(TokenType::Control));
  EXPECT_EQ(tokenizer->vocabulary().end_of_turn, (std::vector<int32_t>{3, 4}));
  EXPECT_TRUE(tokenizer->is_end_of_generation(2));  // EOS
  EXPECT_TRUE(tokenizer->is_end_of_generation(3));
  EXPECT_TRUE(tokenizer->is_end_of_generation(4));
  EXPECT_FALSE(tokenizer->is_end_of_generation(5));
  EXPECT_EQ(tokenizer->encode_with_special("x<|im_end|>x", false), (std::vector<int32_t>{6, 3, 6}));

  // A piece that is normal text in this vocabulary ends nothing; tokenizer.ggml.eot_token_id does.
  Vocabulary v = small_vocabulary(TokenType::Normal);
  v.eot_id = 6;
  const auto other = make_tokenizer(std::move(v));
  EXPECT_EQ(other->vocabulary().end_of_turn, (std::vector<int32_t>{6, 4}));
  EXPECT_FALSE(other->is_end_of_generation(3));
  EXPECT_TRUE(other->is_end_of_generation(6));
}

struct Stories {
  GgufFile file = GgufFile::open(test::fixture(kStories));
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(file);
  Model model = load_gguf_model(file);
};

GenerateOptions greedy(int max_tokens) {
  GenerateOptions options;
  options.max_tokens = max_tokens;
  options.sampling.temperature = 0;
  return options;
}

TEST(Chat, GenerationStopsAtAnEndOfTurnToken) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  auto backend = make_cpu_backend();
  ModelRunner runner(s.model, *backend);
  const GenerateResult free_run = generate(runner, *s.tokenizer, "Once upon a time", greedy(12));
  ASSERT_EQ(free_run.tokens.size(), 12u);
  // Make the third token the end of a turn: greedy decoding then stops right before it.
  const int32_t stop_token = free_run.tokens[2];
  ASSERT_EQ(std::count(free_run.tokens.begin(), free_run.tokens.begin() + 2, stop_token), 0);
  Vocabulary v = s.tokenizer->vocabulary();
  v.eot_id = stop_token;
  const auto tokenizer = make_tokenizer(std::move(v));
  runner.reset();
  const GenerateResult stopped = generate(runner, *tokenizer, "Once upon a time", greedy(12));
  EXPECT_EQ(stopped.stop, StopReason::EndOfSequence);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + 2));
}

float max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// Two turns with the cache kept give the logits of the whole conversation evaluated in one
// batch, also under the auto policy, whose new batch sizes cannot be tuned mid-sequence.
TEST(Chat, SecondTurnKeepsTheCacheAndMatchesAFreshEvaluation) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  for (Policy policy : {Policy::Auto, Policy::Serial}) {
    SCOPED_TRACE(policy_name(policy));
    auto backend = make_cpu_backend();
    RunnerOptions ro;
    ro.policy = policy;
    ModelRunner runner(s.model, *backend, ro);
    const ChatTemplate chatml = chat_template_by_name("chatml");
    ChatSession session(runner, *s.tokenizer, chatml, "Tell a story.");
    const GenerateResult first = session.send("Once upon a time", greedy(6));
    ASSERT_FALSE(first.tokens.empty());
    EXPECT_FALSE(session.last_turn_kept_cache());
    EXPECT_EQ(first.prompt_tokens.front(), s.tokenizer->vocabulary().bos_id);  // the vocabulary asks for BOS

    // No new tokens: the logits after the second turn's prompt are the result.
    const GenerateResult second = session.send("The end", greedy(0));
    EXPECT_TRUE(session.last_turn_kept_cache());
    const std::vector<int32_t>& all = session.cached_tokens();
    EXPECT_EQ(runner.position(), static_cast<int>(all.size()));
    EXPECT_LT(second.prompt_tokens.size(), all.size() / 2);  // only the new turn was evaluated
    // A reply cut at the token limit ends in a token chosen but not evaluated: the second
    // turn evaluates it first.
    const size_t unevaluated = first.stop == StopReason::TokenLimit ? 1 : 0;
    EXPECT_EQ(all.size(), first.prompt_tokens.size() + first.tokens.size() - unevaluated + second.prompt_tokens.size());

    auto fresh_backend = make_cpu_backend();
    ModelRunner fresh(s.model, *fresh_backend);
    const std::vector<float> expected = fresh.eval(all);
    std::vector<float> got = second.prompt_logits;
    ASSERT_EQ(got.size(), expected.size());
    const float difference = max_abs_difference(got, expected);
    EXPECT_LT(difference, 1e-4f);
    std::printf("%s: second turn %zu tokens after %zu, logits differ by at most %g from one batch\n",
                policy_name(policy).data(), second.prompt_tokens.size(), all.size() - second.prompt_tokens.size(),
                difference);

    EXPECT_EQ(session.messages().size(), 5u);  // system, user, assistant, user, assistant
    EXPECT_EQ(session.messages()[2].content, first.text);
    // Starting over gives the first reply again.
    session.reset();
    EXPECT_EQ(runner.position(), 0);
    EXPECT_EQ(session.send("Once upon a time", greedy(6)).tokens, first.tokens);
  }
}

// A template that writes BOS itself (Llama 2's "<s>") gets it once; one that does not
// (ChatML) gets it from the vocabulary, which asks for it.
TEST(Chat, OneBosWhetherTheTemplateWritesItOrNot) {
  if (!test::have_fixture("llama-2-tiny-random.gguf")) return;
  const GgufFile file = GgufFile::open(test::fixture("llama-2-tiny-random.gguf"));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend);
  for (const char* name : {"llama2", "chatml"}) {
    SCOPED_TRACE(name);
    ChatSession session(runner, *tokenizer, choose_chat_template(name, "", tokenizer->vocabulary()), "Be brief.");
    const GenerateResult r = session.send("Hi", greedy(2));
    ASSERT_GE(r.prompt_tokens.size(), 2u);
    EXPECT_EQ(r.prompt_tokens[0], 1);
    EXPECT_NE(r.prompt_tokens[1], 1);
    EXPECT_EQ(std::count(r.prompt_tokens.begin(), r.prompt_tokens.end(), 1), 1);
  }
}

TEST(Chat, AFullContextIsAnErrorThatLeavesTheConversationAsItWas) {
  if (!test::have_fixture(kStories)) return;
  Stories s;
  s.model.config.n_ctx = 64;
  auto backend = make_cpu_backend();
  ModelRunner runner(s.model, *backend);
  ChatSession session(runner, *s.tokenizer, chat_template_by_name("chatml"));
  session.send("Hi", greedy(4));
  const auto messages = session.messages();
  try {
    session.send("Once upon a time there was a girl who liked to play in the park with her dog", greedy(4));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the conversation is full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(session.messages().size(), messages.size());
  session.reset();
  EXPECT_NO_THROW(session.send("Hi", greedy(4)));
}

TEST(Chat, ModelTemplateOrANamedOne) {
  Vocabulary v = small_vocabulary(TokenType::Control);
  v.index();
  EXPECT_EQ(choose_chat_template("", "{{ '<|im_start|>' }}", v).family, ChatFamily::ChatML);
  EXPECT_EQ(choose_chat_template("gemma", "{{ '<|im_start|>' }}", v).family, ChatFamily::Gemma);
  // The template writes the vocabulary's own BOS and EOS pieces.
  EXPECT_EQ(choose_chat_template("llama2", "", v).bos_token, "<s>");
  EXPECT_EQ(choose_chat_template("gemma", "", v).eos_token, "</s>");
  try {
    choose_chat_template("", "", v);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
}

std::string write_input(const std::string& text) {
  const std::string path = test::temp_path("chat_input");
  std::ofstream(path) << text;
  return path;
}

TEST(Chat, CliChatsThroughAPipeAndResets) {
  if (!test::have_fixture(kStories)) return;
  const std::string input = write_input("Once upon a time\nThe end\n/reset\nOnce upon a time\n");
  const std::string common = "-m '" + test::fixture(kStories) + "' --backend cpu --temp 0 -n 8";
  const test::CliResult r = test::run_cli("chat " + common + " --chat-template chatml --policy auto <'" + input + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Three replies, each followed by an empty line; after /reset the first again.
  std::vector<std::string> replies;
  for (size_t at = 0; at < r.out.size();) {
    const size_t end = r.out.find("\n\n", at);
    ASSERT_NE(end, std::string::npos) << r.out;
    replies.push_back(r.out.substr(at, end - at));
    at = end + 2;
  }
  ASSERT_EQ(replies.size(), 3u) << r.out;
  EXPECT_FALSE(replies[0].empty());
  EXPECT_EQ(replies[2], replies[0]);
  EXPECT_NE(r.err.find("template chatml"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(conversation reset)"), std::string::npos) << r.err;

  // One turn: `generate --chat` answers as the chat's first turn does.
  const test::CliResult one = test::run_cli("generate " + common + " --chat-template chatml --chat 'Once upon a time'");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, replies[0] + "\n");

  // stories260K has no template of its own: without --chat-template, a clear error.
  for (const std::string& command : {"chat " + common + " <'" + input + "'", "generate " + common + " --chat Hi"}) {
    const test::CliResult bad = test::run_cli(command);
    EXPECT_EQ(bad.exit_code, 1) << command;
    EXPECT_NE(bad.err.find("no chat template"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("chatml, llama3"), std::string::npos) << bad.err;
  }
  const test::CliResult unknown = test::run_cli("chat " + common + " --chat-template vicuna <'" + input + "'");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown chat template 'vicuna'"), std::string::npos) << unknown.err;
  std::filesystem::remove(input);
}

TEST(Chat, CliSaysWhenTheContextIsFullAndGoesOn) {
  if (!test::have_fixture(kStories)) return;
  const std::string input = write_input("Once upon a time\nThe girl went to the park\nShe saw a dog\n/reset\nHi\n");
  const test::CliResult r = test::run_cli("chat -m '" + test::fixture(kStories) +
                                          "' --backend cpu --temp 0 -n 16 --ctx 64 --chat-template chatml <'" +
                                          input + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("the conversation is full"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(conversation reset)"), std::string::npos) << r.err;
  std::filesystem::remove(input);
}

}  // namespace
}  // namespace braid
