// The tokenizer factory: one line per algorithm braid implements.
#include <fmt/format.h>

#include "braid/gguf.h"
#include "braid/graph.h"
#include "braid/tokenizer.h"

namespace braid {

Tokenizer::Tokenizer(Vocabulary vocab) : vocab_(std::move(vocab)) {
  vocab_.check();
  vocab_.index();
  vocab_.end_of_turn = end_of_turn_ids(vocab_);
}

std::unique_ptr<Tokenizer> make_tokenizer(Vocabulary vocab) {
  if (vocab.model == "llama") return make_spm_tokenizer(std::move(vocab));
  if (vocab.model == "gpt2") return make_bpe_tokenizer(std::move(vocab));
  throw Error(fmt::format("unsupported tokenizer '{}' (braid reads tokenizer.ggml.model \"llama\" and \"gpt2\")", vocab.model));
}

std::unique_ptr<Tokenizer> load_tokenizer(const GgufFile& file) { return make_tokenizer(load_vocabulary(file)); }

}  // namespace braid
