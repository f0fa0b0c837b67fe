// Chat templates: a conversation (system, user and assistant messages) as the prompt text
// a chat model was trained on.
//
// A GGUF file carries its template as Jinja source (tokenizer.chat_template). braid runs no
// Jinja engine: it recognises the template's family by its markers and renders that family
// with a small function, written to give exactly what the real template gives (the tests
// hold strings rendered by Jinja2 from real templates). The rendered text writes special
// tokens as text ("<|im_start|>"); the tokenizer turns them back into their ids
// (Tokenizer::encode_with_special).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace braid {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatFamily {
  ChatML,       // <|im_start|>role\n...<|im_end|>\n: SmolLM2, Qwen2/2.5, ...
  Llama3,       // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>, with the date preamble
  Llama2,       // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s>
  MistralNemo,  // <s>[INST]user[/INST]answer</s>: no spaces, the system prompt in the last user turn
  Gemma,        // <start_of_turn>user\n...<end_of_turn>\n, assistant written "model"
  Phi3,         // <|user|>\n...<|end|>\n<|assistant|>\n
  DeepSeekR1,   // <BOS>system<｜User｜>...<｜Assistant｜>answer<EOS>: DeepSeek-R1 and its distillations
};

// One family with the values its template fills in.
struct ChatTemplate {
  ChatFamily family = ChatFamily::ChatML;
  std::string bos_token;  // what the template writes for bos_token / eos_token
  std::string eos_token;
  // The system prompt the template writes when the conversation has none (Qwen2.5's "You
  // are Qwen, ...", SmolLM2's "You are a helpful AI assistant named SmolLM, ..."), or "".
  std::string default_system;
  std::string date;  // Llama 3's "Today Date: ..." (the template's strftime_now("%d %b %Y"))
};

std::string_view chat_family_name(ChatFamily family);  // "chatml", "llama3", ...
std::string known_chat_template_names();                // "chatml, llama3, ..." for messages

// The template of a family by name (`--chat-template NAME`), with that family's usual
// special-token texts and no default system prompt. Throws braid::Error naming an unknown
// name and listing the known ones.
ChatTemplate chat_template_by_name(std::string_view name);

// Recognises the family of a Jinja chat template by its markers, and takes the default
// system prompt from the template text where it writes one. Throws braid::Error for a
// template of no known family, listing the known names.
ChatTemplate detect_chat_template(std::string_view template_text);

// The prompt text of `messages` as the family's template renders it; with
// add_generation_prompt, followed by the opening of the assistant's turn. Throws
// braid::Error for a role the family cannot render.
std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

// Today's date as Llama 3's template writes it: "26 Jul 2024".
std::string chat_date_today();

}  // namespace braid
