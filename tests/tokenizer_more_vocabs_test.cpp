// The pre-tokenizers beyond the fixtures' (DeepSeek LLM and Coder, Falcon, StarCoder and
// its kin, MPT, Qwen3.5) and Phi-3's SentencePiece vocabulary, against llama.cpp's own
// test vectors: every input of ggml-vocab-NAME.gguf.inp must give exactly the ids of the
// matching .out line (no BOS, special tokens not parsed). The vocabularies are ~30 MB of
// llama.cpp's data, fetched once per machine into the model cache by
// scripts/fetch_llama_vocabs.sh (CI runs it; elsewhere these tests skip without them).
#include <gtest/gtest.h>

#include "braid/gguf.h"
#include "braid/tokenizer.h"
#include "test_support.h"
#include "tokenizer_vectors.h"

namespace braid {
namespace {

using test::printable;

class MoreVocabularies : public ::testing::TestWithParam<std::string> {};

TEST_P(MoreVocabularies, MatchLlamaCppExactly) {
  const std::string path = test::cached_file("llama-vocabs/ggml-vocab-" + GetParam() + ".gguf",
                                             "scripts/fetch_llama_vocabs.sh");
  if (path.empty()) return;
  const auto tokenizer = load_tokenizer(GgufFile::open(path));
  const auto vectors = test::read_test_vectors_at(path);
  ASSERT_GE(vectors.size(), 40u);
  for (const auto& v : vectors) {
    EXPECT_EQ(tokenizer->encode(v.text, false), v.ids) << "text: \"" << printable(v.text) << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, MoreVocabularies,
                         ::testing::Values("deepseek-llm", "deepseek-coder", "falcon", "starcoder", "refact",
                                           "command-r", "mpt", "qwen35", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = (c == '-') ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace braid
