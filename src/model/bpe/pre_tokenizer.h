// Pre-tokenization: the text cut into words before BPE merges inside each, by the
// regular expressions of the model's tokenizer (tokenizer.ggml.pre names them). A
// model's list applies in order: each expression cuts every piece the previous ones
// left, and a stretch no match covers is a piece too, so the pieces always cover the
// whole text. Unicode classes (\p{L}, \p{N}, \s) come from PCRE2 in UTF + UCP mode.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace braid::bpe {

class Regex;

class PreTokenizer {
 public:
  // Throws braid::Error for a name braid does not know, listing those it does.
  static PreTokenizer named(std::string_view pre);

  std::vector<std::string_view> split(std::string_view text) const;

  const std::string& name() const { return name_; }
  // Llama 3's tokenizer takes a whole word that is a vocabulary piece as it is, without
  // merging (HF tokenizers' ignore_merges).
  bool ignore_merges() const { return ignore_merges_; }

 private:
  std::string name_;
  std::vector<std::shared_ptr<const Regex>> regexes_;
  bool ignore_merges_ = false;
};

// Whether the tokenizer named `pre` puts BOS first when the file does not say
// (tokenizer.ggml.add_bos_token absent): Llama 3's does, GPT-2's and Qwen2's do not.
bool pre_tokenizer_adds_bos(std::string_view pre);

}  // namespace braid::bpe
