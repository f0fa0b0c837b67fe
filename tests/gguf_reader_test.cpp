// The GGUF reader on files braid did not write (llama.cpp's converter), and GgufValue.
#include <gtest/gtest.h>

#include <cmath>

#include "braid/gguf.h"
#include "gguf_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

using test::fixture;
using test::have_fixture;

TEST(GgufReader, Stories260KMetadataAndTensors) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(fixture("stories260K.gguf"));
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.metadata().size(), 19u);
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_int("llama.block_count"), 5);
  EXPECT_EQ(file.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(file.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(file.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(file.get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(file.get_int("llama.context_length"), 2048);
  EXPECT_FLOAT_EQ(static_cast<float>(file.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(file.get("tokenizer.ggml.seperator_token_id").type(), GgufType::UInt32);
  EXPECT_EQ(file.get_int("tokenizer.ggml.seperator_token_id"), 4294967295LL);

  const GgufValue& tokens = file.get_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.element_type(), GgufType::String);
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens.at(0).as_string(), "<unk>");
  EXPECT_EQ(tokens.at(1).as_string(), "<s>");
  EXPECT_EQ(tokens.at(3).as_string(), "<0x00>");
  const GgufValue& types = file.get_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.element_type(), GgufType::Int32);
  EXPECT_EQ(types.at(0).as_int(), 2);  // unknown
  EXPECT_EQ(types.at(1).as_int(), 3);  // control
  EXPECT_EQ(types.at(3).as_int(), 6);  // byte
  EXPECT_EQ(file.get_array("tokenizer.ggml.scores").as_floats().size(), 512u);

  ASSERT_EQ(file.tensors().size(), 48u);  // 3 + 5 layers x 9
  const GgufTensorInfo& embd = file.tensor("token_embd.weight");
  EXPECT_EQ(embd.dtype(), DType::F32);
  EXPECT_EQ(embd.n_dims, 2);
  EXPECT_EQ(embd.ne, (Graph::Shape{64, 512, 1, 1}));
  EXPECT_EQ(embd.bytes, 64u * 512u * 4u);
  EXPECT_EQ(embd.shape_string(), "[64, 512]");
  EXPECT_EQ(file.tensor("blk.4.attn_k.weight").ne, (Graph::Shape{64, 32, 1, 1}));
  EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").ne, (Graph::Shape{172, 64, 1, 1}));
  EXPECT_EQ(file.find_tensor("blk.5.attn_q.weight"), nullptr);

  // Data lies inside the file at aligned offsets, and a trained norm weight is not zero.
  for (const GgufTensorInfo& t : file.tensors()) {
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    EXPECT_LE(file.data_offset() + t.offset + t.bytes, file.file_size()) << t.name;
  }
  const auto* norm = reinterpret_cast<const float*>(file.tensor("output_norm.weight").data);
  double sum = 0;
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(std::isfinite(norm[i]));
    sum += std::abs(norm[i]);
  }
  EXPECT_GT(sum, 1.0);
}

TEST(GgufReader, TinyRandomLlamaMixedTypes) {
  if (!have_fixture("llama-2-tiny-random.gguf")) return;
  const GgufFile file = GgufFile::open(fixture("llama-2-tiny-random.gguf"));
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.get_string("general.name"), "LLaMA v2");
  EXPECT_EQ(file.get_int("llama.block_count"), 1);
  EXPECT_EQ(file.get_int("llama.embedding_length"), 8);
  EXPECT_EQ(file.get_int("llama.attention.head_count"), 2);
  EXPECT_EQ(file.get_int("llama.feed_forward_length"), 32);
  EXPECT_EQ(file.get_array("tokenizer.ggml.tokens").size(), 32000u);
  int f16 = 0, f32 = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    (t.dtype() == DType::F16 ? f16 : f32) += 1;
    EXPECT_EQ(t.type_name, t.dtype() == DType::F16 ? "f16" : "f32");
  }
  EXPECT_EQ(f16, 9);
  EXPECT_EQ(f32, 3);
  EXPECT_EQ(file.tensor("token_embd.weight").ne, (Graph::Shape{8, 32000, 1, 1}));
  EXPECT_EQ(file.tensor("blk.0.attn_norm.weight").n_dims, 1);
}

TEST(GgufReader, VocabOnlyFile) {
  if (!have_fixture("ggml-vocab-llama-spm.gguf")) return;
  const GgufFile file = GgufFile::open(fixture("ggml-vocab-llama-spm.gguf"));
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.metadata().size(), 22u);
  EXPECT_EQ(file.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(file.get_string("tokenizer.ggml.pre"), "default");
  EXPECT_TRUE(file.get_bool("tokenizer.ggml.add_bos_token", false));
  EXPECT_FALSE(file.get_bool("tokenizer.ggml.add_eos_token", true));
  EXPECT_EQ(file.get_int("llama.vocab_size"), 32000);
  const std::vector<std::string> tokens = file.get_array("tokenizer.ggml.tokens").as_strings();
  ASSERT_EQ(tokens.size(), 32000u);
  EXPECT_EQ(tokens[2], "</s>");
}

