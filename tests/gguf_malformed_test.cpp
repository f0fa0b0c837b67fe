// Malformed GGUF files, made from the fixtures: every one must give a braid::Error that
// says what is wrong and where, never a crash, an overread or a huge allocation (run
// these under the asan preset to check the last two).
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "braid/gguf.h"
#include "gguf_test_util.h"

namespace braid {
namespace {

using test::fixture;
using test::have_fixture;

using test::contains;
using test::parse_error;

TEST(GgufMalformed, TruncatedStoriesAtEveryHeaderByte) {
  if (!have_fixture("stories260K.gguf")) return;
  test::check_truncations("stories260K.gguf", 16384, 4093);
}

TEST(GgufMalformed, TruncatedTinyLlamaAndVocab) {
  if (!have_fixture("llama-2-tiny-random.gguf") || !have_fixture("ggml-vocab-llama-spm.gguf")) return;
  test::check_truncations("llama-2-tiny-random.gguf", 1024, 7919);
  test::check_truncations("ggml-vocab-llama-spm.gguf", 512, 7919);
}

TEST(GgufMalformed, TruncationMessagesSayWhere) {
  if (!have_fixture("stories260K.gguf")) return;
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("stories260K.gguf"));
  EXPECT_TRUE(contains(parse_error(bytes, 2), "not a GGUF file")) << parse_error(bytes, 2);
  EXPECT_TRUE(contains(parse_error(bytes, 10), "file ends inside the tensor count")) << parse_error(bytes, 10);
  // Counts are checked against what is left before anything is read.
  const std::string counts = parse_error(bytes, 24 + 13);
  EXPECT_TRUE(contains(counts, "metadata count 19 cannot fit in the 13 bytes left at byte 16")) << counts;
  // Inside the token array: names the key.
  const std::string in_array = parse_error(bytes, 2000);
  EXPECT_TRUE(contains(in_array, "(metadata key 'tokenizer.ggml.tokens')")) << in_array;
  // Inside a tensor info: names the tensor.
  const test::TensorInfoFields fields = test::find_tensor_info(bytes, "blk.2.ffn_up.weight");
  const std::string in_tensor = parse_error(bytes, fields.type + 2);
  EXPECT_TRUE(contains(in_tensor, "file ends inside the tensor type")) << in_tensor;
  EXPECT_TRUE(contains(in_tensor, "(tensor 'blk.2.ffn_up.weight')")) << in_tensor;
  // Inside the data: names the tensor whose bytes are cut.
  const std::string in_data = parse_error(bytes, bytes.size() - 100);
  EXPECT_TRUE(contains(in_data, "tensor 'blk.4.ffn_norm.weight'") && contains(in_data, "runs past")) << in_data;
}

TEST(GgufMalformed, BadMagicAndVersion) {
  if (!have_fixture("stories260K.gguf")) return;
  std::vector<uint8_t> bytes = test::read_bytes(fixture("stories260K.gguf"));
  std::vector<uint8_t> magic = bytes;
  magic[3] = 'X';
  EXPECT_TRUE(contains(parse_error(magic), "not a GGUF file (magic bytes 47 47 55 58")) << parse_error(magic);
  for (const uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
    std::vector<uint8_t> v = bytes;
    test::poke<uint32_t>(v, 4, version);
    const std::string message = parse_error(v);
    EXPECT_TRUE(contains(message, "unsupported GGUF version " + std::to_string(version))) << message;
    EXPECT_TRUE(contains(message, "at byte 4")) << message;
    if (version == 0x03000000u) {
      EXPECT_TRUE(contains(message, "big-endian")) << message;
    }
  }
  std::vector<uint8_t> v2 = bytes;  // version 2 has the same layout and is accepted
  test::poke<uint32_t>(v2, 4, 2);
  EXPECT_EQ(test::parse_bytes(v2, v2.size()).version(), 2u);
}

TEST(GgufMalformed, AbsurdCountsAndLengthsAllocateNothing) {
  if (!have_fixture("stories260K.gguf")) return;
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("stories260K.gguf"));
  const auto corrupt = [&](size_t at, uint64_t value) {
    std::vector<uint8_t> b = bytes;
    test::poke<uint64_t>(b, at, value);
    return parse_error(b);
  };
  const uint64_t huge = uint64_t{1} << 62;
  EXPECT_TRUE(contains(corrupt(8, huge), "tensor count 4611686018427387904 cannot fit")) << corrupt(8, huge);
  EXPECT_TRUE(contains(corrupt(16, huge), "metadata count 4611686018427387904 cannot fit")) << corrupt(16, huge);
  // A 49th tensor info is read from the zero padding that follows the 48th.
  EXPECT_TRUE(contains(corrupt(8, 49), "0 dimensions (braid reads 1 to 4)")) << corrupt(8, 49);
  // The first key's length, then the token array's element count and a token's length.
  EXPECT_TRUE(contains(corrupt(24, ~uint64_t{0}), "a metadata key claims 18446744073709551615 bytes"));
  const size_t tokens_key = test::find_gguf_string(bytes, "tokenizer.ggml.tokens");
  const size_t count_at = tokens_key + 8 + 21 + 4 + 4;
  const std::string array = corrupt(count_at, huge);
  EXPECT_TRUE(contains(array, "array of string claims 4611686018427387904 elements")) << array;
  EXPECT_TRUE(contains(array, "at byte " + std::to_string(count_at))) << array;
  const std::string token = corrupt(count_at + 8, huge);  // length of "<unk>"
  EXPECT_TRUE(contains(token, "a string value claims 4611686018427387904 bytes")) << token;
  // A scalar array's count is checked against its element size.
  const size_t scores_key = test::find_gguf_string(bytes, "tokenizer.ggml.scores");
  const std::string scores = corrupt(scores_key + 8 + 21 + 8, bytes.size() / 2);
  EXPECT_TRUE(contains(scores, "array of f32 claims")) << scores;
}

