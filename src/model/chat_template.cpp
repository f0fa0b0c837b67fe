// Chat templates: family detection from the Jinja text, and one render function per family.
// Each function follows its real template line by line (the Jinja it mirrors is named
// above it); where templates of one family differ (Qwen2.5 and SmolLM2 write different
// default system prompts), the difference is data in ChatTemplate, not another branch.
#include "braid/chat_template.h"

#include <fmt/format.h>

#include <array>
#include <ctime>

#include "braid/graph.h"

namespace braid {
namespace {

struct FamilyInfo {
  ChatFamily family;
  std::string_view name;
  std::string_view bos_token;
  std::string_view eos_token;
};

constexpr std::array<FamilyInfo, 7> kFamilies = {{
    {ChatFamily::ChatML, "chatml", "", "<|im_end|>"},
    {ChatFamily::Llama3, "llama3", "<|begin_of_text|>", "<|eot_id|>"},
    {ChatFamily::Llama2, "llama2", "<s>", "</s>"},
    {ChatFamily::MistralNemo, "mistral-nemo", "<s>", "</s>"},
    {ChatFamily::Gemma, "gemma", "<bos>", "<eos>"},
    {ChatFamily::Phi3, "phi3", "<s>", "<|endoftext|>"},
    {ChatFamily::DeepSeekR1, "deepseek-r1", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"},
}};

const FamilyInfo& info(ChatFamily family) {
  for (const FamilyInfo& f : kFamilies) {
    if (f.family == family) return f;
  }
  throw Error("unknown chat template family");
}

ChatTemplate make_template(ChatFamily family) {
  const FamilyInfo& f = info(family);
  ChatTemplate t;
  t.family = family;
  t.bos_token = f.bos_token;
  t.eos_token = f.eos_token;
  if (family == ChatFamily::Llama3) t.date = chat_date_today();
  return t;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Jinja's `trim` and Python's str.strip(): whitespace off both ends.
std::string trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(kSpace) - first + 1));
}

// The text a ChatML template writes as its system turn when the conversation has none:
// the literal between "<|im_start|>system\n" and "<|im_end|>" (a plain string in the
// template, with "\n" written as an escape or as a real line break). "" when the template
// writes no such literal (only the caller's system message).
std::string chatml_default_system(std::string_view text) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  for (size_t at = text.find(kOpen); at != std::string_view::npos; at = text.find(kOpen, at + 1)) {
    size_t start = at + kOpen.size();
    if (text.substr(start, 2) == "\\n") {
      start += 2;
    } else if (text.substr(start, 1) == "\n") {
      start += 1;
    } else {
      continue;
    }
    const size_t end = text.find("<|im_end|>", start);
    if (end == std::string_view::npos) break;
    const std::string_view literal = text.substr(start, end - start);
    // A quote, brace or '+' means an expression follows (the caller's message), not a literal.
    if (literal.empty() || literal.find_first_of("'\"{}+") != std::string_view::npos) continue;
    std::string prompt;
    for (size_t i = 0; i < literal.size(); ++i) {
      if (literal[i] == '\\' && i + 1 < literal.size() && literal[i + 1] == 'n') {
        prompt += '\n';
        ++i;
      } else {
        prompt += literal[i];
      }
    }
    return prompt;
  }
  return {};
}

// The system message, when the conversation opens with one, and the rest.
struct SplitSystem {
  const ChatMessage* system = nullptr;
  std::vector<const ChatMessage*> rest;
};
SplitSystem split_system(const std::vector<ChatMessage>& messages) {
  SplitSystem split;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && messages[i].role == "system") {
      split.system = &messages[i];
    } else {
      split.rest.push_back(&messages[i]);
    }
  }
  return split;
}

// Qwen2.5 and SmolLM2 (no tools): the default system turn when the first message is not
// a system message, then every message as one <|im_start|> block.
std::string render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  std::string out;
  if (!t.default_system.empty() && (messages.empty() || messages.front().role != "system")) {
    out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  }
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (generation) out += "<|im_start|>assistant\n";
  return out;
}

// Llama 3.2 (no tools): the system block always, with the knowledge-cutoff and date lines
// before the (trimmed) system message; every content trimmed.
std::string render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  const SplitSystem split = split_system(messages);
  std::string out = t.bos_token;
  out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ";
  out += (t.date.empty() ? std::string("26 Jul 2024") : t.date) + "\n\n";
  if (split.system != nullptr) out += trim(split.system->content);
  out += "<|eot_id|>";
  for (const ChatMessage* m : split.rest) {
    out += "<|start_header_id|>" + m->role + "<|end_header_id|>\n\n" + trim(m->content) + "<|eot_id|>";
  }
  if (generation) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Llama 2 chat: BOS before every user turn, the system prompt inside the first one.
std::string render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool) {
  const SplitSystem split = split_system(messages);
  std::string out;
  for (size_t i = 0; i < split.rest.size(); ++i) {
    const ChatMessage& m = *split.rest[i];
    std::string content = m.content;
    if (i == 0 && split.system != nullptr) {
      content = "<<SYS>>\n" + split.system->content + "\n<</SYS>>\n\n" + content;
    }
    if (m.role == "user") {
      out += t.bos_token + "[INST] " + trim(content) + " [/INST]";
    } else if (m.role == "assistant") {
      out += " " + trim(content) + " " + t.eos_token;
    }
  }
  return out;
}