TEST(GgufReader, TypedGettersNameTheKey) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(fixture("stories260K.gguf"));
  EXPECT_EQ(file.get_int("llama.expert_count", 0), 0);
  EXPECT_EQ(file.get_string("general.license", "none"), "none");
  EXPECT_DOUBLE_EQ(file.get_float("llama.rope.freq_base", 10000.0), 10000.0);
  const auto expect_error = [](auto&& call, const std::string& part) {
    try {
      call();
      ADD_FAILURE() << "no error; expected one containing " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error([&] { file.get_int("general.architecture"); }, "'general.architecture': expected an integer, found a string");
  expect_error([&] { file.get_string("llama.block_count"); }, "'llama.block_count': expected a string, found a u32");
  expect_error([&] { file.get_int("llama.nonexistent"); }, "metadata key 'llama.nonexistent' is missing");
  expect_error([&] { file.get_array("general.name"); }, "'general.name' is a string, expected an array");
  expect_error([&] { file.tensor("blk.9.attn_q.weight"); }, "tensor 'blk.9.attn_q.weight' is missing");
  expect_error([&] { file.get_array("tokenizer.ggml.tokens").at(512); }, "index 512 out of range");
}

TEST(GgufValue, ScalarsKeepTheirTypeAndValue) {
  EXPECT_EQ(GgufValue::i8(-5).as_int(), -5);
  EXPECT_EQ(GgufValue::i16(-300).as_int(), -300);
  EXPECT_EQ(GgufValue::i32(-70000).as_int(), -70000);
  EXPECT_EQ(GgufValue::i64(-(int64_t{1} << 40)).as_int(), -(int64_t{1} << 40));
  EXPECT_EQ(GgufValue::u8(250).as_int(), 250);
  EXPECT_EQ(GgufValue::u16(65000).as_int(), 65000);
  EXPECT_EQ(GgufValue::u32(4000000000u).as_int(), 4000000000LL);
  EXPECT_THROW(GgufValue::u64(~uint64_t{0}).as_int(), Error);
  EXPECT_EQ(GgufValue::u64(~uint64_t{0}).to_string(), "18446744073709551615");
  EXPECT_EQ(GgufValue::f32(0.25f).as_float(), 0.25);
  EXPECT_EQ(GgufValue::f32(1e-5f).to_string(), "1e-05");
  EXPECT_EQ(GgufValue::f64(-2.5).as_float(), -2.5);
  EXPECT_TRUE(GgufValue::boolean(true).as_bool());
  EXPECT_EQ(GgufValue::string("a\"b\n").to_string(), "\"a\\\"b\\n\"");
  EXPECT_THROW(GgufValue::f32(1).as_int(), Error);
  EXPECT_THROW(GgufValue::u8(1).as_bool(), Error);
  EXPECT_THROW(GgufValue::u8(1).size(), Error);
  EXPECT_NE(GgufValue::u32(7), GgufValue::i32(7));  // same number, different types
}

TEST(GgufValue, ArraysPackScalarsAndNest) {
  const GgufValue ints = GgufValue::ints({3, -1, 4});
  EXPECT_EQ(ints.size(), 3u);
  EXPECT_EQ(ints.at(1).as_int(), -1);
  EXPECT_EQ(ints.at(1).type(), GgufType::Int32);
  EXPECT_EQ(ints.to_string(), "[3, -1, 4]");
  EXPECT_EQ(ints.to_string(2), "[3, -1, ... (3 items)]");
  const GgufValue nested = GgufValue::array(GgufType::Array, {ints, GgufValue::strings({"x", "y"})});
  EXPECT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested.at(1).as_strings(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(nested.to_string(), "[[3, -1, 4], [\"x\", \"y\"]]");
  EXPECT_THROW(GgufValue::array(GgufType::UInt8, {GgufValue::u8(1), GgufValue::i8(1)}), Error);
  EXPECT_THROW(GgufValue::strings({"a"}).as_floats(), Error);
}

TEST(GgmlTypes, BraidTypesMapBothWays) {
  for (int i = 0; i < kDTypeCount; ++i) {
    const auto type = static_cast<DType>(i);
    const GgmlTypeInfo* info = ggml_type_info(ggml_type_of(type));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->dtype, type);
    EXPECT_EQ(info->name, name(type));
    EXPECT_EQ(info->block_elements, traits(type).block_elements);
    EXPECT_EQ(info->block_bytes, traits(type).block_bytes);
  }
  EXPECT_EQ(ggml_type_of(DType::BF16), 30u);
  EXPECT_EQ(ggml_type_of(DType::Q8_0), 8u);
  // ggml's numbers of the K-quants and the 5-bit types.
  EXPECT_EQ(ggml_type_of(DType::Q5_0), 6u);
  EXPECT_EQ(ggml_type_of(DType::Q5_1), 7u);
  EXPECT_EQ(ggml_type_of(DType::Q2_K), 10u);
  EXPECT_EQ(ggml_type_of(DType::Q3_K), 11u);
  EXPECT_EQ(ggml_type_of(DType::Q4_K), 12u);
  EXPECT_EQ(ggml_type_of(DType::Q5_K), 13u);
  EXPECT_EQ(ggml_type_of(DType::Q6_K), 14u);
  EXPECT_EQ(ggml_type_info(12)->name, "q4_K");
  EXPECT_EQ(ggml_type_info(23)->name, "iq4_xs");
  EXPECT_FALSE(ggml_type_info(23)->dtype.has_value());
  EXPECT_FALSE(ggml_type_info(15)->dtype.has_value());  // q8_K: only ggml's dot products use it
  EXPECT_EQ(ggml_type_info(4), nullptr);  // retired q4_2
  EXPECT_EQ(ggml_type_info(1000), nullptr);
}

}  // namespace
}  // namespace braid
