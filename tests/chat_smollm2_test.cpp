// Chat with a real model against llama.cpp: SmolLM2-135M-Instruct (ChatML, byte-level BPE)
// and tests/data/smollm2_reference.json (how it was made: tests/data/README.md). The
// template's rendering is checked always; tokenization and greedy generation need the
// model from the model cache and a tokenizer for its vocabulary (byte-level BPE).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "braid/backend.h"
#include "braid/chat.h"
#include "braid/gguf.h"
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

// The tokenizer of the real model, or null (test skipped) while braid cannot read it.
std::unique_ptr<Tokenizer> smollm2_tokenizer(const GgufFile& file) {
  try {
    return load_tokenizer(file);
  } catch (const Error& e) {
    if (std::string(e.what()).find("not supported") == std::string::npos) throw;
    return nullptr;
  }
}

TEST(ChatSmolLM2, PromptIdsAndGreedyRepliesEqualLlamaCpp) {
  const std::string path = test::real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) return;
  const GgufFile file = GgufFile::open(path);
  const auto tokenizer = smollm2_tokenizer(file);
  if (!tokenizer) GTEST_SKIP() << "braid has no tokenizer for SmolLM2's vocabulary yet";
  const nlohmann::json ref = reference();
  for (const auto& v : ref["special_token_vectors"]) {
    if (!v["parse_special"].get<bool>()) continue;
    EXPECT_EQ(tokenizer->encode_with_special(v["text"].get<std::string>(), false), v["ids"].get<std::vector<int32_t>>())
        << v["text"];
  }
  const Model model = load_gguf_model(file);
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend);
  const ChatTemplate t =
      choose_chat_template("", file.get_string("tokenizer.chat_template", ""), tokenizer->vocabulary());
  for (const auto& chat : ref["cases"]) {
    SCOPED_TRACE(chat["name"].get<std::string>());
    std::vector<ChatMessage> messages = messages_of(chat);
    // The session builds the conversation itself: a system prompt and one user message.
    if (messages.size() > 2) continue;
    const std::string system = messages.front().role == "system" ? messages.front().content : "";
    ChatSession session(runner, *tokenizer, t, system);
    GenerateOptions options;
    options.max_tokens = ref["generator"]["max_new_tokens"].get<int>();
    options.sampling.temperature = 0;
    const GenerateResult r = session.send(messages.back().content, options);
    EXPECT_EQ(r.prompt_tokens, chat["prompt_ids"].get<std::vector<int32_t>>());
    std::vector<int32_t> expected = chat["generated_ids"].get<std::vector<int32_t>>();
    if (chat["stopped_at_end_of_turn"].get<bool>()) expected.pop_back();  // (the end-of-turn token)
    EXPECT_EQ(r.tokens, expected) << r.text;
  }
}

}  // namespace
}  // namespace braid
