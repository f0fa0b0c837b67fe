// A conversation with a model: each turn renders the whole conversation with the chat
// template, evaluates only what the KV cache does not hold yet, and generates the reply.
//
// Note [Chat turns and the KV cache]
// After a reply the cache holds the tokens of the last prompt and of the reply (less the
// token generation stopped at, which is chosen but never evaluated). The session keeps the
// text those tokens stand for. The next turn renders the conversation again; when that text
// starts with the kept text, only the rest is new: it is encoded (special tokens parsed, no
// BOS) and evaluated after the cache, behind the reply tokens not yet evaluated. When it
// does not (a template that trims a reply ending in a space, Mistral-Nemo moving the system
// prompt to the last turn), the session starts over and evaluates the whole conversation
// from position 0, BOS first where the vocabulary asks for one and the text lacks it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "braid/chat_template.h"
#include "braid/generate.h"
#include "braid/runner.h"
#include "braid/tokenizer.h"

namespace braid {

// The template of a model: `name` when given (`--chat-template`), else the one its
// tokenizer.chat_template names (empty: none), with BOS and EOS written as the vocabulary's
// pieces. Throws braid::Error when neither gives a known template, saying how to pick one.
ChatTemplate choose_chat_template(std::string_view name, std::string_view template_text, const Vocabulary& vocab);

class ChatSession {
 public:
  // The runner and tokenizer must outlive the session; the session owns the runner's
  // sequence (it resets it).
  ChatSession(ModelRunner& runner, const Tokenizer& tokenizer, ChatTemplate chat_template, std::string system = {});

  // Adds the user's message, evaluates the new part of the conversation, generates the
  // reply (each token to on_token as it comes) and adds it to the conversation. Throws
  // braid::Error, with the conversation unchanged, when the turn does not fit the context.
  GenerateResult send(std::string_view user_message, const GenerateOptions& options,
                      const TokenCallback& on_token = {});
  // Forgets the conversation (the system prompt stays) and empties the cache.
  void reset();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  // The tokens in the KV cache, in order (positions 0..n-1).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  // Whether the last send() kept the cache and evaluated only the new part.
  bool last_turn_kept_cache() const { return kept_cache_; }

 private:
  ModelRunner& runner_;
  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  std::string system_;
  std::vector<ChatMessage> messages_;
  std::vector<int32_t> cached_;
  std::string cached_text_;       // what cached_ and pending_ stand for
  std::vector<int32_t> pending_;  // reply tokens chosen but not evaluated
  bool kept_cache_ = false;
};

}  // namespace braid
