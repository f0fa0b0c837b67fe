#include <gtest/gtest.h>

#include <cmath>

#include "braid/types.h"
#include "test_support.h"

namespace braid {
namespace {

TEST(Types, HalfRoundTripsExactValues) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(Types, HalfRoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 0.00048828125f)), 1.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 3 * 0.00048828125f)), 1.0f + 4 * 0.00048828125f);
}

TEST(Types, Bf16KeepsTheUpperBits) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_NEAR(bf16_to_f32(f32_to_bf16(3.14159f)), 3.14159f, 0.02f);
}

TEST(Types, ParseNames) {
  DType t;
  ASSERT_TRUE(parse_dtype("Q4_0", &t));
  EXPECT_EQ(t, DType::Q4_0);
  ASSERT_TRUE(parse_dtype("q5_k", &t));
  EXPECT_EQ(t, DType::Q5_K);
  EXPECT_EQ(name(t), "q5_K");  // ggml's spelling
  EXPECT_FALSE(parse_dtype("q8_k", &t));
  EXPECT_FALSE(parse_dtype("q7_0", &t));
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(traits(DType::Q6_K).block_elements, 256);
  EXPECT_EQ(traits(DType::Q5_1).block_bytes, 24);
}

class QuantRoundTrip : public ::testing::TestWithParam<std::pair<DType, double>> {};

TEST_P(QuantRoundTrip, ErrorWithinTheFormatsPrecision) {
  const auto [type, limit] = GetParam();
  const auto x = test::random_floats(32 * 64, 7);
  std::vector<uint8_t> packed(row_bytes(type, static_cast<int64_t>(x.size())));
  from_f32(type, x.data(), packed.data(), static_cast<int64_t>(x.size()));
  std::vector<float> back(x.size());
  to_f32(type, packed.data(), back.data(), static_cast<int64_t>(x.size()));
  EXPECT_LT(test::nmse(back, x), limit) << name(type);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantRoundTrip,
                         ::testing::Values(std::pair{DType::F32, 1e-12}, std::pair{DType::F16, 1e-6},
                                           std::pair{DType::BF16, 1e-4}, std::pair{DType::Q8_0, 1e-4},
                                           std::pair{DType::Q4_0, 1e-2}, std::pair{DType::Q4_1, 1e-2},
                                           std::pair{DType::Q5_0, 3e-3}, std::pair{DType::Q5_1, 3e-3},
                                           std::pair{DType::Q2_K, 1e-1}, std::pair{DType::Q3_K, 3e-2},
                                           std::pair{DType::Q4_K, 1e-2}, std::pair{DType::Q5_K, 3e-3},
                                           std::pair{DType::Q6_K, 1e-3}));

}  // namespace
}  // namespace braid
