// Dequantization checked against an independent implementation: gguf-py's numpy
// dequantizers (gguf.quants), through tests/data/quant_vectors.gguf, a file written by
// gguf-py's GGUFWriter (scripts/make_quant_vectors.py says how). Loading it also checks
// that gguf-py's files of every quantized type load in braid.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "braid/gguf.h"
#include "braid/types.h"

namespace braid {
namespace {

const GgufFile& vectors() {
  static const GgufFile file = GgufFile::open(BRAID_TEST_DATA_DIR "/quant_vectors.gguf");
  return file;
}

// The script names tensors after gguf-py's types in lower case ("q4_k"; braid says "q4_K").
std::string lower_name(DType type) {
  std::string lower(name(type));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

int64_t element_count(const GgufTensorInfo& t) { return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]; }

std::vector<float> floats_of(const GgufTensorInfo& t) {
  EXPECT_EQ(t.dtype(), DType::F32) << t.name;
  std::vector<float> v(static_cast<size_t>(element_count(t)));
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

class GgufPyVectors : public ::testing::TestWithParam<DType> {};

TEST_P(GgufPyVectors, DequantizationMatchesBitForBit) {
  const DType type = GetParam();
  const GgufTensorInfo& blocks = vectors().tensor(lower_name(type));
  ASSERT_EQ(blocks.dtype(), type);
  const int64_t count = element_count(blocks);
  ASSERT_EQ(blocks.bytes, row_bytes(type, count));
  const std::vector<float> expected = floats_of(vectors().tensor(blocks.name + ".f32"));
  ASSERT_EQ(static_cast<int64_t>(expected.size()), count);
  std::vector<float> got(static_cast<size_t>(count));
  to_f32(type, blocks.data, got.data(), count);
  int mismatches = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0 && ++mismatches <= 5) {
      ADD_FAILURE() << name(type) << " element " << i << " (block " << i / traits(type).block_elements
                    << "): braid " << got[i] << ", gguf-py " << expected[i];
    }
  }
  EXPECT_EQ(mismatches, 0) << name(type);
}

INSTANTIATE_TEST_SUITE_P(AllQuantTypes, GgufPyVectors,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(name(info.param)); });

// The 32-element types quantize as ggml's reference does; gguf-py reproduces it bit for bit.
class GgufPyQuantize : public ::testing::TestWithParam<DType> {};

TEST_P(GgufPyQuantize, LegacyQuantizersMatchBitForBit) {
  const DType type = GetParam();
  const std::string base(name(type));
  const std::vector<float> source = floats_of(vectors().tensor(base + ".source"));
  const GgufTensorInfo& reference = vectors().tensor(base + ".gguf_py");
  ASSERT_EQ(reference.dtype(), type);
  std::vector<uint8_t> ours(row_bytes(type, static_cast<int64_t>(source.size())));
  ASSERT_EQ(ours.size(), reference.bytes);
  from_f32(type, source.data(), ours.data(), static_cast<int64_t>(source.size()));
  const auto* theirs = static_cast<const uint8_t*>(reference.data);
  const size_t block = static_cast<size_t>(traits(type).block_bytes);
  for (size_t b = 0; b < ours.size() / block; ++b) {
    EXPECT_EQ(std::memcmp(ours.data() + b * block, theirs + b * block, block), 0) << base << " block " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(LegacyTypes, GgufPyQuantize,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0),
                         [](const auto& info) { return std::string(name(info.param)); });

}  // namespace
}  // namespace braid
