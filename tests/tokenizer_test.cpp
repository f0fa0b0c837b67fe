// The SentencePiece tokenizer: llama.cpp's own test vectors for the LLaMA vocabulary,
// round trips, and small hand-made vocabularies that pin down the merge rules.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "braid/gguf.h"
#include "braid/graph.h"
#include "braid/tokenizer.h"
#include "test_support.h"
#include "tokenizer_vectors.h"

namespace braid {
namespace {

const char* const kVocab = "ggml-vocab-llama-spm.gguf";

std::unique_ptr<Tokenizer> llama_tokenizer() { return load_tokenizer(GgufFile::open(test::fixture(kVocab))); }

using test::printable;
std::vector<test::TestVector> read_test_vectors() { return test::read_test_vectors(kVocab); }

TEST(Tokenizer, LlamaVocabularyLoadsWithItsSpecialTokens) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  const Vocabulary& v = tokenizer->vocabulary();
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.size(), 32000);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_EQ(v.type(0), TokenType::Unknown);
  EXPECT_EQ(v.type(1), TokenType::Control);
  EXPECT_EQ(v.type(13), TokenType::Byte);  // <0x0A>
  EXPECT_EQ(v.tokens[13], "<0x0A>");
  EXPECT_EQ(v.find("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(v.find("no such piece"), -1);
}

TEST(Tokenizer, MatchesLlamaCppOnAllTestVectors) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  const auto vectors = read_test_vectors();
  ASSERT_EQ(vectors.size(), 46u);
  for (const auto& v : vectors) {
    EXPECT_EQ(tokenizer->encode(v.text, false), v.ids) << "text: '" << printable(v.text) << "'";
  }
}

TEST(Tokenizer, DecodeInvertsEncodeOnTheTestVectors) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  for (const auto& v : read_test_vectors()) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(v.text, false)), v.text) << "'" << printable(v.text) << "'";
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(v.text, true)), v.text) << "with BOS: '" << printable(v.text) << "'";
  }
}

TEST(Tokenizer, RandomTextsRoundTrip) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  // Words, whitespace, multi-byte characters and stray bytes that are not UTF-8.
  const std::vector<std::string> parts = {"the", "Hello", " ", "  ", "\n", "\t", "a", "x7", "\xC3\xA9", "\xE6\x97\xA5",
                                          "\xF0\x9F\xA6\x99", "\xFF", "\x80", "\xE2\x96", ",", "<s>", "'"};
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) text += parts[rng() % parts.size()];
    const auto ids = tokenizer->encode(text, true);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 32000);
    EXPECT_EQ(tokenizer->decode(ids), text) << "'" << printable(text) << "'";
  }
}

TEST(Tokenizer, BosComesFirstWhenAsked) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  EXPECT_EQ(tokenizer->encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
  EXPECT_EQ(tokenizer->encode("", true), (std::vector<int32_t>{1}));
  EXPECT_TRUE(tokenizer->encode("", false).empty());
}

TEST(Tokenizer, PiecesShowSpacesBytesAndNothingForControlTokens) {
  if (!test::have_fixture(kVocab)) return;
  const auto tokenizer = llama_tokenizer();
  EXPECT_EQ(tokenizer->token_to_piece(15043), " Hello");
  EXPECT_EQ(tokenizer->token_to_piece(13), "\n");
  EXPECT_EQ(tokenizer->token_to_piece(1), "");
  EXPECT_EQ(tokenizer->token_to_piece(2), "");
  EXPECT_EQ(tokenizer->token_to_piece(0), "\xE2\x96\x85");
  // Byte tokens of one emoji join into its UTF-8 bytes.
  EXPECT_EQ(tokenizer->decode({243, 162, 169, 156}), "\xF0\x9F\xA6\x99");
  // Only the first piece loses the space that encoding put in front.
  EXPECT_EQ(tokenizer->decode({1, 15043, 15043}), "Hello Hello");
  EXPECT_THROW(tokenizer->token_to_piece(32000), Error);
}

// A vocabulary built by hand: the three SPM specials, byte tokens for two bytes, and
// the given pieces ("_" stands for U+2581).
Vocabulary small_vocabulary(const std::vector<std::pair<std::string, float>>& pieces) {
  Vocabulary v;
  v.model = "llama";
  auto add = [&](std::string piece, float score, TokenType type) {
    std::string spm;
    for (char c : piece) spm += c == '_' && type == TokenType::Normal ? std::string("\xE2\x96\x81") : std::string(1, c);
    v.tokens.push_back(spm);
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, TokenType::Unknown);
  add("<s>", 0, TokenType::Control);
  add("</s>", 0, TokenType::Control);
  add("<0xC3>", 0, TokenType::Byte);
  add("<0xA9>", 0, TokenType::Byte);
  for (const auto& [piece, score] : pieces) add(piece, score, TokenType::Normal);
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  return v;
}

std::vector<std::string> pieces_of(const Tokenizer& t, std::string_view text) {
  std::vector<std::string> out;
  for (int32_t id : t.encode(text, false)) out.push_back(t.vocabulary().tokens[static_cast<size_t>(id)]);
  return out;
}