// Mistral-Nemo-Instruct-2407 (no tools): no spaces around [INST]; the system prompt goes
// into the last message when that is a user message (so it moves as the chat grows).
std::string render_mistral_nemo(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool) {
  const SplitSystem split = split_system(messages);
  std::string out = t.bos_token;
  for (size_t i = 0; i < split.rest.size(); ++i) {
    const ChatMessage& m = *split.rest[i];
    if (m.role == "user") {
      const bool last = i + 1 == split.rest.size();
      out += "[INST]";
      if (last && split.system != nullptr) out += split.system->content + "\n\n";
      out += m.content + "[/INST]";
    } else if (m.role == "assistant") {
      out += m.content + t.eos_token;
    }
  }
  return out;
}

// Gemma 2 (and 3's system handling, which Gemma 2 refuses): the assistant is "model",
// contents trimmed, a system message prefixed to the first turn.
std::string render_gemma(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  const SplitSystem split = split_system(messages);
  std::string out = t.bos_token;
  for (size_t i = 0; i < split.rest.size(); ++i) {
    const ChatMessage& m = *split.rest[i];
    out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : m.role) + "\n";
    if (i == 0 && split.system != nullptr) out += split.system->content + "\n\n";
    out += trim(m.content) + "<end_of_turn>\n";
  }
  if (generation) out += "<start_of_turn>model\n";
  return out;
}

// Phi-3.5: an empty system message is left out; without a generation prompt the text
// ends with EOS.
std::string render_phi3(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  std::string out;
  for (const ChatMessage& m : messages) {
    if (m.role == "system" && m.content.empty()) continue;
    out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
  }
  out += generation ? "<|assistant|>\n" : t.eos_token;
  return out;
}

// DeepSeek-R1's distillations (Qwen, Llama; no tools): BOS, the last system message as it
// is, then each turn after its marker, an answer's reasoning (up to the last </think>)
// left out of the history; the generation prompt opens the reasoning with "<think>\n".
std::string render_deepseek_r1(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  std::string out = t.bos_token;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") out = t.bos_token + m.content;  // (the last one counts, before every turn)
  }
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      out += "<｜User｜>" + m.content;
    } else if (m.role == "assistant") {
      constexpr std::string_view kThinkEnd = "</think>";
      const size_t think_end = m.content.rfind(kThinkEnd);
      const std::string_view answer = think_end == std::string::npos
                                          ? std::string_view(m.content)
                                          : std::string_view(m.content).substr(think_end + kThinkEnd.size());
      out += "<｜Assistant｜>" + std::string(answer) + t.eos_token;
    }
  }
  if (generation) out += "<｜Assistant｜><think>\n";
  return out;
}

}  // namespace

std::string_view chat_family_name(ChatFamily family) { return info(family).name; }

std::string known_chat_template_names() {
  std::string names;
  for (const FamilyInfo& f : kFamilies) names += (names.empty() ? "" : ", ") + std::string(f.name);
  return names;
}

ChatTemplate chat_template_by_name(std::string_view name) {
  for (const FamilyInfo& f : kFamilies) {
    if (f.name == name) return make_template(f.family);
  }
  throw Error(fmt::format("unknown chat template '{}' (known: {})", name, known_chat_template_names()));
}

ChatTemplate detect_chat_template(std::string_view text) {
  if (contains(text, "<|im_start|>")) {
    ChatTemplate t = make_template(ChatFamily::ChatML);
    t.default_system = chatml_default_system(text);
    return t;
  }
  if (contains(text, "<|start_header_id|>")) return make_template(ChatFamily::Llama3);
  if (contains(text, "<start_of_turn>")) return make_template(ChatFamily::Gemma);
  if (contains(text, "<|user|>") && contains(text, "<|end|>")) return make_template(ChatFamily::Phi3);
  if (contains(text, "<｜User｜>") && contains(text, "<｜Assistant｜>")) return make_template(ChatFamily::DeepSeekR1);
  if (contains(text, "[INST]")) {
    // Llama 2 writes "[INST] " with a space and a <<SYS>> block; Mistral-Nemo (v3 Tekken)
    // writes "[INST]" straight against the message.
    const bool unspaced = contains(text, "\"[INST]\" +") || contains(text, "'[INST]' +");
    return make_template(unspaced && !contains(text, "<<SYS>>") ? ChatFamily::MistralNemo : ChatFamily::Llama2);
  }
  std::string start(text.substr(0, 60));
  for (char& c : start) {
    if (c == '\n') c = ' ';
  }
  throw Error(fmt::format("chat template not recognised (it starts \"{}{}\"); braid knows {}: pick one with "
                          "--chat-template NAME",
                          start, text.size() > 60 ? "..." : "", known_chat_template_names()));
}

std::string render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages, bool generation) {
  for (const ChatMessage& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      throw Error(fmt::format("chat template {}: unknown role '{}' (known: system, user, assistant)",
                              chat_family_name(t.family), m.role));
    }
  }
  switch (t.family) {
    case ChatFamily::ChatML:
      return render_chatml(t, messages, generation);
    case ChatFamily::Llama3:
      return render_llama3(t, messages, generation);
    case ChatFamily::Llama2:
      return render_llama2(t, messages, generation);
    case ChatFamily::MistralNemo:
      return render_mistral_nemo(t, messages, generation);
    case ChatFamily::Gemma:
      return render_gemma(t, messages, generation);
    case ChatFamily::Phi3:
      return render_phi3(t, messages, generation);
    case ChatFamily::DeepSeekR1:
      return render_deepseek_r1(t, messages, generation);
  }
  throw Error("unknown chat template family");
}

std::string chat_date_today() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%d %b %Y", &local);
  return text.data();
}

}  // namespace braid
