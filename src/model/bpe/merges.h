// The BPE model: a word (the bytes of one pre-tokenized piece) starts as one symbol per
// byte, each the vocabulary piece of that byte's byte-level character. Then, again and
// again, the adjacent pair that tokenizer.ggml.merges lists first merges into one
// symbol (ties: the leftmost pair), until no adjacent pair is a merge. Pairs are keyed
// by the ids of their two pieces, so merging compares integers, never strings.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "braid/tokenizer.h"

namespace braid::bpe {

class Merges {
 public:
  // Throws braid::Error for a merge that is not two pieces separated by a space, or whose
  // pieces or result the vocabulary lacks.
  explicit Merges(const Vocabulary& vocab);

  // Appends the ids of the word `bytes` (raw bytes, not byte-level characters). A byte
  // whose character has no piece gives the unknown token; without one, braid::Error.
  void encode_word(std::string_view bytes, std::vector<int32_t>& ids) const;

  size_t size() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;    // position in tokenizer.ggml.merges: lower merges first
    int32_t result;  // the id of the two pieces joined
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Merge* find(int32_t left, int32_t right) const;

  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // the piece of each byte's character, or -1
  int32_t unk_id_ = -1;
};

}  // namespace braid::bpe
