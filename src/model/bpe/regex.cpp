#include "model/bpe/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <memory>

#include "braid/graph.h"

namespace braid::bpe {
namespace {

pcre2_code* as_code(void* code) { return static_cast<pcre2_code*>(code); }

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

Regex::Regex(std::string pattern) : pattern_(std::move(pattern)) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw Error(fmt::format("pre-tokenizer regex '{}' at {}: {}", pattern_, error_offset,
                            reinterpret_cast<const char*>(message)));
  }
  // Without JIT (not built in, or no executable memory) the interpreter gives the same
  // matches, slower.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(as_code(code_)); }

void Regex::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  const std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
      pcre2_match_data_create_from_pattern(as_code(code_), nullptr));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t done = 0;  // text before this is in pieces
  size_t from = 0;  // where the next search starts
  while (from < text.size()) {
    const int rc = pcre2_match(as_code(code_), subject, text.size(), from, 0, match.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      throw Error(fmt::format("pre-tokenizer regex '{}': {}", pattern_, reinterpret_cast<const char*>(message)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    const size_t start = ovector[0], end = ovector[1];
    if (start > done) {
      pieces.push_back(text.substr(done, start - done));
      done = start;
    }
    if (end > start) {
      pieces.push_back(text.substr(start, end - start));
      done = end;
      from = end;
    } else {
      from = start + 1;  // an empty match (no model's expression has one): step past it
    }
  }
  if (done < text.size()) pieces.push_back(text.substr(done));
}

}  // namespace braid::bpe
