// Chat templates: every real template in fixtures/templates is recognised, and each family
// renders exactly what its Jinja template renders. The expected strings were rendered
// from the fixture templates with Jinja2 3.1.6 (trim_blocks and lstrip_blocks, as Hugging
// Face transformers renders), date_string "26 Jul 2024"; Llama 2's from Llama-2-chat's
// template (the Hugging Face tokenizer_config.json of meta-llama/Llama-2-7b-chat-hf).
#include <gtest/gtest.h>

#include "braid/chat_template.h"
#include "braid/graph.h"
#include "gguf_test_util.h"
#include "cli_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

ChatTemplate fixture_template(const std::string& file) {
  const std::string path = "templates/" + file;
  if (!test::have_fixture(path)) return {};
  ChatTemplate t = detect_chat_template(test::slurp(test::fixture(path)));
  t.date = "26 Jul 2024";
  return t;
}

const std::vector<ChatMessage> kOne = {{"user", "Hello!"}};
const std::vector<ChatMessage> kMulti = {
    {"system", "You are terse."}, {"user", "Hi"}, {"assistant", "Hello there."}, {"user", "How are you?"}};
const std::vector<ChatMessage> kSpaces = {{"user", " Hi "}, {"assistant", " Hello there. "}, {"user", "How are you?"}};

TEST(ChatTemplate, EveryFixtureTemplateIsRecognised) {
  const std::vector<std::pair<std::string, ChatFamily>> cases = {
      {"Qwen-Qwen2.5-7B-Instruct.jinja", ChatFamily::ChatML},
      {"SmolLM2-135M-Instruct.jinja", ChatFamily::ChatML},
      {"google-gemma-2-2b-it.jinja", ChatFamily::Gemma},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", ChatFamily::Llama3},
      {"microsoft-Phi-3.5-mini-instruct.jinja", ChatFamily::Phi3},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ChatFamily::MistralNemo},
  };
  for (const auto& [file, family] : cases) {
    if (!test::have_fixture("templates/" + file)) return;
    EXPECT_EQ(chat_family_name(fixture_template(file).family), chat_family_name(family)) << file;
  }
}

