// ChatSession: see Note [Chat turns and the KV cache] in braid/chat.h.
#include "braid/chat.h"

#include <fmt/format.h>

#include "braid/graph.h"

namespace braid {

ChatTemplate choose_chat_template(std::string_view name, std::string_view template_text, const Vocabulary& vocab) {
  ChatTemplate t;
  if (!name.empty()) {
    t = chat_template_by_name(name);
  } else if (template_text.empty()) {
    throw Error(fmt::format("the model has no chat template (tokenizer.chat_template); pick one with "
                            "--chat-template NAME ({})",
                            known_chat_template_names()));
  } else {
    t = detect_chat_template(template_text);
  }
  // The template writes bos_token and eos_token as the model's own pieces.
  if (vocab.bos_id >= 0 && t.family != ChatFamily::ChatML) t.bos_token = vocab.tokens[static_cast<size_t>(vocab.bos_id)];
  if (vocab.eos_id >= 0) t.eos_token = vocab.tokens[static_cast<size_t>(vocab.eos_id)];
  return t;
}

ChatSession::ChatSession(ModelRunner& runner, const Tokenizer& tokenizer, ChatTemplate chat_template,
                         std::string system)
    : runner_(runner), tokenizer_(tokenizer), template_(std::move(chat_template)), system_(std::move(system)) {
  reset();
}

void ChatSession::reset() {
  runner_.reset();
  messages_.clear();
  if (!system_.empty()) messages_.push_back({"system", system_});
  cached_.clear();
  cached_text_.clear();
  pending_.clear();
  kept_cache_ = false;
}

GenerateResult ChatSession::send(std::string_view user_message, const GenerateOptions& options,
                                 const TokenCallback& on_token) {
  std::vector<ChatMessage> conversation = messages_;
  conversation.push_back({"user", std::string(user_message)});
  const std::string text = render_chat(template_, conversation, true);

  // The cache can serve only while the runner is where this session left it.
  const bool keep = !cached_text_.empty() && runner_.position() == static_cast<int>(cached_.size()) &&
                    text.compare(0, cached_text_.size(), cached_text_) == 0;
  std::vector<int32_t> tokens;
  if (keep) {
    tokens = pending_;
    const std::vector<int32_t> rest =
        tokenizer_.encode_with_special(std::string_view(text).substr(cached_text_.size()), false);
    tokens.insert(tokens.end(), rest.begin(), rest.end());
  } else {
    tokens = tokenizer_.encode_with_special(text, false);
    const Vocabulary& vocab = tokenizer_.vocabulary();
    // The template may write BOS itself (Llama 3, Gemma); one is enough.
    if (vocab.add_bos && vocab.bos_id >= 0 && (tokens.empty() || tokens.front() != vocab.bos_id)) {
      tokens.insert(tokens.begin(), vocab.bos_id);
    }
  }
  const int start = keep ? runner_.position() : 0;
  const int n_ctx = runner_.model().config.n_ctx;
  if (start + static_cast<int>(tokens.size()) > n_ctx) {
    throw Error(fmt::format("the conversation is full: this turn needs {} tokens after the {} in the cache, "
                            "and the context holds {} (/reset starts a new conversation)",
                            tokens.size(), start, n_ctx));
  }

  if (!keep) {
    runner_.reset();
    cached_.clear();
  }
  kept_cache_ = keep;
  GenerateResult result;
  try {
    result = generate_tokens(runner_, tokenizer_, tokens, options, on_token);
  } catch (...) {
    // The cache no longer matches what the session knows: the next turn starts over.
    cached_text_.clear();
    throw;
  }
  // Reply tokens that were evaluated are in the cache; the last one may not be.
  const size_t evaluated = static_cast<size_t>(runner_.position() - start) - tokens.size();
  cached_.insert(cached_.end(), tokens.begin(), tokens.end());
  cached_.insert(cached_.end(), result.tokens.begin(), result.tokens.begin() + static_cast<std::ptrdiff_t>(evaluated));
  pending_.assign(result.tokens.begin() + static_cast<std::ptrdiff_t>(evaluated), result.tokens.end());
  cached_text_ = text + result.text;
  messages_ = std::move(conversation);
  messages_.push_back({"assistant", result.text});
  return result;
}

}  // namespace braid