TEST(GgufMalformed, BadValueTypesAndNesting) {
  if (!have_fixture("stories260K.gguf")) return;
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("stories260K.gguf"));
  const size_t name_key = test::find_gguf_string(bytes, "general.name");
  std::vector<uint8_t> b = bytes;
  test::poke<uint32_t>(b, name_key + 8 + 12, 13);
  EXPECT_TRUE(contains(parse_error(b), "unknown metadata value type 13")) << parse_error(b);
  EXPECT_TRUE(contains(parse_error(b), "(metadata key 'general.name')")) << parse_error(b);
  b = bytes;
  const size_t tokens_key = test::find_gguf_string(bytes, "tokenizer.ggml.tokens");
  test::poke<uint32_t>(b, tokens_key + 8 + 21 + 4, 77);  // element type
  EXPECT_TRUE(contains(parse_error(b), "unknown metadata value type 77")) << parse_error(b);

  // Arrays nested 9 deep (each level: u32 type = array, u64 count = 1).
  std::vector<uint8_t> deep = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  const auto put = [&](auto value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    deep.insert(deep.end(), p, p + sizeof(value));
  };
  put(uint64_t{0});
  put(uint64_t{1});
  put(uint64_t{1});
  deep.push_back('k');
  put(uint32_t{9});
  for (int level = 0; level < 9; ++level) {
    put(uint32_t{9});
    put(uint64_t{1});
  }
  put(uint32_t{0});
  put(uint64_t{0});
  EXPECT_TRUE(contains(parse_error(deep), "arrays nested deeper than 8")) << parse_error(deep);
}

TEST(GgufMalformed, DuplicateKeysAndTensors) {
  if (!have_fixture("stories260K.gguf")) return;
  std::vector<uint8_t> b = test::read_bytes(fixture("stories260K.gguf"));
  const size_t name_key = test::find_gguf_string(b, "general.name");
  std::memcpy(b.data() + name_key + 8 + 8, "arch", 4);  // "general.name" -> "general.arch": no clash, shorter key
  ASSERT_NO_THROW(test::parse_bytes(b, b.size()));
  std::vector<uint8_t> dup = test::read_bytes(fixture("stories260K.gguf"));
  const size_t bos = test::find_gguf_string(dup, "tokenizer.ggml.bos_token_id");
  std::memcpy(dup.data() + bos + 8 + 15, "eos", 3);
  EXPECT_TRUE(contains(parse_error(dup), "duplicate metadata key")) << parse_error(dup);
  EXPECT_TRUE(contains(parse_error(dup), "'tokenizer.ggml.eos_token_id'")) << parse_error(dup);
  std::vector<uint8_t> tensors = test::read_bytes(fixture("stories260K.gguf"));
  const size_t q = test::find_gguf_string(tensors, "blk.3.attn_q.weight");
  tensors[q + 8 + 4] = '2';
  EXPECT_TRUE(contains(parse_error(tensors), "duplicate tensor name")) << parse_error(tensors);
}

