#include "serve/request.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <nlohmann/json.hpp>

namespace braid::serve {
namespace {

using nlohmann::json;

constexpr int kMaxNesting = 64;      // deeper JSON is refused before it is parsed
constexpr size_t kMaxStopStrings = 4;  // OpenAI's limit

RequestError bad(std::string message, std::string param = {}) {
  return RequestError(400, std::move(message), std::move(param));
}

// Nesting depth of a JSON text, strings skipped; stops counting past the limit. Keeps
// a hostile "[[[[..." from costing a deep recursion anywhere (parsing, destruction).
bool nesting_within_limit(std::string_view body) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// A field that is absent or null counts as absent, as OpenAI's clients send nulls.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string type_name(const json& value) { return value.type_name(); }

const std::string& need_string(const json& value, const std::string& param) {
  if (!value.is_string()) throw bad(fmt::format("'{}' must be a string, not {}", param, type_name(value)), param);
  return value.get_ref<const std::string&>();
}

int64_t need_integer(const json& value, const std::string& param) {
  if (!value.is_number_integer()) {
    throw bad(fmt::format("'{}' must be an integer, not {}", param, type_name(value)), param);
  }
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  return value.get<int64_t>();
}

double need_number(const json& value, const std::string& param, double lo, double hi) {
  if (!value.is_number()) throw bad(fmt::format("'{}' must be a number, not {}", param, type_name(value)), param);
  const double x = value.get<double>();
  if (!(x >= lo && x <= hi)) throw bad(fmt::format("'{}' must be between {} and {}, not {}", param, lo, hi, x), param);
  return x;
}

// A message's content: a string, or OpenAI's list of parts of which braid reads the text ones.
std::string message_content(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    throw bad(fmt::format("'{}' must be a string or an array of text parts, not {}", param, type_name(content)),
              param);
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string part_param = fmt::format("{}[{}]", param, i);
    const json& part = content[i];
    if (!part.is_object()) throw bad(fmt::format("'{}' must be an object", part_param), part_param);
    const json* type = field(part, "type");
    if (type == nullptr || need_string(*type, part_param + ".type") != "text") {
      throw bad(fmt::format("'{}' must be a part of type \"text\" (the only kind braid reads)", part_param),
                part_param + ".type");
    }
    const json* part_text = field(part, "text");
    if (part_text == nullptr) throw bad(fmt::format("'{}.text' is missing", part_param), part_param + ".text");
    text += need_string(*part_text, part_param + ".text");
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* messages = field(body, "messages");
  if (messages == nullptr) throw bad("'messages' is required", "messages");
  if (!messages->is_array()) {
    throw bad(fmt::format("'messages' must be an array, not {}", type_name(*messages)), "messages");
  }
  if (messages->empty()) throw bad("'messages' must not be empty", "messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string param = fmt::format("messages[{}]", i);
    const json& m = (*messages)[i];
    if (!m.is_object()) throw bad(fmt::format("'{}' must be an object, not {}", param, type_name(m)), param);
    const json* role = field(m, "role");
    if (role == nullptr) throw bad(fmt::format("'{}.role' is required", param), param + ".role");
    std::string r = need_string(*role, param + ".role");
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant") {
      throw bad(fmt::format("'{}.role' must be system, user or assistant, not '{}'", param, r), param + ".role");
    }
    const json* content = field(m, "content");
    if (content == nullptr) throw bad(fmt::format("'{}.content' is required", param), param + ".content");
    out.push_back({std::move(r), message_content(*content, param + ".content")});
  }
  return out;
}

std::string parse_prompt(const json& body) {
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) throw bad("'prompt' is required", "prompt");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) return (*prompt)[0].get<std::string>();
  throw bad("'prompt' must be a string (or an array of one string; token arrays and batches are not supported)",
            "prompt");
}

std::vector<std::string> parse_stop(const json& stop) {
  std::vector<std::string> out;
  if (stop.is_string()) {
    out.push_back(stop.get<std::string>());
  } else if (stop.is_array()) {
    if (stop.size() > kMaxStopStrings) throw bad(fmt::format("'stop' holds at most {} strings", kMaxStopStrings), "stop");
    for (size_t i = 0; i < stop.size(); ++i) out.push_back(need_string(stop[i], fmt::format("stop[{}]", i)));
  } else {
    throw bad(fmt::format("'stop' must be a string or an array of strings, not {}", type_name(stop)), "stop");
  }
  for (const std::string& s : out) {
    if (s.empty()) throw bad("'stop' strings must not be empty", "stop");
  }
  return out;
}

// Fields braid cannot honour are refused when they ask for something, so that no answer
// silently ignores them; their neutral values (false, 0, empty, best_of 1, a "text"
// response_format), which OpenAI's clients may send by default, pass.
bool asks_for_something(const json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) return value.get<double>() != 0.0;
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  if (value.is_array() || value.is_object()) return !value.empty();
  return false;
}

void refuse_what_braid_cannot_honour(const json& body) {
  struct Unsupported {
    const char* name;
    const char* why;
  };
  static constexpr Unsupported kUnsupported[] = {
      {"logprobs", "braid does not return log-probabilities"},
      {"top_logprobs", "braid does not return log-probabilities"},
      {"tools", "braid does not call tools"},
      {"functions", "braid does not call functions"},
      {"logit_bias", "braid does not bias logits"},
      {"echo", "braid does not echo the prompt"},
      {"suffix", "braid does not complete with a suffix"},
  };
  for (const Unsupported& u : kUnsupported) {
    if (const json* value = field(body, u.name); value != nullptr && asks_for_something(*value)) {
      throw bad(fmt::format("'{}': {} (leave it out, or send its neutral value)", u.name, u.why), u.name);
    }
  }
  if (const json* value = field(body, "best_of"); value != nullptr && !(value->is_number_integer() && *value == 1)) {
    throw bad("'best_of' must be 1 (one choice per request)", "best_of");
  }
  if (const json* format = field(body, "response_format")) {
    const json* type = format->is_object() ? field(*format, "type") : nullptr;
    if (type == nullptr || !type->is_string() || *type != "text") {
      throw bad("'response_format' must be {\"type\": \"text\"}: braid does not constrain answers to JSON",
                "response_format");
    }
  }
}

}  // namespace

