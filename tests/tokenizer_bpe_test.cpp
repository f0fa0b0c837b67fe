// The byte-level BPE tokenizer: llama.cpp's own test vectors for the Llama 3, Qwen2 and
// GPT-2 vocabularies, round trips, special tokens in the text, the pre-tokenizers, and
// small hand-made vocabularies that pin down the merge order and the load errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "braid/gguf.h"
#include "braid/graph.h"
#include "braid/tokenizer.h"
#include "model/bpe/byte_level.h"
#include "model/bpe/pre_tokenizer.h"
#include "test_support.h"
#include "tokenizer_vectors.h"

namespace braid {
namespace {

using test::printable;
using namespace std::string_literals;

std::string vocab_file(const std::string& name) { return "ggml-vocab-" + name + ".gguf"; }

std::unique_ptr<Tokenizer> load(const std::string& name) {
  return load_tokenizer(GgufFile::open(test::fixture(vocab_file(name))));
}

class BpeVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeVectors, MatchLlamaCppExactly) {
  if (!test::have_fixture(vocab_file(GetParam()))) return;
  const auto tokenizer = load(GetParam());
  const auto vectors = test::read_test_vectors(vocab_file(GetParam()));
  ASSERT_GE(vectors.size(), 40u);
  for (const auto& v : vectors) {
    EXPECT_EQ(tokenizer->encode(v.text, false), v.ids) << "text: '" << printable(v.text) << "'";
  }
}

TEST_P(BpeVectors, DecodeInvertsEncode) {
  if (!test::have_fixture(vocab_file(GetParam()))) return;
  const auto tokenizer = load(GetParam());
  for (const auto& v : test::read_test_vectors(vocab_file(GetParam()))) {
    EXPECT_EQ(tokenizer->decode(v.ids), v.text) << "'" << printable(v.text) << "'";
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(v.text, true)), v.text) << "with BOS: '" << printable(v.text) << "'";
  }
}

TEST_P(BpeVectors, RandomTextsRoundTripAndNeverFail) {
  if (!test::have_fixture(vocab_file(GetParam()))) return;
  const auto tokenizer = load(GetParam());
  // Words, digits, whitespace of every kind, multi-byte characters, and bytes that are
  // not UTF-8 (stray continuation bytes, a cut-off character, 0xFF).
  const std::vector<std::string> parts = {"the", "Hello", " ", "   ", "\n", "\r\n", "\t", "'s", "'LL", "12345", "x7",
                                          "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\xA6\x99", "\xC2\xA0",
                                          "\xE2\x80\xA8", "\xFF", "\x80", "\xE2\x96", ",", "...", "<|", "\x00"s};
  std::mt19937 rng(99);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) text += parts[rng() % parts.size()];
    const auto ids = tokenizer->encode(text, false);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer->vocabulary().size());
    EXPECT_EQ(tokenizer->decode(ids), text) << "'" << printable(text) << "'";
  }
}

TEST_P(BpeVectors, LongInputsOfAnyBytesRoundTrip) {
  if (!test::have_fixture(vocab_file(GetParam()))) return;
  const auto tokenizer = load(GetParam());
  // One word of 100,000 letters, runs of spaces and digits, and random bytes: long
  // matches must not exhaust PCRE2's stack, and every byte must come back.
  std::mt19937 rng(5);
  std::string random(200000, '\0');
  for (char& c : random) c = static_cast<char>(rng() & 0xFF);
  for (const std::string& text : {std::string(100000, 'a'), std::string(50000, ' ') + "x" + std::string(50000, '\n'),
                                  std::string(30000, '7') + "." + std::string(30000, '!'), random}) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text) << text.substr(0, 10);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, BpeVectors, ::testing::Values("llama-bpe", "qwen2", "gpt-2"));

TEST(BpeTokenizer, VocabulariesLoadWithTheirPreTokenizerAndBosRule) {
  if (!test::have_fixture(vocab_file("llama-bpe"))) return;
  const auto llama3 = load("llama-bpe");
  const Vocabulary& v = llama3->vocabulary();
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(v.size(), 128256);
  EXPECT_EQ(v.merges.size(), 280147u);
  EXPECT_EQ(v.bos_id, 128000);
  // The file has no tokenizer.ggml.add_bos_token: Llama 3 adds BOS, GPT-2 and Qwen2 not.
  EXPECT_TRUE(v.add_bos);
  EXPECT_EQ(llama3->encode("Hello", true), (std::vector<int32_t>{128000, 9906}));
  EXPECT_FALSE(load("qwen2")->vocabulary().add_bos);
  EXPECT_FALSE(load("gpt-2")->vocabulary().add_bos);
}