TEST(GgufMalformed, TensorInfoErrorsNameTheTensor) {
  if (!have_fixture("stories260K.gguf")) return;
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("stories260K.gguf"));
  const test::TensorInfoFields f = test::find_tensor_info(bytes, "blk.1.attn_v.weight");
  const auto with = [&](const std::function<void(std::vector<uint8_t>&)>& change) {
    std::vector<uint8_t> b = bytes;
    change(b);
    const std::string message = parse_error(b);
    EXPECT_TRUE(contains(message, "tensor 'blk.1.attn_v.weight'")) << message;
    return message;
  };
  uint64_t offset = 0;
  std::memcpy(&offset, bytes.data() + f.offset, 8);

  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.offset, offset + 1); }),
                       "data offset " + std::to_string(offset + 1) + " is not a multiple of the alignment 32"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.offset, uint64_t{1} << 40); }),
                       "runs past its end"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.offset, ~uint64_t{31}); }), "runs past"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint32_t>(b, f.type, 99); }), "unknown tensor type 99"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint32_t>(b, f.type, 4); }), "unknown tensor type 4"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint32_t>(b, f.n_dims, 5); }), "5 dimensions"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint32_t>(b, f.n_dims, 0); }), "0 dimensions"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.ne + 8, uint64_t{1} << 63); }), "overflow"));
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.ne + 8, uint64_t{1} << 58); }), "overflow"));
  // 64 x 2^50 elements: no overflow of the count, but nowhere near the file's size.
  EXPECT_TRUE(contains(with([&](auto& b) { test::poke<uint64_t>(b, f.ne + 8, uint64_t{1} << 50); }), "runs past"));
  // q8_0 blocks hold 32 elements: a row of 64 fits, as a q4_K row (256) does not.
  const std::string row = with([&](auto& b) { test::poke<uint32_t>(b, f.type, 12); });
  EXPECT_TRUE(contains(row, "row of 64 elements is not a multiple of the q4_K block size 256")) << row;
}

TEST(GgufMalformed, BadAlignment) {
  for (const GgufValue& alignment : {GgufValue::u32(0), GgufValue::u32(48), GgufValue::u64(32)}) {
    // Built by hand: the writer refuses these alignments itself.
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    const auto put = [&](auto value) {
      const auto* p = reinterpret_cast<const uint8_t*>(&value);
      b.insert(b.end(), p, p + sizeof(value));
    };
    put(uint64_t{0});
    put(uint64_t{1});
    const std::string key = "general.alignment";
    put(uint64_t{key.size()});
    b.insert(b.end(), key.begin(), key.end());
    put(static_cast<uint32_t>(alignment.type()));
    const uint64_t bits = alignment.raw_bits();
    b.insert(b.end(), reinterpret_cast<const uint8_t*>(&bits),
             reinterpret_cast<const uint8_t*>(&bits) + (alignment.type() == GgufType::UInt64 ? 8 : 4));
    const std::string message = parse_error(b);
    EXPECT_TRUE(contains(message, "general.alignment")) << message;
  }
}

TEST(GgufMalformed, MissingAndEmptyFiles) {
  EXPECT_THROW(GgufFile::open("/nonexistent/braid.gguf"), Error);
  const std::string empty = test::temp_path("empty.gguf");
  test::write_bytes(empty, {});
  try {
    GgufFile::open(empty);
    ADD_FAILURE() << "empty file opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "empty file")) << e.what();
  }
  std::filesystem::remove(empty);
  EXPECT_THROW(GgufFile::open(std::filesystem::temp_directory_path().string()), Error);  // a folder
}

}  // namespace
}  // namespace braid