RequestError::RequestError(int status_, std::string message, std::string param_, std::string code_, std::string type_)
    : std::runtime_error(std::move(message)),
      status(status_),
      param(std::move(param_)),
      code(std::move(code_)),
      type(std::move(type_)) {}

std::string error_body(const RequestError& error) {
  json e = {{"message", error.what()}, {"type", error.type}, {"param", nullptr}, {"code", nullptr}};
  if (!error.param.empty()) e["param"] = error.param;
  if (!error.code.empty()) e["code"] = error.code;
  // (replace: a message quoting a client's broken UTF-8 must not throw here)
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Request parse_request(std::string_view text, Endpoint endpoint, const RequestLimits& limits) {
  if (!nesting_within_limit(text)) throw bad(fmt::format("the JSON body nests deeper than {} levels", kMaxNesting));
  json body = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) throw bad("the body is not valid JSON");
  if (!body.is_object()) throw bad(fmt::format("the body must be a JSON object, not {}", type_name(body)));

  refuse_what_braid_cannot_honour(body);
  Request r;
  r.endpoint = endpoint;
  if (endpoint == Endpoint::Chat) {
    r.messages = parse_messages(body);
  } else {
    r.prompt = parse_prompt(body);
  }
  if (const json* model = field(body, "model")) {
    r.model = need_string(*model, "model");
    const auto& names = limits.model_names;
    if (std::find(names.begin(), names.end(), r.model) == names.end()) {
      throw RequestError(400, fmt::format("the model '{}' does not exist here (this server serves '{}')", r.model,
                                          names.empty() ? std::string() : names.front()),
                         "model", "model_not_found");
    }
  }
  // max_completion_tokens is the newer name of max_tokens in OpenAI's chat API.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (const json* value = field(body, name)) {
      const int64_t n = need_integer(*value, name);
      if (n <= 0) throw bad(fmt::format("'{}' must be at least 1, not {}", name, n), name);
      if (n > limits.n_ctx) {
        throw bad(fmt::format("'{}' is {}, beyond the context of {} tokens", name, n, limits.n_ctx), name);
      }
      r.max_tokens = static_cast<int>(n);
    }
  }
  if (const json* value = field(body, "temperature")) r.temperature = static_cast<float>(need_number(*value, "temperature", 0, 2));
  if (const json* value = field(body, "top_p")) r.top_p = static_cast<float>(need_number(*value, "top_p", 0, 1));
  for (auto [name, penalty] : {std::pair{"presence_penalty", &r.presence_penalty},
                               std::pair{"frequency_penalty", &r.frequency_penalty}}) {
    if (const json* value = field(body, name)) *penalty = static_cast<float>(need_number(*value, name, -2, 2));
  }
  if (const json* value = field(body, "top_k")) {
    const int64_t k = need_integer(*value, "top_k");
    if (k < 0) throw bad(fmt::format("'top_k' must be 0 (no limit) or more, not {}", k), "top_k");
    r.top_k = static_cast<int>(std::min<int64_t>(k, INT32_MAX));
  }
  if (const json* value = field(body, "seed")) r.seed = static_cast<uint64_t>(need_integer(*value, "seed"));
  if (const json* value = field(body, "stop")) r.stop = parse_stop(*value);
  if (const json* value = field(body, "n")) {
    if (need_integer(*value, "n") != 1) throw bad("'n' must be 1 (one choice per request)", "n");
  }
  if (const json* value = field(body, "stream")) {
    if (!value->is_boolean()) throw bad(fmt::format("'stream' must be a boolean, not {}", type_name(*value)), "stream");
    r.stream = value->get<bool>();
  }
  if (const json* value = field(body, "ignore_eos")) {
    if (!value->is_boolean()) {
      throw bad(fmt::format("'ignore_eos' must be a boolean, not {}", type_name(*value)), "ignore_eos");
    }
    r.ignore_eos = value->get<bool>();
  }
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) throw bad("'stream_options' must be an object", "stream_options");
    if (const json* usage = field(*options, "include_usage")) {
      if (!usage->is_boolean()) throw bad("'stream_options.include_usage' must be a boolean", "stream_options");
      r.include_usage = usage->get<bool>();
    }
  }
  return r;
}

int check_prompt_length(const Request& request, int prompt_tokens, int n_ctx) {
  const std::string param = request.endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (prompt_tokens <= 0) throw bad(fmt::format("the {} gives no tokens", param), param);
  if (prompt_tokens >= n_ctx) {
    throw bad(fmt::format("the {} is {} tokens, and the context holds {}: no room to generate", param, prompt_tokens,
                          n_ctx),
              param);
  }
  if (request.max_tokens && prompt_tokens + *request.max_tokens > n_ctx) {
    throw bad(fmt::format("the context holds {} tokens, but {} were asked for ({} in the {}, {} to generate)", n_ctx,
                          prompt_tokens + *request.max_tokens, prompt_tokens, param, *request.max_tokens),
              "max_tokens");
  }
  return request.max_tokens ? *request.max_tokens : n_ctx - prompt_tokens;
}

}  // namespace braid::serve
