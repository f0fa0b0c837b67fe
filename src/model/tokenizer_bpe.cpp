// Byte-level BPE (tokenizer.ggml.model = "gpt2": GPT-2, Llama 3, Qwen2, SmolLM2), a
// pipeline of the parts in bpe/, in the order HF tokenizers runs them:
//   1. special tokens written in the text are cut out first (bpe/special_tokens.h);
//   2. the pre-tokenizer cuts the rest into words by the model's regexes (pre_tokenizer.h);
//   3. each word merges from single bytes into pieces by rank (merges.h), its bytes read
//      through the byte-level alphabet (byte_level.h);
//   4. decoding maps each piece's characters back to bytes.
// There is no space prefix and no normalizer: the text is tokenized as it is.
#include <fmt/format.h>

#include "braid/graph.h"
#include "braid/tokenizer.h"
#include "model/bpe/byte_level.h"
#include "model/bpe/merges.h"
#include "model/bpe/pre_tokenizer.h"
#include "model/bpe/special_tokens.h"

namespace braid {
namespace {

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(Vocabulary vocab)
      : Tokenizer(std::move(vocab)),
        pre_tokenizer_(bpe::PreTokenizer::named(vocab_.pre)),
        merges_(vocab_),
        specials_(vocab_) {}
  // specials_ points into vocab_: a copy would point into the original.
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    if (add_bos && vocab_.bos_id >= 0) ids.push_back(vocab_.bos_id);
    std::string word_pieces;
    for (const bpe::Fragment& fragment : specials_.split(text)) {
      if (fragment.id >= 0) {
        ids.push_back(fragment.id);
        continue;
      }
      for (std::string_view word : pre_tokenizer_.split(fragment.text)) {
        if (pre_tokenizer_.ignore_merges()) {
          word_pieces.clear();
          bpe::append_byte_level(word, word_pieces);
          const int32_t id = vocab_.find(word_pieces);
          if (id >= 0) {
            ids.push_back(id);
            continue;
          }
        }
        merges_.encode_word(word, ids);
      }
    }
    return ids;
  }

  std::string token_to_piece(int32_t id) const override {
    const TokenType type = vocab_.type(id);  // throws for an id outside the vocabulary
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    switch (type) {
      case TokenType::Normal:
      case TokenType::Byte:  // in a byte-level vocabulary, one alphabet character
        return bpe::bytes_of_byte_level(piece);
      case TokenType::UserDefined:
        return piece;
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::Unused:
      case TokenType::Undefined:
        return "";
    }
    return "";
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) text += token_to_piece(id);
    return text;
  }

 private:
  bpe::PreTokenizer pre_tokenizer_;
  bpe::Merges merges_;
  bpe::SpecialTokens specials_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocabulary vocab) {
  return std::make_unique<BpeTokenizer>(std::move(vocab));
}

}  // namespace braid