TEST(BpeTokenizer, LoadingTheLargestVocabularyIsQuick) {
  if (!test::have_fixture(vocab_file("qwen2"))) return;
  const auto start = std::chrono::steady_clock::now();
  const auto qwen2 = load("qwen2");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(qwen2->vocabulary().size(), 151936);
  // About 0.1 s in a release build; the bound leaves room for sanitizer builds.
  EXPECT_LT(seconds, 5.0);
  RecordProperty("qwen2_load_ms", static_cast<int>(seconds * 1000));
}

TEST(BpeTokenizer, SpecialTokensInTheTextAreTheirTokens) {
  if (!test::have_fixture(vocab_file("qwen2"))) return;
  const auto qwen2 = load("qwen2");
  const Vocabulary& v = qwen2->vocabulary();
  const int32_t im_start = v.find("<|im_start|>"), im_end = v.find("<|im_end|>");
  ASSERT_EQ(im_start, 151644);
  ASSERT_EQ(im_end, 151645);
  const auto plain = qwen2->encode("user\nHi", false);
  std::vector<int32_t> expected = {im_start};
  expected.insert(expected.end(), plain.begin(), plain.end());
  expected.push_back(im_end);
  EXPECT_EQ(qwen2->encode("<|im_start|>user\nHi<|im_end|>", false), expected);
  // Control tokens show no text; user-defined ones show theirs.
  EXPECT_EQ(v.type(im_end), TokenType::Control);
  EXPECT_EQ(qwen2->token_to_piece(im_end), "");
  EXPECT_EQ(qwen2->decode(expected), "user\nHi");
  EXPECT_EQ(v.type(151646), TokenType::UserDefined);
  EXPECT_EQ(qwen2->token_to_piece(151646), "[PAD151646]");
  EXPECT_EQ(qwen2->encode("a[PAD151646]", false).back(), 151646);

  if (!test::have_fixture(vocab_file("llama-bpe"))) return;
  const auto llama3 = load("llama-bpe");
  const auto ids = llama3->encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true);
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(ids[1], 128006);
  EXPECT_EQ(ids[3], 128007);
  EXPECT_EQ(ids.back(), 128009);
}

TEST(BpeTokenizer, PiecesAreBytes) {
  if (!test::have_fixture(vocab_file("gpt-2"))) return;
  const auto gpt2 = load("gpt-2");
  const Vocabulary& v = gpt2->vocabulary();
  EXPECT_EQ(gpt2->token_to_piece(v.find("\xC4\xA0Hello")), " Hello");  // "ĠHello"
  EXPECT_EQ(gpt2->token_to_piece(v.find("\xC4\x8A")), "\n");            // "Ċ"
  EXPECT_EQ(gpt2->token_to_piece(50256), "");                         // <|endoftext|>
  EXPECT_THROW(gpt2->token_to_piece(50257), Error);
  // An emoji spread over byte tokens: each piece is part of it, the whole decodes.
  const auto ids = gpt2->encode("\xF0\x9F\xA6\x99", false);
  ASSERT_GT(ids.size(), 1u);
  std::string joined;
  for (int32_t id : ids) joined += gpt2->token_to_piece(id);
  EXPECT_EQ(joined, "\xF0\x9F\xA6\x99");
}

// SmolLM2's vocabulary (pre-tokenizer smollm) has no llama.cpp vectors; the reference
// ids come from HF tokenizers 0.23.3 with SmolLM2's pre-tokenizer (Digits(individual)
// then ByteLevel without a prefix space) over the GGUF's tokens and merges, special
// tokens added. The 94 MB model is not a fixture; the test runs where it is cached.
TEST(BpeTokenizer, SmolLm2MatchesHfTokenizers) {
  std::string path = test::fixture("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!std::filesystem::exists(path) && std::getenv("HOME") != nullptr) {
    path = std::string(std::getenv("HOME")) + "/.cache/braid/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found";
  const auto smollm = load_tokenizer(GgufFile::open(path));
  EXPECT_EQ(smollm->vocabulary().pre, "smollm");
  EXPECT_FALSE(smollm->vocabulary().add_bos);
  EXPECT_EQ(smollm->encode("<|im_start|>user\nWhat is 2+22? It's 1234.<|im_end|>\n", false),
            (std::vector<int32_t>{1, 4093, 198, 1780, 314, 216, 34, 27, 34, 34, 47, 657, 506, 216, 33, 34, 35, 36, 30, 2,
                                  198}));
  EXPECT_EQ(smollm->encode("Hello world \xF0\x9F\xA6\x99 \xE6\x97\xA5\xE6\x9C\xAC\t\r\n  x", false),
            (std::vector<int32_t>{19556, 905, 15107, 116, 243, 17097, 241, 115, 40993, 197, 23799, 1792}));
}

TEST(BpeTokenizer, ByteLevelAlphabetIsGpt2s) {
  EXPECT_EQ(bpe::byte_to_char(' '), "\xC4\xA0");  // U+0120 Ġ
  EXPECT_EQ(bpe::byte_to_char('\n'), "\xC4\x8A");  // U+010A Ċ
  EXPECT_EQ(bpe::byte_to_char('A'), "A");
  EXPECT_EQ(bpe::byte_to_char(0xAD), "\xC5\x83");  // the soft hyphen: the last of the 68, U+0143
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string encoded;
  bpe::append_byte_level(all, encoded);
  EXPECT_EQ(bpe::bytes_of_byte_level(encoded), all);
  // Characters outside the alphabet stay as they are.
  EXPECT_EQ(bpe::bytes_of_byte_level("\xE6\x97\xA5" "a\xC4\xA0"), "\xE6\x97\xA5" "a ");
}

std::vector<std::string> split(const std::string& pre, std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view piece : bpe::PreTokenizer::named(pre).split(text)) out.emplace_back(piece);
  return out;
}
using Pieces = std::vector<std::string>;

