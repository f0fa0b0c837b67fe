#include "model/bpe/special_tokens.h"

#include <algorithm>

namespace braid::bpe {

SpecialTokens::SpecialTokens(const Vocabulary& vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.types[static_cast<size_t>(id)];
    const std::string& text = vocab.tokens[static_cast<size_t>(id)];
    if (text.empty()) continue;
    if (type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown) {
      longest_first_.push_back({text, id});
    }
  }
  std::stable_sort(longest_first_.begin(), longest_first_.end(),
                   [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
}

std::vector<Fragment> SpecialTokens::split(std::string_view text) const {
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({text, -1});
  std::vector<Fragment> next;
  for (const Special& special : longest_first_) {
    // Most texts hold no special token: check before copying the list.
    const bool found = std::any_of(fragments.begin(), fragments.end(), [&](const Fragment& f) {
      return f.id < 0 && f.text.find(special.text) != std::string_view::npos;
    });
    if (!found) continue;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at; (at = rest.find(special.text)) != std::string_view::npos;) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({special.text, special.id});
        rest.remove_prefix(at + special.text.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace braid::bpe
