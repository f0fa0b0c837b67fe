// Replays the GGUF fuzzer's corpus (fuzz/corpus) through the fuzzer's own checks, so that
// the ordinary suite, and its sanitizer builds, keep every seed and every crash input
// (saved there as crash-*.gguf with its fix) passing without clang or libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "../fuzz/gguf_input_check.h"
#include "gguf_test_util.h"

namespace braid {
namespace {

namespace fs = std::filesystem;
using test::contains;

std::vector<fs::path> files_in(const std::string& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Heap copy of exactly the file's size: a read past the end is caught by ASan.
fuzz::GgufInputResult check_file(const fs::path& path) {
  const std::vector<uint8_t> bytes = test::read_bytes(path.string());
  auto exact = std::make_unique<uint8_t[]>(std::max<size_t>(bytes.size(), 1));
  std::copy(bytes.begin(), bytes.end(), exact.get());
  return fuzz::check_gguf_input(exact.get(), bytes.size());
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

TEST(GgufFuzzCorpus, SeedsLoadOrFailAsTheirNamesSay) {
  const auto files = files_in(BRAID_FUZZ_CORPUS_DIR);
  ASSERT_GE(files.size(), 20u) << BRAID_FUZZ_CORPUS_DIR;
  uintmax_t total = 0;
  // What each model-* seed's loader must say.
  const std::map<std::string, std::string> model_errors = {
      {"model-experts-without-count", "'llama.expert_used_count' is missing"},
      {"model-missing-tensor", "tensor blk.1.ffn_down.weight is missing"},
      {"model-odd-head-size", "head size 1 must be even"},
      {"model-shape-mismatch", "tensor token_embd.weight has shape [32, 16], expected [64, n_vocab]"},
      {"model-unsupported-type-iq4_nl", "unsupported tensor type iq4_nl for blk.0.attn_q.weight"},
      {"model-wrong-architecture", "unsupported architecture 'gpt2'"},
  };
  size_t models_checked = 0;
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.filename().string());
    total += fs::file_size(path);
    const std::string name = path.stem().string();
    const fuzz::GgufInputResult r = check_file(path);
    if (starts_with(name, "crash-")) {
      // Once crashed the fuzzer; now it must load or fail with a braid::Error (any other
      // exception fails this test through GoogleTest's handler).
      EXPECT_TRUE(r.parsed || starts_with(r.parse_error, "fuzz.gguf: ")) << r.parse_error;
    } else if (starts_with(name, "broken-")) {
      EXPECT_FALSE(r.parsed);
      EXPECT_TRUE(starts_with(r.parse_error, "fuzz.gguf: ")) << r.parse_error;
    } else if (starts_with(name, "model-")) {
      EXPECT_TRUE(r.parsed) << r.parse_error;
      EXPECT_FALSE(r.model);
      ASSERT_TRUE(model_errors.count(name)) << "no expected error listed for " << name;
      EXPECT_TRUE(contains(r.model_error, model_errors.at(name))) << r.model_error;
      ++models_checked;
    } else {
      ASSERT_TRUE(starts_with(name, "valid-")) << "corpus files are named broken-*, model-*, valid-* or crash-*";
      EXPECT_TRUE(r.parsed) << r.parse_error;
      const bool vocab_only = name == "valid-vocab-only";
      EXPECT_EQ(r.model, !vocab_only) << r.model_error;
      const bool has_vocab = vocab_only || contains(name, "vocab");
      EXPECT_EQ(r.tokenizer, has_vocab) << r.tokenizer_error;
    }
  }
  EXPECT_EQ(models_checked, model_errors.size());
  EXPECT_LT(total, 2u << 20) << "keep the seed corpus small";
}

}  // namespace
}  // namespace braid
