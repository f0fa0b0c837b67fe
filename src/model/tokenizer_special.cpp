// Special tokens written as text, and the tokens that end a turn: what chat needs from any
// tokenizer, whatever its algorithm.
//
// encode_with_special splits the text at the pieces of special tokens the way llama.cpp
// does (its tokenizer_st_partition): the longest special piece first, then the next
// longest in what is left, and so on; each stretch of plain text between them is encoded
// on its own. For SentencePiece that gives every stretch its own space prefix, as
// llama.cpp's "prefix with space if the previous fragment is special" does.
#include <algorithm>
#include <array>

#include "braid/tokenizer.h"

namespace braid {
namespace {

bool is_special(TokenType type) {
  return type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown;
}

struct Fragment {
  std::string_view text;  // plain text when token < 0
  int32_t token = -1;
};

}  // namespace

std::vector<int32_t> end_of_turn_ids(const Vocabulary& vocab) {
  static constexpr std::array<std::string_view, 8> kPieces = {
      "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
      "<EOT>"};
  std::vector<int32_t> ids;
  if (vocab.eot_id >= 0) ids.push_back(vocab.eot_id);
  for (std::string_view piece : kPieces) {
    const int32_t id = vocab.find(piece);
    if (id < 0 || std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
    const TokenType type = vocab.type(id);
    if (type == TokenType::Control || type == TokenType::UserDefined) ids.push_back(id);
  }
  return ids;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return id == vocab_.eos_id || std::find(vocab_.end_of_turn.begin(), vocab_.end_of_turn.end(), id) !=
                                    vocab_.end_of_turn.end();
}

std::vector<int32_t> Tokenizer::encode_with_special(std::string_view text, bool add_bos) const {
  // The special pieces, longest first (ties by id, so that the split is deterministic).
  std::vector<int32_t> specials;
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    if (is_special(vocab_.types[static_cast<size_t>(id)]) && !vocab_.tokens[static_cast<size_t>(id)].empty()) {
      specials.push_back(id);
    }
  }
  std::stable_sort(specials.begin(), specials.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[static_cast<size_t>(a)].size() > vocab_.tokens[static_cast<size_t>(b)].size();
  });

  std::vector<Fragment> fragments = {Fragment{text}};
  for (int32_t id : specials) {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    std::vector<Fragment> split;
    for (const Fragment& f : fragments) {
      if (f.token >= 0 || f.text.find(piece) == std::string_view::npos) {
        split.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at = rest.find(piece); at != std::string_view::npos; at = rest.find(piece)) {
        if (at > 0) split.push_back(Fragment{rest.substr(0, at)});
        split.push_back(Fragment{{}, id});
        rest.remove_prefix(at + piece.size());
      }
      if (!rest.empty()) split.push_back(Fragment{rest});
    }
    fragments = std::move(split);
  }

  std::vector<int32_t> ids;
  if (add_bos && vocab_.bos_id >= 0) ids.push_back(vocab_.bos_id);
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      ids.push_back(f.token);
    } else {
      const std::vector<int32_t> part = encode(f.text, false);
      ids.insert(ids.end(), part.begin(), part.end());
    }
  }
  return ids;
}

}  // namespace braid
