// Vocabulary: the tokenizer.* metadata of a GGUF file, checked once so that the
// tokenizers can index it without further checks.
#include <fmt/format.h>

#include "braid/gguf.h"
#include "braid/graph.h"
#include "braid/tokenizer.h"
#include "model/bpe/pre_tokenizer.h"

namespace braid {

void Vocabulary::index() {
  ids_.clear();
  ids_.reserve(tokens.size());
  // emplace keeps the first id of a repeated piece, as llama.cpp's lookup does.
  for (int32_t id = 0; id < size(); ++id) ids_.emplace(tokens[static_cast<size_t>(id)], id);
  indexed_ = true;
}

int32_t Vocabulary::find(std::string_view piece) const {
  BRAID_ASSERT(indexed_);
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

TokenType Vocabulary::type(int32_t id) const {
  if (id < 0 || id >= size()) throw Error(fmt::format("token id {} outside the vocabulary of {}", id, size()));
  return types[static_cast<size_t>(id)];
}

void Vocabulary::check() const {
  if (tokens.empty()) throw Error("vocabulary has no tokens");
  if (scores.size() != tokens.size() || types.size() != tokens.size()) {
    throw Error(fmt::format("vocabulary has {} tokens but {} scores and {} token types", tokens.size(),
                            scores.size(), types.size()));
  }
  auto check_id = [&](const char* what, int32_t id) {
    if (id < -1 || id >= size()) {
      throw Error(fmt::format("vocabulary: {} token id {} outside the vocabulary of {}", what, id, size()));
    }
  };
  check_id("BOS", bos_id);
  check_id("EOS", eos_id);
  check_id("unknown", unk_id);
  check_id("padding", pad_id);
  check_id("end-of-turn", eot_id);
}

Vocabulary load_vocabulary(const GgufFile& file) {
  Vocabulary v;
  if (file.find("tokenizer.ggml.tokens") == nullptr) {
    throw Error(fmt::format("{}: the file has no vocabulary (no tokenizer.ggml.tokens)", file.source()));
  }
  v.model = file.get_string("tokenizer.ggml.model", "llama");
  v.tokens = file.get_array("tokenizer.ggml.tokens").as_strings();
  const size_t n = v.tokens.size();

  // Scores and types are optional in the format; without them every token is normal
  // and equally likely to merge.
  v.scores.assign(n, 0.0f);
  if (const GgufValue* scores = file.find("tokenizer.ggml.scores")) {
    const std::vector<double> values = scores->as_floats();
    if (values.size() != n) {
      throw Error(fmt::format("{}: tokenizer.ggml.scores has {} items for {} tokens", file.source(),
                              values.size(), n));
    }
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(values[i]);
  }
  v.types.assign(n, TokenType::Normal);
  if (const GgufValue* types = file.find("tokenizer.ggml.token_type")) {
    const std::vector<double> values = types->as_floats();
    if (values.size() != n) {
      throw Error(fmt::format("{}: tokenizer.ggml.token_type has {} items for {} tokens", file.source(),
                              values.size(), n));
    }
    for (size_t i = 0; i < n; ++i) {
      const double t = values[i];
      if (t < 0 || t > static_cast<double>(TokenType::Byte) || t != static_cast<int>(t)) {
        throw Error(fmt::format("{}: token {} has an unknown token type {}", file.source(), i, t));
      }
      v.types[i] = static_cast<TokenType>(static_cast<int>(t));
    }
  }

  // SentencePiece vocabularies put <unk>, <s>, </s> at 0, 1, 2; llama.cpp assumes so
  // when the ids are absent. Other models have no such convention.
  const bool spm = v.model == "llama";
  auto special = [&](const char* key, int32_t fallback) {
    if (fallback >= static_cast<int64_t>(n)) fallback = -1;
    int64_t id = file.get_int(key, fallback);
    // Converters write "no such token" as -1, or as its u32 bits (llama.cpp's stories260K).
    if (id == 0xFFFFFFFFll) id = -1;
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      throw Error(fmt::format("{}: {} = {} is outside the vocabulary of {}", file.source(), key, id, n));
    }
    return static_cast<int32_t>(id);
  };
  v.bos_id = special("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
  v.eos_id = special("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
  v.unk_id = special("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
  v.pad_id = special("tokenizer.ggml.padding_token_id", -1);
  if (v.model == "gpt2") {
    v.pre = file.get_string("tokenizer.ggml.pre", "");
    if (file.find("tokenizer.ggml.merges") == nullptr) {
      throw Error(fmt::format("{}: the BPE vocabulary has no tokenizer.ggml.merges", file.source()));
    }
    v.merges = file.get_array("tokenizer.ggml.merges").as_strings();
  }
  v.eot_id = special("tokenizer.ggml.eot_token_id", -1);
  // Without the key, SentencePiece puts BOS first and BPE only where its pre-tokenizer
  // says so (Llama 3 does; GPT-2 and Qwen2 do not), as llama.cpp decides.
  v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", v.model != "gpt2" || bpe::pre_tokenizer_adds_bos(v.pre));
  v.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", spm);
  v.check();
  v.index();
  return v;
}

}  // namespace braid