TEST(BpeTokenizer, PreTokenizersCutDigitsAndWhitespaceTheirWay) {
  const std::string text = "I'LL pay 12345 now  ok";
  EXPECT_EQ(split("gpt-2", text), (Pieces{"I", "'", "LL", " pay", " 12345", " now", " ", " ok"}));
  EXPECT_EQ(split("llama-bpe", text), (Pieces{"I", "'LL", " pay", " ", "123", "45", " now", " ", " ok"}));
  EXPECT_EQ(split("llama3", text), split("llama-bpe", text));
  EXPECT_EQ(split("qwen2", text), (Pieces{"I", "'LL", " pay", " ", "1", "2", "3", "4", "5", " now", " ", " ok"}));
  // SmolLM2: every digit alone, the rest as GPT-2.
  EXPECT_EQ(split("smollm", text), (Pieces{"I", "'", "LL", " pay", " ", "1", "2", "3", "4", "5", " now", " ", " ok"}));
  EXPECT_EQ(split("default", "a+=b 1234"), (Pieces{"a", "+=", "b", " ", "123", "4"}));
  // \p{L} is Unicode: "日本" is one word; U+3000 (ideographic space) is whitespace.
  EXPECT_EQ(split("gpt-2", "\xE6\x97\xA5\xE6\x9C\xAC\xE3\x80\x80x"),
            (Pieces{"\xE6\x97\xA5\xE6\x9C\xAC", "\xE3\x80\x80", "x"}));
  // Bytes that are not UTF-8 neither fail nor vanish.
  std::string joined;
  for (const auto& p : split("llama-bpe", "a\xFF\x80 b\xE2")) joined += p;
  EXPECT_EQ(joined, "a\xFF\x80 b\xE2");
}

TEST(BpeTokenizer, LongRunsOfOneClassSplit) {
  const std::string spaces(100000, ' ');
  size_t total = 0;
  for (std::string_view piece : bpe::PreTokenizer::named("llama-bpe").split(spaces + "x")) total += piece.size();
  EXPECT_EQ(total, spaces.size() + 1);
}

TEST(BpeTokenizer, UnknownPreTokenizerIsAnErrorNamingIt) {
  try {
    bpe::PreTokenizer::named("no-such-pre");
    FAIL() << "no-such-pre should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown pre-tokenizer 'no-such-pre'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("llama-bpe"), std::string::npos) << e.what();
  }
}

