// The JSON bodies `braid serve` answers with, in OpenAI's shapes: whole completions,
// streamed chunks (chat.completion.chunk / text_completion), the model list. Generated
// text may hold bytes that are not UTF-8 (a model can emit any byte): they are written
// as U+FFFD rather than failing the response.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "serve/request.h"
#include "serve/request_handle.h"

namespace braid::serve {

struct ResponseInfo {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;     // "chatcmpl-..." or "cmpl-..."
  std::string model;
  int64_t created = 0;  // Unix seconds
};

std::string completion_body(const ResponseInfo& info, const std::string& text, FinishReason finish, Usage usage);
// One streamed chunk: the first of a chat carries the role; the last the finish reason.
std::string chunk_body(const ResponseInfo& info, const std::string& text, bool first,
                       std::optional<FinishReason> finish);
// stream_options.include_usage: the chunk after the last, with no choices.
std::string usage_chunk_body(const ResponseInfo& info, Usage usage);
std::string models_body(const std::string& model, int64_t created);

}  // namespace braid::serve
