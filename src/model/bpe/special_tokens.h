// Special tokens written in the text (<|im_start|>, <|eot_id|>, <|endoftext|>) become
// their token before any pre-tokenization, so that a chat prompt can name them. The
// tokens taken this way are the control, user-defined and unknown ones, longest first:
// each cuts the stretches of plain text the longer ones left, at its every occurrence
// from the left (llama.cpp's order, so both find the same tokens).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "braid/tokenizer.h"

namespace braid::bpe {

struct Fragment {
  std::string_view text;  // plain text, or the special token's text
  int32_t id = -1;        // the special token, or -1 for plain text
};

class SpecialTokens {
 public:
  explicit SpecialTokens(const Vocabulary& vocab);

  // `text` as plain stretches and special tokens, in order; no stretch is empty.
  std::vector<Fragment> split(std::string_view text) const;

 private:
  struct Special {
    std::string_view text;  // into the vocabulary, which outlives this
    int32_t id;
  };
  std::vector<Special> longest_first_;
};

}  // namespace braid::bpe