// A byte-level vocabulary built by hand (pre-tokenizer gpt-2): one piece per byte (ids
// 0..255 in byte order), then the merge results, then the given special tokens.
using Specials = std::vector<std::pair<std::string, TokenType>>;
Vocabulary small_bpe_vocabulary(const std::vector<std::string>& merges, const Specials& specials = {}) {
  Vocabulary v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.merges = merges;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(bpe::byte_to_char(static_cast<unsigned char>(b)));
  v.types.assign(256, TokenType::Normal);
  for (const std::string& merge : merges) {
    std::string joined = merge;
    joined.erase(merge.find(' '), 1);
    v.tokens.push_back(joined);
    v.types.push_back(TokenType::Normal);
  }
  for (const auto& [text, type] : specials) {
    v.tokens.push_back(text);
    v.types.push_back(type);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.add_bos = false;
  return v;
}

std::vector<std::string> pieces_of(const Tokenizer& t, std::string_view text) {
  std::vector<std::string> out;
  for (int32_t id : t.encode(text, false)) out.push_back(t.vocabulary().tokens[static_cast<size_t>(id)]);
  return out;
}

TEST(BpeTokenizer, MergesApplyByRankNotByPosition) {
  // "abc": "b c" ranks before "a b", so b and c join first and "ab" never forms.
  auto t = make_tokenizer(small_bpe_vocabulary({"b c", "a b"}));
  EXPECT_EQ(pieces_of(*t, "abc"), (Pieces{"a", "bc"}));
  t = make_tokenizer(small_bpe_vocabulary({"a b", "b c"}));
  EXPECT_EQ(pieces_of(*t, "abc"), (Pieces{"ab", "c"}));
  // Equal candidates (the same merge twice): the leftmost first.
  t = make_tokenizer(small_bpe_vocabulary({"a a"}));
  EXPECT_EQ(pieces_of(*t, "aaa"), (Pieces{"aa", "a"}));
  // Merged pieces merge again; a space is "Ġ" and joins the word after it.
  t = make_tokenizer(small_bpe_vocabulary({"a a", "aa aa", "\xC4\xA0 aaaa"}));
  EXPECT_EQ(pieces_of(*t, "aaaa aaaa"), (Pieces{"aaaa", "\xC4\xA0" "aaaa"}));
  EXPECT_EQ(t->decode(t->encode("aaaa aaaa", false)), "aaaa aaaa");
}

TEST(BpeTokenizer, TheLongestSpecialTokenWins) {
  auto t = make_tokenizer(small_bpe_vocabulary(
      {}, {{"<|a|>", TokenType::Control}, {"<|a|>b", TokenType::UserDefined}, {"<x>", TokenType::UserDefined}}));
  const Vocabulary& v = t->vocabulary();
  const int32_t a = v.find("<|a|>"), ab = v.find("<|a|>b"), x = v.find("<x>");
  EXPECT_EQ(t->encode("<|a|>b<|a|><x>", false), (std::vector<int32_t>{ab, a, x}));
  EXPECT_EQ(t->encode("c<|a|>", false), (std::vector<int32_t>{'c', a}));
  EXPECT_EQ(t->decode({ab, a, x, 'c'}), "<|a|>b<x>c");
}

TEST(BpeTokenizer, BytesWithoutPiecesGiveUnknownOrAnError) {
  Vocabulary v = small_bpe_vocabulary({});
  v.tokens[0x7A] = "not z";  // "z" has no piece now
  v.unk_id = 1;
  EXPECT_EQ(make_tokenizer(v)->encode("yz", false), (std::vector<int32_t>{0x79, 1}));
  v.unk_id = -1;
  EXPECT_THROW(make_tokenizer(v)->encode("yz", false), Error);
}

TEST(BpeTokenizer, MergesNamingMissingPiecesAreLoadErrors) {
  const std::string path = ::testing::TempDir() + "braid_bpe_bad_merges.gguf";
  auto write = [&](const std::vector<std::string>& merges) {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::string("gpt-2"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"a", "b", "ab", "c"}));
    w.set("tokenizer.ggml.token_type", GgufValue::ints({1, 1, 1, 1}));
    w.set("tokenizer.ggml.merges", GgufValue::strings(merges));
    w.write(path);
  };
  auto load_error = [&]() -> std::string {
    try {
      load_tokenizer(GgufFile::open(path));
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  write({"a b"});
  EXPECT_EQ(load_tokenizer(GgufFile::open(path))->encode("ab", false), (std::vector<int32_t>{2}));
  write({"a b", "a d"});
  EXPECT_NE(load_error().find("tokenizer.ggml.merges[1] = 'a d' needs the piece 'd'"), std::string::npos)
      << load_error();
  write({"b c"});  // both pieces exist, "bc" does not
  EXPECT_NE(load_error().find("needs the piece 'bc'"), std::string::npos) << load_error();
  write({"abc"});
  EXPECT_NE(load_error().find("not two pieces"), std::string::npos) << load_error();
  {
    GgufWriter w;  // no merges at all
    w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"a"}));
    w.write(path);
  }
  EXPECT_NE(load_error().find("no tokenizer.ggml.merges"), std::string::npos) << load_error();
  {
    GgufWriter w;
    w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::string("martian"));
    w.set("tokenizer.ggml.tokens", GgufValue::strings({"a"}));
    w.set("tokenizer.ggml.merges", GgufValue::strings({}));
    w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
    w.write(path);
  }
  EXPECT_NE(load_error().find("unknown pre-tokenizer 'martian'"), std::string::npos) << load_error();
  EXPECT_TRUE(load_vocabulary(GgufFile::open(path)).add_bos);  // the key wins over the default
  std::remove(path.c_str());
}

}  // namespace
}  // namespace braid