TEST(ChatTemplate, ChatMLTakesTheDefaultSystemPromptFromTheTemplate) {
  EXPECT_EQ(fixture_template("Qwen-Qwen2.5-7B-Instruct.jinja").default_system,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(fixture_template("SmolLM2-135M-Instruct.jinja").default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  // A ChatML template that writes only the caller's system message has no default.
  EXPECT_EQ(detect_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")
                .default_system,
            "");
}

TEST(ChatTemplate, Qwen25RendersAsJinja) {
  const ChatTemplate t = fixture_template("Qwen-Qwen2.5-7B-Instruct.jinja");
  EXPECT_EQ(render_chat(t, kOne, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(t, kOne, false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n");
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello there.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(t, kSpaces, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n Hello there. <|im_end|>\n<|im_start|>user\n"
            "How are you?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, SmolLM2RendersAsJinja) {
  const ChatTemplate t = fixture_template("SmolLM2-135M-Instruct.jinja");
  EXPECT_EQ(render_chat(t, kOne, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(t, kMulti, false),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello there.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n");
  // Forced by name: ChatML without a default system prompt.
  EXPECT_EQ(render_chat(chat_template_by_name("chatml"), kOne, true),
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama32RendersAsJinja) {
  const ChatTemplate t = fixture_template("meta-llama-Llama-3.2-3B-Instruct.jinja");
  EXPECT_EQ(render_chat(t, kOne, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render_chat(t, kMulti, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there.<|eot_id|><|start_header_id|>"
            "user<|end_header_id|>\n\nHow are you?<|eot_id|>");
  EXPECT_EQ(render_chat(t, kSpaces, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello there.<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a date the template falls back to its own.
  ChatTemplate undated = t;
  undated.date.clear();
  EXPECT_EQ(render_chat(undated, kOne, true), render_chat(t, kOne, true));
  EXPECT_EQ(chat_template_by_name("llama3").date, chat_date_today());
}

TEST(ChatTemplate, GemmaRendersAsJinja) {
  const ChatTemplate t = fixture_template("google-gemma-2-2b-it.jinja");
  EXPECT_EQ(render_chat(t, kOne, true), "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(render_chat(t, kOne, false), "<bos><start_of_turn>user\nHello!<end_of_turn>\n");
  EXPECT_EQ(render_chat(t, kSpaces, true),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello there.<end_of_turn>\n"
            "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
  // Gemma 2 refuses a system message; braid merges it into the first turn as Gemma 3 does.
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello there."
            "<end_of_turn>\n<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi35RendersAsJinja) {
  ChatTemplate t = fixture_template("microsoft-Phi-3.5-mini-instruct.jinja");
  EXPECT_EQ(render_chat(t, kOne, true), "<|user|>\nHello!<|end|>\n<|assistant|>\n");
  EXPECT_EQ(render_chat(t, kOne, false), "<|user|>\nHello!<|end|>\n<|endoftext|>");
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello there.<|end|>\n<|user|>\n"
            "How are you?<|end|>\n<|assistant|>\n");
  EXPECT_EQ(render_chat(t, kSpaces, false),
            "<|user|>\n Hi <|end|>\n<|assistant|>\n Hello there. <|end|>\n<|user|>\nHow are you?<|end|>\n"
            "<|endoftext|>");
  EXPECT_EQ(render_chat(t, {{"system", ""}, {"user", "Hello!"}}, true), "<|user|>\nHello!<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, MistralNemoRendersAsJinja) {
  const ChatTemplate t = fixture_template("mistralai-Mistral-Nemo-Instruct-2407.jinja");
  EXPECT_EQ(render_chat(t, kOne, true), "<s>[INST]Hello![/INST]");
  EXPECT_EQ(render_chat(t, kOne, false), "<s>[INST]Hello![/INST]");
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<s>[INST]Hi[/INST]Hello there.</s>[INST]You are terse.\n\nHow are you?[/INST]");
  EXPECT_EQ(render_chat(t, kSpaces, true), "<s>[INST] Hi [/INST] Hello there. </s>[INST]How are you?[/INST]");
}

TEST(ChatTemplate, Llama2RendersAsJinja) {
  // Llama-2-chat's template (not among the fixtures).
  const char* const llama2_chat = R"jinja({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})jinja";
  const ChatTemplate t = detect_chat_template(llama2_chat);
  ASSERT_EQ(t.family, ChatFamily::Llama2);
  EXPECT_EQ(render_chat(t, kOne, true), "<s>[INST] Hello! [/INST]");
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello there. </s><s>[INST] How are you? "
            "[/INST]");
  EXPECT_EQ(render_chat(t, kSpaces, true), "<s>[INST] Hi [/INST] Hello there. </s><s>[INST] How are you? [/INST]");
}

// DeepSeek-R1-Distill-Qwen-32B's template (not among the fixtures; as llama.cpp's
// models/templates carries it, rendered by Jinja2 3.1.6 with enable_thinking true, which
// gives the original's generation prompt): detected from its turn markers.
TEST(ChatTemplate, DeepSeekR1RendersAsJinja) {
  const ChatTemplate t = detect_chat_template(
      "{%- endfor -%}{{bos_token}}{{ns.system_prompt}}{%- for message in messages -%}{%- if message['role'] == "
      "'user' -%}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif -%} ... "
      "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}");
  ASSERT_EQ(t.family, ChatFamily::DeepSeekR1);
  EXPECT_EQ(render_chat(t, kOne, true), "<｜begin▁of▁sentence｜><｜User｜>Hello!<｜Assistant｜><think>\n");
  EXPECT_EQ(render_chat(t, kOne, false), "<｜begin▁of▁sentence｜><｜User｜>Hello!");
  EXPECT_EQ(render_chat(t, kMulti, true),
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>Hello there.<｜end▁of▁sentence｜><｜User｜>How "
            "are you?<｜Assistant｜><think>\n");
  EXPECT_EQ(render_chat(t, kSpaces, false),
            "<｜begin▁of▁sentence｜><｜User｜> Hi <｜Assistant｜> Hello there. <｜end▁of▁sentence｜><｜User｜>How are you?");
  // An answer's reasoning stays out of the history.
  EXPECT_EQ(render_chat(t, {{"user", "2+2?"}, {"assistant", "<think>\nadd\n</think>\n\n4"}, {"user", "3+3?"}}, true),
            "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n");
}

TEST(ChatTemplate, UnknownNamesAndTemplatesAreClearErrors) {
  try {
    chat_template_by_name("vicuna");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown chat template 'vicuna'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("chatml, llama3, llama2, mistral-nemo, gemma, phi3, deepseek-r1"),
              std::string::npos)
        << e.what();
  }
  try {
    detect_chat_template("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat template not recognised"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("### {{ m['role'] }}"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render_chat(chat_template_by_name("chatml"), {{"tool", "42"}}, true), Error);
  for (const char* name : {"chatml", "llama3", "llama2", "mistral-nemo", "gemma", "phi3", "deepseek-r1"}) {
    EXPECT_EQ(chat_family_name(chat_template_by_name(name).family), name);
  }
}

}  // namespace
}  // namespace braid
