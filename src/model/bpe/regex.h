// A compiled PCRE2 expression over UTF-8 text (UTF + UCP: \s, \p{L}, \p{N} are Unicode
// classes), JIT-compiled where PCRE2 can. Text that is not valid UTF-8 is allowed: an
// invalid byte matches nothing, so it ends up in a piece of its own.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace braid::bpe {

class Regex {
 public:
  explicit Regex(std::string pattern);  // throws braid::Error when PCRE2 refuses it
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends to `pieces` the matches in `text` and the stretches between them, in order.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8 (kept out of the header)
};

}  // namespace braid::bpe
