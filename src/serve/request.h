// The body of an OpenAI-style request (POST /v1/chat/completions, POST /v1/completions),
// parsed and checked into plain data before anything else sees it.
//
// Every problem a client can cause is a RequestError: an HTTP status and the fields of
// OpenAI's error body ({"error": {"message", "type", "param", "code"}}). parse_request
// throws nothing else for any input (fuzz/serve_request_fuzzer.cpp holds it to that).
// Fields that change nothing braid answers (user, metadata, ...) are ignored. Fields it
// cannot honour (n above 1, logprobs, tools, logit_bias, a JSON response_format, ...) are
// refused when they ask for something, and pass with their neutral values (false, 0,
// empty), which OpenAI's clients may send by default.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "braid/chat_template.h"

namespace braid::serve {

struct RequestError : std::runtime_error {
  RequestError(int status, std::string message, std::string param = {}, std::string code = {},
               std::string type = "invalid_request_error");
  int status = 400;
  std::string param;  // the offending field ("" when none: null in the body)
  std::string code;   // e.g. "model_not_found" ("" when none)
  std::string type;
};

// The JSON text of an OpenAI error body for `error`.
std::string error_body(const RequestError& error);

enum class Endpoint { Chat, Completion };

struct Request {
  Endpoint endpoint = Endpoint::Chat;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completion
  std::string model;                  // as the client named it ("" when absent)
  std::optional<int> max_tokens;      // absent: until the end of the context
  // Absent fields take braid's sampling defaults (SamplingOptions); a temperature of 0
  // is greedy. No seed: a fresh one per request.
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  float presence_penalty = 0.0f;   // OpenAI's, -2..2 (SamplingOptions)
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // at most 4 non-empty strings, as OpenAI allows
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
  // Not OpenAI's: generate max_tokens even past the end-of-generation tokens (EOS, eot,
  // im_end), as llama.cpp's server and vLLM allow, so that a benchmark's requests all
  // have the length it asked for. Stop strings still apply.
  bool ignore_eos = false;
};

// What the server serves, for the checks that need it.
struct RequestLimits {
  int n_ctx = 0;                          // context length of every slot
  std::vector<std::string> model_names;   // names a request may use for the model
};

// Parses and checks a JSON body. Throws RequestError (status 400) for malformed JSON,
// fields of the wrong type or out of range, missing messages/prompt, max_tokens above
// the context and a model name not in limits.model_names.
Request parse_request(std::string_view body, Endpoint endpoint, const RequestLimits& limits);

// The check that needs the prompt in tokens: throws RequestError when the prompt leaves
// no room to generate, or the prompt and an explicit max_tokens exceed the context.
// Returns how many tokens the request may generate.
int check_prompt_length(const Request& request, int prompt_tokens, int n_ctx);

}  // namespace braid::serve
