#include "model/bpe/merges.h"

#include <fmt/format.h>

#include <queue>

#include "braid/graph.h"
#include "model/bpe/byte_level.h"

namespace braid::bpe {

Merges::Merges(const Vocabulary& vocab) : unk_id_(vocab.unk_id) {
  for (int byte = 0; byte < 256; ++byte) {
    byte_ids_[static_cast<size_t>(byte)] = vocab.find(byte_to_char(static_cast<unsigned char>(byte)));
  }
  merges_.reserve(vocab.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string& merge = vocab.merges[rank];
    // The first space after the first character separates the pieces (a piece never
    // holds a space: byte-level writes it as "Ġ").
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      throw Error(fmt::format("tokenizer.ggml.merges[{}] = '{}' is not two pieces separated by a space", rank, merge));
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
    joined.assign(left);
    joined.append(right);
    const int32_t left_id = vocab.find(left), right_id = vocab.find(right), result = vocab.find(joined);
    if (left_id < 0 || right_id < 0 || result < 0) {
      const std::string_view missing = left_id < 0 ? left : right_id < 0 ? right : std::string_view(joined);
      throw Error(fmt::format("tokenizer.ggml.merges[{}] = '{}' needs the piece '{}', which the vocabulary lacks",
                              rank, merge, missing));
    }
    // A repeated pair keeps its first (highest-priority) rank.
    merges_.emplace(key(left_id, right_id), Merge{static_cast<int32_t>(rank), result});
  }
}

const Merges::Merge* Merges::find(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  const auto it = merges_.find(key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void Merges::encode_word(std::string_view bytes, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id;  // -1: a byte without a piece; -2: merged into its left neighbour
    int prev, next;
  };
  struct Candidate {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id;
    // The queue's top is the lowest rank, then the leftmost pair.
    bool operator<(const Candidate& other) const {
      return rank > other.rank || (rank == other.rank && left > other.left);
    }
  };
  const int n = static_cast<int>(bytes.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    symbols[static_cast<size_t>(i)] = {byte_ids_[static_cast<unsigned char>(bytes[static_cast<size_t>(i)])], i - 1,
                                       i + 1 < n ? i + 1 : -1};
  }
  std::priority_queue<Candidate> queue;
  auto propose = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int32_t left_id = symbols[static_cast<size_t>(left)].id, right_id = symbols[static_cast<size_t>(right)].id;
    if (const Merge* m = find(left_id, right_id)) queue.push({m->rank, left, right, left_id, right_id});
  };
  for (int i = 0; i + 1 < n; ++i) propose(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[static_cast<size_t>(c.left)];
    Symbol& r = symbols[static_cast<size_t>(c.right)];
    // Stale when either side has merged since: its id changed (a merge always makes a
    // longer piece, so a different id) or it is no longer adjacent.
    if (l.id != c.left_id || r.id != c.right_id || l.next != c.right) continue;
    l.id = find(c.left_id, c.right_id)->result;
    r.id = -2;
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = c.left;
    propose(l.prev, c.left);
    propose(c.left, l.next);
  }

  for (int i = n > 0 ? 0 : -1; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    int32_t id = symbols[static_cast<size_t>(i)].id;
    if (id < 0) {
      if (unk_id_ < 0) {
        throw Error(fmt::format("tokenizer: byte 0x{:02X} has no piece and the vocabulary has no unknown token",
                                static_cast<unsigned char>(bytes[static_cast<size_t>(i)])));
      }
      id = unk_id_;
    }
    ids.push_back(id);
  }
}

}  // namespace braid::bpe
