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
// Qwen3.5: as Qwen2, with combining marks (\p{M}) part of words.
const std::string kQwen35 =
    std::string(kContractions) +
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM (v1, 67B / 7B): newlines alone; a word of Latin, Greek, Cyrillic, Armenian,
// Georgian, Cherokee, Glagolitic, Coptic, ... letters (the ranges its tokenizer.json lists)
// with an optional space; ASCII and full-width punctuation runs; trailing spaces; a CJK or
// Hangul run; digit runs.
const std::vector<std::string> kDeepseekLlm{
    R"([\r\n])",
    R"(\s?[A-Za-z\x{00B5}\x{00C0}-\x{00D6}\x{00D8}-\x{00F6}\x{00F8}-\x{01BA}\x{01BC}-\x{01BF})"
    R"(\x{01C4}-\x{0293}\x{0295}-\x{02AF}\x{0370}-\x{0373}\x{0376}\x{0377}\x{037B}-\x{037D}\x{037F}\x{0386})"
    R"(\x{0388}-\x{038A}\x{038C}\x{038E}-\x{03A1}\x{03A3}-\x{03F5}\x{03F7}-\x{0481}\x{048A}-\x{052F})"
    R"(\x{0531}-\x{0556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA})"
    R"(\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
    R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
    R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102})"
    R"(\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B})"
    R"(\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B})"
    R"(\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
    R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)",
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
    R"(\s+$)",
    R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)",
    R"(\p{N}+)",
};
// DeepSeek Coder: newlines alone, letter runs and punctuation runs each with an optional
// space, a CJK or Hangul run, every digit alone.
const std::vector<std::string> kDeepseekCoder{
    R"([\r\n])",
    R"(\s?\p{L}+)",
    R"(\s?\p{P}+)",
    R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)",
    R"(\p{N})",
};
// Falcon: punctuation runs, GPT-2's expression, then groups of three digits.
const std::vector<std::string> kFalcon{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"};

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
    t["falcon3"] = llama3;  // (Falcon 3 and Pixtral took Llama 3's expression)
    t["pixtral"] = llama3;
    t["gpt-2"] = Recipe{{kGpt2}};
    t["phi-2"] = Recipe{{kGpt2}};
    t["mpt"] = Recipe{{kGpt2}};
    t["qwen2"] = Recipe{{kQwen2}};
    t["deepseek-r1-qwen"] = Recipe{{kQwen2}};  // (DeepSeek-R1's Qwen distillations)
    t["qwen35"] = Recipe{{kQwen35}};
    // SmolLM2 (StarCoder's tokenizer): every digit alone first, then GPT-2's expression.
    const Recipe starcoder{{R"(\p{N})", kGpt2}};
    t["smollm"] = starcoder;
    t["starcoder"] = starcoder;
    t["refact"] = starcoder;
    t["command-r"] = starcoder;
    t["deepseek-llm"] = Recipe{kDeepseekLlm};
    t["deepseek-coder"] = Recipe{kDeepseekCoder};
    t["falcon"] = Recipe{kFalcon};
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
