#include "serve/responses.h"

#include <nlohmann/json.hpp>

namespace braid::serve {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json usage_json(Usage u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json head(const ResponseInfo& info, const char* chat_object, const char* completion_object) {
  return {{"id", info.id},
          {"object", info.endpoint == Endpoint::Chat ? chat_object : completion_object},
          {"created", info.created},
          {"model", info.model}};
}

json reason(std::optional<FinishReason> finish) {
  if (!finish) return nullptr;
  return std::string(finish_reason_name(*finish));
}

}  // namespace

std::string completion_body(const ResponseInfo& info, const std::string& text, FinishReason finish, Usage usage) {
  json body = head(info, "chat.completion", "text_completion");
  json choice = {{"index", 0}, {"finish_reason", reason(finish)}, {"logprobs", nullptr}};
  if (info.endpoint == Endpoint::Chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  body["choices"] = json::array({choice});
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string chunk_body(const ResponseInfo& info, const std::string& text, bool first,
                       std::optional<FinishReason> finish) {
  json body = head(info, "chat.completion.chunk", "text_completion");
  json choice = {{"index", 0}, {"finish_reason", reason(finish)}, {"logprobs", nullptr}};
  if (info.endpoint == Endpoint::Chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  body["choices"] = json::array({choice});
  return dump(body);
}

std::string usage_chunk_body(const ResponseInfo& info, Usage usage) {
  json body = head(info, "chat.completion.chunk", "text_completion");
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return dump(body);
}

std::string models_body(const std::string& model, int64_t created) {
  json entry = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "braid"}};
  return dump(json{{"object", "list"}, {"data", json::array({entry})}});
}

}  // namespace braid::serve
