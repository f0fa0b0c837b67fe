// Chat with a real model: SmolLM2-135M-Instruct (ChatML, byte-level BPE, Q4_1) against
// tests/data/smollm2_reference.json: llama.cpp's rendering and tokenization, greedy replies
// from transformers and llama.cpp (how they were made, and where llama.cpp's disagree:
// tests/data/README.md and the JSON). The template's rendering is checked always;
// tokenization and generation need the model (scripts/fetch_smollm2.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "braid/backend.h"
#include "braid/chat.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/plan.h"
#include "cli_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

nlohmann::json reference() {
  std::ifstream in(test::test_data("smollm2_reference.json"));
  return nlohmann::json::parse(in);
}

std::vector<ChatMessage> messages_of(const nlohmann::json& chat) {
  std::vector<ChatMessage> messages;
  for (const auto& m : chat["messages"]) {
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return messages;
}

TEST(ChatSmolLM2, TheTemplateRendersAsLlamaCppWasGiven) {
  if (!test::have_fixture("templates/SmolLM2-135M-Instruct.jinja")) return;
  const ChatTemplate t = detect_chat_template(test::slurp(test::fixture("templates/SmolLM2-135M-Instruct.jinja")));
  const nlohmann::json ref = reference();
  ASSERT_FALSE(ref["cases"].empty());
  for (const auto& chat : ref["cases"]) {
    EXPECT_EQ(render_chat(t, messages_of(chat), true), chat["rendered"].get<std::string>()) << chat["name"];
  }
}

// Reference tokens without a final end-of-generation token (braid's do not include it).
std::vector<int32_t> reply_ids(const nlohmann::json& ids, const Tokenizer& tokenizer) {
  std::vector<int32_t> out = ids.get<std::vector<int32_t>>();
  if (!out.empty() && tokenizer.is_end_of_generation(out.back())) out.pop_back();
  return out;
}

GenerateOptions greedy(const nlohmann::json& ref) {
  GenerateOptions options;
  options.max_tokens = ref["generator"]["max_new_tokens"].get<int>();
  options.sampling.temperature = 0;
  return options;
}

// The model file with its tokenizer, weights and chat template: what the tests below load.
struct SmolLM2 {
  explicit SmolLM2(const std::string& path)
      : file(GgufFile::open(path)),
        tokenizer(load_tokenizer(file)),
        model(load_gguf_model(file)),
        chat_template(choose_chat_template("", file.get_string("tokenizer.chat_template", ""),
                                           tokenizer->vocabulary())) {}
  // A reference chat rendered with the model's template and tokenized as llama.cpp did.
  std::vector<int32_t> prompt_of(const nlohmann::json& chat) const {
    return tokenizer->encode_with_special(render_chat(chat_template, messages_of(chat), true), false);
  }
  GgufFile file;
  std::unique_ptr<Tokenizer> tokenizer;
  Model model;
  ChatTemplate chat_template;
};

// Null when the model is missing (the test is then marked skipped: test::real_model).
std::unique_ptr<SmolLM2> load_smollm2() {
  const std::string path = test::real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  return path.empty() ? nullptr : std::make_unique<SmolLM2>(path);
}

// Prompt ids as llama.cpp tokenized the rendered chats; greedy replies as transformers
// computes them on the same weights (and llama.cpp, where its run agrees: see the JSON's
// transformers_reference), on the CPU, serial.
TEST(ChatSmolLM2, PromptIdsAndGreedyRepliesEqualTheReferences) {
  const auto smol = load_smollm2();
  if (!smol) return;
  const Tokenizer& tokenizer = *smol->tokenizer;
  const nlohmann::json ref = reference();
  for (const auto& v : ref["special_token_vectors"]) {
    if (!v["parse_special"].get<bool>()) continue;
    EXPECT_EQ(tokenizer.encode_with_special(v["text"].get<std::string>(), false), v["ids"].get<std::vector<int32_t>>())
        << v["text"];
  }
  auto backend = make_cpu_backend();
  ModelRunner runner(smol->model, *backend);
  for (const auto& chat : ref["cases"]) {
    SCOPED_TRACE(chat["name"].get<std::string>());
    const std::vector<int32_t> prompt = smol->prompt_of(chat);
    EXPECT_EQ(prompt, chat["prompt_ids"].get<std::vector<int32_t>>());
    runner.reset();
    const GenerateResult r = generate_tokens(runner, tokenizer, prompt, greedy(ref));
    EXPECT_EQ(r.tokens, reply_ids(chat["transformers_generated_ids"], tokenizer)) << r.text;
    if (chat["llama_cpp_agrees_with_transformers"].get<bool>()) {
      EXPECT_EQ(r.tokens, reply_ids(chat["generated_ids"], tokenizer)) << r.text;
    }
  }
}

// `braid chat`'s path (ChatSession: template, special tokens, end of turn) under the
// serial plan and two multi-stream plans (the pull request's rule and braid's cost model)
// gives the reference reply: multi-stream plans compute the same bits. (auto picks one of
// these plans; timing its candidates on the CPU reference would take minutes.)
TEST(ChatSmolLM2, ChatSessionRepliesAlikeUnderSerialAndMultiStreamPlans) {
  const auto smol = load_smollm2();
  if (!smol) return;
  const nlohmann::json ref = reference();
  const nlohmann::json& chat = ref["cases"][0];
  const std::vector<ChatMessage> messages = messages_of(chat);
  ASSERT_EQ(messages.size(), 1u);
  for (const Policy policy : {Policy::Serial, Policy::Branch, Policy::Cost}) {
    SCOPED_TRACE(std::string(policy_name(policy)));
    auto backend = make_cpu_backend();
    RunnerOptions options;
    options.policy = policy;
    ModelRunner runner(smol->model, *backend, options);
    ChatSession session(runner, *smol->tokenizer, smol->chat_template, "");
    const GenerateResult r = session.send(messages[0].content, greedy(ref));
    EXPECT_EQ(r.prompt_tokens, chat["prompt_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(r.tokens, reply_ids(chat["transformers_generated_ids"], *smol->tokenizer)) << r.text;
    EXPECT_EQ(r.text, "The capital of France is Paris.");
  }
}

#ifdef BRAID_HAVE_CUDA
// How far the CPU reference's logit of `expected` lies above that of `got` after the prompt
// and `prefix`: a small margin is a near tie, where rounding alone can flip a greedy pick.
float reference_margin(const SmolLM2& smol, std::vector<int32_t> tokens, const std::vector<int32_t>& prefix,
                       int32_t expected, int32_t got) {
  auto backend = make_cpu_backend();
  ModelRunner runner(smol.model, *backend);
  tokens.insert(tokens.end(), prefix.begin(), prefix.end());
  const std::vector<float> logits = runner.eval(tokens);
  return logits[static_cast<size_t>(expected)] - logits[static_cast<size_t>(got)];
}

// The largest reference margin a CUDA reply may lose at: CUDA multiplies quantized weights
// with int8-rounded activations (matvec_int8.cu) and prompts in f16, as llama.cpp's CUDA
// backend does, so where the reference's two best tokens nearly tie, its greedy pick can
// flip. Measured on the H200: 'colors' ends "color." where the CPU says "color,", whose
// logits there differ by 0.022; a margin ten times that is still a near tie.
constexpr float kNearTie = 0.25f;

// On CUDA, under serial and a multi-stream plan, over every chat where transformers and
// llama.cpp agree: both plans give the same tokens, at least two replies equal the
// references token for token (issue 12), and any other reply leaves the reference only at a
// near tie of the CPU reference's logits.
TEST(ChatSmolLM2, CudaRepliesEqualTheReferencesWhereTheyAgree) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const auto smol = load_smollm2();
  if (!smol) return;
  const nlohmann::json ref = reference();
  std::vector<std::vector<int32_t>> serial_replies;
  for (const Policy policy : {Policy::Serial, Policy::Cost}) {
    auto backend = make_backend("cuda");
    RunnerOptions options;
    options.policy = policy;
    ModelRunner runner(smol->model, *backend, options);
    int equal = 0;
    size_t index = 0;
    for (const auto& chat : ref["cases"]) {
      if (!chat["llama_cpp_agrees_with_transformers"].get<bool>()) continue;
      SCOPED_TRACE(chat["name"].get<std::string>() + " " + std::string(policy_name(policy)));
      runner.reset();
      const std::vector<int32_t> prompt = smol->prompt_of(chat);
      const GenerateResult r = generate_tokens(runner, *smol->tokenizer, prompt, greedy(ref));
      const std::vector<int32_t> expected = reply_ids(chat["generated_ids"], *smol->tokenizer);
      if (policy == Policy::Serial) {
        serial_replies.push_back(r.tokens);
      } else {
        EXPECT_EQ(r.tokens, serial_replies[index]) << "multi-stream differs from serial: " << r.text;
      }
      ++index;
      if (r.tokens == expected) {
        ++equal;
        continue;
      }
      const size_t at = static_cast<size_t>(
          std::mismatch(r.tokens.begin(), r.tokens.end(), expected.begin(), expected.end()).first - r.tokens.begin());
      ASSERT_LT(at, std::min(r.tokens.size(), expected.size())) << "one reply stops early: " << r.text;
      const std::vector<int32_t> prefix(expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(at));
      const float margin = reference_margin(*smol, prompt, prefix, expected[at], r.tokens[at]);
      EXPECT_LT(margin, kNearTie) << "CUDA left the reference at token " << at << " (" << r.tokens[at] << " for "
                                  << expected[at] << ") where the CPU's margin is " << margin << ": " << r.text;
    }
    EXPECT_GE(equal, 2) << "fewer than two replies equal llama.cpp's";
  }
}
#endif

}  // namespace
}  // namespace braid
