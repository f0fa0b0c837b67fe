// SentencePiece (SPM) tokenizer, as llama.cpp runs it on tokenizer.ggml.model = "llama".
//
// Encoding works on the text with spaces written as U+2581 "▁" (and one "▁" in front,
// where the vocabulary asks for a space prefix, so that a word at the start of the text
// gets the same token as the same word after a space). The text starts as one symbol per
// UTF-8 character (a byte that does not start a valid character is a symbol of its own).
// The adjacent pair whose concatenation is a vocabulary piece with the highest score
// merges into one symbol, again and again, until no adjacent pair forms a piece. Ties go
// to the leftmost pair, which makes the result deterministic and equal to llama.cpp's. A
// symbol that is not a piece (only single characters can be: merged symbols are pieces
// by construction) is written as its bytes, each the byte token "<0xXX>". Merge
// candidates live in a priority queue; a candidate whose symbols have changed since it
// was queued is recognized by its length and skipped.
#include <fmt/format.h>

#include <array>
#include <queue>
#include <vector>

#include "braid/graph.h"
#include "braid/tokenizer.h"

namespace braid {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";    // U+2581, SentencePiece's space
constexpr std::string_view kUnknownMark = "\xE2\x96\x85";  // U+2585, what llama.cpp shows for <unk>

// Bytes of the UTF-8 character at `at`: the length its lead byte announces (from the high
// nibble, as llama.cpp reads it) when that many bytes follow and all are continuation
// bytes; otherwise 1. llama.cpp takes the announced length on trust, so a stray byte
// there swallows what follows, an escaped space included, which decoding could not give
// back; on valid UTF-8 both agree.
size_t utf8_character_length(std::string_view text, size_t at) {
  static constexpr std::array<uint8_t, 16> kByHighNibble = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  const size_t length = kByHighNibble[static_cast<uint8_t>(text[at]) >> 4];
  if (length == 1 || at + length > text.size()) return 1;
  for (size_t i = 1; i < length; ++i) {
    if ((static_cast<uint8_t>(text[at + i]) & 0xC0) != 0x80) return 1;
  }
  return length;
}

// "<0x0A>" -> 0x0A; -1 when the piece is not of that form.
int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocabulary vocab) : Tokenizer(std::move(vocab)) {
    for (int b = 0; b < 256; ++b) {
      int32_t id = vocab_.find(fmt::format("<0x{:02X}>", b));
      // Vocabularies without byte tokens may hold the byte itself as a piece.
      if (id < 0) id = vocab_.find(std::string(1, static_cast<char>(b)));
      byte_ids_[static_cast<size_t>(b)] = id >= 0 ? id : vocab_.unk_id;
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    if (add_bos && vocab_.bos_id >= 0) ids.push_back(vocab_.bos_id);
    if (text.empty()) return ids;

    std::string escaped;
    escaped.reserve(text.size() + 3);
    if (vocab_.add_space_prefix) escaped += kSpaceMark;
    for (char c : text) {
      if (c == ' ') {
        escaped += kSpaceMark;
      } else {
        escaped += c;
      }
    }

    std::vector<Symbol> symbols;
    for (size_t at = 0; at < escaped.size();) {
      const size_t length = utf8_character_length(escaped, at);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back(Symbol{index - 1, index + 1, at, length});
      at += length;
    }
    symbols.back().next = -1;

    std::priority_queue<Candidate> queue;
    auto propose = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[static_cast<size_t>(left)];
      const Symbol& r = symbols[static_cast<size_t>(right)];
      const std::string_view merged(escaped.data() + l.start, l.length + r.length);
      const int32_t id = vocab_.find(merged);
      if (id < 0) return;
      queue.push(Candidate{left, right, vocab_.scores[static_cast<size_t>(id)], merged.size()});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) propose(i - 1, i);

    while (!queue.empty()) {
      const Candidate best = queue.top();
      queue.pop();
      Symbol& l = symbols[static_cast<size_t>(best.left)];
      Symbol& r = symbols[static_cast<size_t>(best.right)];
      // A symbol only grows by absorbing its right neighbour and drops to length 0 when
      // absorbed, so unchanged lengths mean the pair is still adjacent and unmerged.
      if (l.length == 0 || r.length == 0 || l.length + r.length != best.length) continue;
      l.length += r.length;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = best.left;
      propose(l.prev, best.left);
      propose(best.left, l.next);
    }

    for (int i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
      const Symbol& s = symbols[static_cast<size_t>(i)];
      const std::string_view piece(escaped.data() + s.start, s.length);
      const int32_t id = vocab_.find(piece);
      if (id >= 0) {
        ids.push_back(id);
        continue;
      }
      for (char byte : piece) ids.push_back(byte_id(static_cast<uint8_t>(byte)));
    }
    return ids;
  }

  std::string token_to_piece(int32_t id) const override {
    const std::string& piece = vocab_.tokens[static_cast<size_t>(id)];
    switch (vocab_.type(id)) {
      case TokenType::Normal:
        return unescape_spaces(piece);
      case TokenType::UserDefined:
        return piece;
      case TokenType::Unknown:
        return std::string(kUnknownMark);
      case TokenType::Byte: {
        const int byte = parse_byte_piece(piece);
        return byte >= 0 ? std::string(1, static_cast<char>(byte)) : unescape_spaces(piece);
      }
      case TokenType::Control:
      case TokenType::Unused:
      case TokenType::Undefined:
        return "";
    }
    return "";
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    bool strip_prefix = vocab_.add_space_prefix;
    for (int32_t id : ids) {
      std::string piece = token_to_piece(id);
      if (piece.empty()) continue;  // control tokens neither produce text nor end the prefix
      if (strip_prefix && piece.front() == ' ') piece.erase(0, 1);
      strip_prefix = false;
      text += piece;
    }
    return text;
  }

 private:
  struct Symbol {
    int prev;
    int next;  // -1 at the end
    size_t start;
    size_t length;  // 0 once merged into the symbol on its left
  };
  struct Candidate {
    int left;
    int right;
    float score;
    size_t length;
    // The queue's top is the highest score, then the leftmost pair.
    bool operator<(const Candidate& other) const {
      return score < other.score || (score == other.score && left > other.left);
    }
  };

  int32_t byte_id(uint8_t byte) const {
    const int32_t id = byte_ids_[byte];
    if (id < 0) {
      throw Error(fmt::format("tokenizer: byte 0x{:02X} has no token and the vocabulary has no unknown token", byte));
    }
    return id;
  }

  static std::string unescape_spaces(const std::string& piece) {
    std::string out;
    out.reserve(piece.size());
    for (size_t at = 0; at < piece.size();) {
      if (piece.compare(at, kSpaceMark.size(), kSpaceMark) == 0) {
        out += ' ';
        at += kSpaceMark.size();
      } else {
        out += piece[at++];
      }
    }
    return out;
  }

  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocabulary vocab) {
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace braid