TEST(Tokenizer, EqualScoresMergeTheLeftmostPairFirst) {
  auto t = make_tokenizer(small_vocabulary({{"_", -1}, {"a", -2}, {"aa", -3}}));
  EXPECT_EQ(pieces_of(*t, "aaa"), (std::vector<std::string>{"\xE2\x96\x81", "aa", "a"}));
}

TEST(Tokenizer, TheHigherScoringPairMergesFirst) {
  const std::vector<std::pair<std::string, float>> base = {{"_", -1}, {"a", -2}, {"b", -2}, {"c", -2}};
  auto with = [&](float ab, float bc) {
    auto pieces = base;
    pieces.push_back({"ab", ab});
    pieces.push_back({"bc", bc});
    return make_tokenizer(small_vocabulary(pieces));
  };
  EXPECT_EQ(pieces_of(*with(-3, -4), "abc"), (std::vector<std::string>{"\xE2\x96\x81", "ab", "c"}));
  EXPECT_EQ(pieces_of(*with(-4, -3), "abc"), (std::vector<std::string>{"\xE2\x96\x81", "a", "bc"}));
}

TEST(Tokenizer, MergesBuildLongPiecesThroughIntermediatePieces) {
  auto t = make_tokenizer(small_vocabulary({{"_", -1}, {"a", -2}, {"b", -2}, {"_a", -3}, {"_ab", -4}}));
  EXPECT_EQ(pieces_of(*t, "ab"), (std::vector<std::string>{"\xE2\x96\x81" "ab"}));
  EXPECT_EQ(pieces_of(*t, "ab ab"),
            (std::vector<std::string>{"\xE2\x96\x81" "ab", "\xE2\x96\x81" "ab"}));
}

TEST(Tokenizer, CharactersWithoutPiecesFallBackToBytesOrUnknown) {
  auto t = make_tokenizer(small_vocabulary({{"_", -1}, {"a", -2}}));
  // "é" is C3 A9: both bytes have tokens.
  EXPECT_EQ(pieces_of(*t, "a\xC3\xA9"), (std::vector<std::string>{"\xE2\x96\x81", "a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t->decode(t->encode("a\xC3\xA9", true)), "a\xC3\xA9");
  // "z" has neither a piece nor a byte token: <unk>.
  EXPECT_EQ(pieces_of(*t, "z"), (std::vector<std::string>{"\xE2\x96\x81", "<unk>"}));
}

TEST(Tokenizer, WithoutSpacePrefixTheTextStartsAsItIs) {
  Vocabulary v = small_vocabulary({{"_", -1}, {"a", -2}, {"_a", -3}});
  v.add_space_prefix = false;
  auto t = make_tokenizer(v);
  EXPECT_EQ(pieces_of(*t, "a a"), (std::vector<std::string>{"a", "\xE2\x96\x81" "a"}));
  EXPECT_EQ(t->decode(t->encode("a a", false)), "a a");
}

TEST(Tokenizer, UnsupportedModelsAreClearErrors) {
  Vocabulary v = small_vocabulary({{"a", -1}});
  v.model = "wordpiece";
  try {
    make_tokenizer(v);
    FAIL() << "wordpiece should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported tokenizer 'wordpiece'"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, InconsistentVocabulariesAreErrors) {
  Vocabulary v = small_vocabulary({{"a", -1}});
  v.scores.pop_back();
  EXPECT_THROW(make_tokenizer(v), Error);
  v = small_vocabulary({{"a", -1}});
  v.eos_id = 1000;
  EXPECT_THROW(make_tokenizer(v), Error);
}

TEST(Tokenizer, VocabularyKeysAndDefaultsFromAGgufFile) {
  const std::string path = ::testing::TempDir() + "braid_tokenizer_vocab.gguf";
  {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "x"}));
    w.set("tokenizer.ggml.scores", GgufValue::floats({0, 0, 0, -1, -2}));
    w.set("tokenizer.ggml.token_type", GgufValue::ints({2, 3, 3, 1, 1}));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(1));
    w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(0xFFFFFFFFu));  // none
    w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
    w.write(path);
  }
  const Vocabulary v = load_vocabulary(GgufFile::open(path));
  EXPECT_EQ(v.size(), 5);
  EXPECT_EQ(v.bos_id, 1);  // absent: SentencePiece's default
  EXPECT_EQ(v.eos_id, 1);  // as given
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_EQ(v.pad_id, -1);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_FLOAT_EQ(v.scores[4], -2.0f);
  EXPECT_EQ(v.types[0], TokenType::Unknown);

  {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"a", "b"}));
    w.set("tokenizer.ggml.scores", GgufValue::floats({0}));
    w.write(path);
  }
  EXPECT_THROW(load_vocabulary(GgufFile::open(path)), Error);
  {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"a", "b", "c"}));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(7));
    w.write(path);
  }
  EXPECT_THROW(load_vocabulary(GgufFile::open(path)), Error);
  {
    GgufWriter w;
    w.set("general.architecture", GgufValue::string("llama"));
    w.write(path);
  }
  EXPECT_THROW(load_vocabulary(GgufFile::open(path)), Error);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace braid
