// The pre-tokenizers braid knows, by the names llama.cpp's converter writes to
// tokenizer.ggml.pre. The expressions are those of each model's tokenizer.json, with
// one change that llama.cpp makes too: Llama 3 and Qwen2 match the contractions
// case-insensitively with (?i:'s|...); here each letter is a class ('[sS]) so that
// Unicode case folding cannot match other letters (the Kelvin sign K, the long s ſ).
#include "model/bpe/pre_tokenizer.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "braid/graph.h"
#include "model/bpe/regex.h"

namespace braid::bpe {
namespace {

// GPT-2 (tiktoken's r50k): contractions, a letter run, a digit run and a run of other
// symbols, each with an optional space in front; whitespace not before a word.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr const char* kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
// Llama 3 (tiktoken's cl100k): digits in groups of up to three; a word takes one symbol
// before it; newlines stick to symbols.
const std::string kLlama3 = std::string(kContractions) +
                            R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3 but every digit alone.
const std::string kQwen2 = std::string(kContractions) +
                           R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Recipe {
  std::vector<std::string> patterns;
  bool ignore_merges = false;
  bool adds_bos = false;
};

const std::map<std::string, Recipe, std::less<>>& recipes() {
  static const std::map<std::string, Recipe, std::less<>> table = [] {
    std::map<std::string, Recipe, std::less<>> t;
    const Recipe llama3{{kLlama3}, true, true};
    t["llama-bpe"] = llama3;
    t["llama3"] = llama3;
    t["llama-v3"] = llama3;
    t["gpt-2"] = Recipe{{kGpt2}};
    t["qwen2"] = Recipe{{kQwen2}};
    // SmolLM2 (StarCoder's tokenizer): every digit alone first, then GPT-2's expression.
    t["smollm"] = Recipe{{R"(\p{N})", kGpt2}};
    // What llama.cpp uses for a BPE vocabulary without a known pre-tokenizer:
    // punctuation runs, GPT-2's expression, digit runs, then groups of three digits.
    t["default"] = Recipe{{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}};
    return t;
  }();
  return table;
}

const Recipe& recipe(std::string_view pre) {
  // Files converted before tokenizer.ggml.pre existed have none; llama.cpp falls back
  // to "default" (with a warning that quality suffers).
  if (pre.empty()) pre = "default";
  const auto& table = recipes();
  const auto it = table.find(pre);
  if (it == table.end()) {
    std::string known;
    for (const auto& [name, r] : table) known += (known.empty() ? "" : ", ") + name;
    throw Error(fmt::format("unknown pre-tokenizer '{}' (tokenizer.ggml.pre); braid knows {}", pre, known));
  }
  return it->second;
}

}  // namespace

PreTokenizer PreTokenizer::named(std::string_view pre) {
  const Recipe& r = recipe(pre);
  // Compiled once per process and shared by every tokenizer that uses them.
  static std::map<std::string, std::shared_ptr<const Regex>, std::less<>> compiled;
  static std::mutex mutex;
  PreTokenizer p;
  p.name_ = pre.empty() ? "default" : std::string(pre);
  p.ignore_merges_ = r.ignore_merges;
  const std::lock_guard<std::mutex> lock(mutex);
  for (const std::string& pattern : r.patterns) {
    auto& regex = compiled[pattern];
    if (!regex) regex = std::make_shared<const Regex>(pattern);
    p.regexes_.push_back(regex);
  }
  return p;
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (!text.empty()) pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    next.clear();
    for (std::string_view piece : pieces) regex->split(piece, next);
    pieces.swap(next);
  }
  return pieces;
}

bool pre_tokenizer_adds_bos(std::string_view pre) {
  const auto& table = recipes();
  const auto it = table.find(pre);
  return it != table.end() && it->second.adds_bos;
}

}  // namespace braid::bpe
