// braid's quantizers: the RMS error of each type on Gaussian weights (the numbers are
// stated here, measured with this test), the block layout of the K-quants seen through
// known values, and the weight types llama.cpp's Q4_K_M mix gives each matrix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "braid/model.h"
#include "braid/quant/dequantize.h"
#include "braid/weight_mix.h"

namespace braid {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// RMS of the quantization error relative to the RMS of the values.
double relative_rms_error(DType type, const std::vector<float>& x) {
  const auto count = static_cast<int64_t>(x.size());
  std::vector<uint8_t> packed(row_bytes(type, count));
  from_f32(type, x.data(), packed.data(), count);
  std::vector<float> back(x.size());
  to_f32(type, packed.data(), back.data(), count);
  double error = 0, signal = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    error += (static_cast<double>(back[i]) - x[i]) * (static_cast<double>(back[i]) - x[i]);
    signal += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(error / signal);
}

struct RmsCase {
  DType type;
  double measured;  // relative RMS error measured on N(0, 1) values, 65536 of them
};

class QuantRmsError : public ::testing::TestWithParam<RmsCase> {};

// The bound is the measured value plus 3%: a quantizer change that makes any type worse
// fails here. Measured (relative RMS error on N(0, 1)): q8_0 0.0054, q6_K 0.0172, q5_K
// 0.0358, q5_1 0.0379, q5_0 0.0427, q4_K 0.0712, q4_1 0.0781, q4_0 0.0859, q3_K 0.144,
// q2_K 0.270. For comparison, the bits per weight: q8_0 8.5, q6_K 6.56, q5_1 6, q5_K 5.5,
// q5_0 5.5, q4_1 5, q4_K 4.5, q4_0 4.5, q3_K 3.44, q2_K 2.63.
TEST_P(QuantRmsError, WithinTheStatedBound) {
  const RmsCase c = GetParam();
  const double rms = relative_rms_error(c.type, gaussian(256 * 256, 42));
  RecordProperty("relative_rms_error", std::to_string(rms));
  EXPECT_LT(rms, c.measured * 1.03) << name(c.type) << " measured " << rms;
  EXPECT_GT(rms, c.measured * 0.5) << name(c.type) << " suspiciously small: " << rms;
}

INSTANTIATE_TEST_SUITE_P(AllQuantTypes, QuantRmsError,
                         ::testing::Values(RmsCase{DType::Q8_0, 0.00538}, RmsCase{DType::Q6_K, 0.0172},
                                           RmsCase{DType::Q5_K, 0.0358}, RmsCase{DType::Q5_1, 0.0379},
                                           RmsCase{DType::Q5_0, 0.0427}, RmsCase{DType::Q4_K, 0.0712},
                                           RmsCase{DType::Q4_1, 0.0781}, RmsCase{DType::Q4_0, 0.0859},
                                           RmsCase{DType::Q3_K, 0.1439}, RmsCase{DType::Q2_K, 0.2700}),
                         [](const auto& info) { return std::string(name(info.param.type)); });

// More bits, less error: the K-quants order as their bits per weight do, and each beats
// the legacy type of about its size.
TEST(QuantRmsError, KQuantsOrderByBits) {
  const std::vector<float> x = gaussian(256 * 64, 7);
  const double q2 = relative_rms_error(DType::Q2_K, x), q3 = relative_rms_error(DType::Q3_K, x),
               q4 = relative_rms_error(DType::Q4_K, x), q5 = relative_rms_error(DType::Q5_K, x),
               q6 = relative_rms_error(DType::Q6_K, x);
  EXPECT_GT(q2, q3);
  EXPECT_GT(q3, q4);
  EXPECT_GT(q4, q5);
  EXPECT_GT(q5, q6);
  EXPECT_LT(q4, relative_rms_error(DType::Q4_0, x));
  EXPECT_LT(q5, relative_rms_error(DType::Q5_0, x));
}

// Constant blocks, zero blocks and a block with one outlier stay finite and close.
TEST(KQuants, EdgeBlocks) {
  for (DType type : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    for (float fill : {0.0f, 0.5f, -2.0f}) {
      std::vector<float> x(kSuperBlock, fill);
      x[17] = fill * 3 + 1;  // an outlier
      std::vector<uint8_t> packed(row_bytes(type, kSuperBlock));
      from_f32(type, x.data(), packed.data(), kSuperBlock);
      std::vector<float> back(kSuperBlock);
      to_f32(type, packed.data(), back.data(), kSuperBlock);
      for (int i = 0; i < kSuperBlock; ++i) {
        ASSERT_TRUE(std::isfinite(back[i])) << name(type);
        EXPECT_NEAR(back[i], x[i], 0.35 * (std::fabs(fill) * 3 + 1)) << name(type) << " fill " << fill << " element " << i;
      }
    }
  }
}

// Known bytes -> known values, written from ggml's layout description independently of
// the dequantizer's helpers: sub-block scales of Q4_K in their 6-bit packing.
TEST(KQuants, Q4KScalePacking) {
  BlockQ4_K b{};
  b.d = f32_to_f16(1.0f);
  b.dmin = f32_to_f16(0.5f);
  // sub-block 1: scale 5, min 3 (bytes 1 and 5); sub-block 6: scale 37 = 0b100101, min 18 = 0b010010
  b.scales[1] = 5;
  b.scales[5] = 3;
  b.scales[10] = (37 & 0x0f) | ((18 & 0x0f) << 4);
  b.scales[2] |= (37 >> 4) << 6;
  b.scales[6] |= (18 >> 4) << 6;
  b.qs[0 * 32 + 3] = 0x70;   // element 32 + 3 (high nibble of the first 32 bytes) = 7
  b.qs[3 * 32 + 4] = 0x09;   // element 192 + 4 (sub-block 6, low nibble) = 9
  using F = QuantFormat<DType::Q4_K>;
  EXPECT_EQ(F::element(b, 32 + 3), 5.0f * 7 - 0.5f * 3);
  EXPECT_EQ(F::element(b, 192 + 4), 37.0f * 9 - 0.5f * 18);
  EXPECT_EQ(F::element(b, 0), 0.0f);
}

// dequantize_eight (the unit of CUDA's dequantization for prompts) decodes offsets and
// scales once per eight elements; it must give element()'s values for every eight of a
// block, of every format, on random bytes (f16 scales kept finite so values compare).
template <DType T>
void expect_eights_equal_elements(uint32_t seed) {
  using F = QuantFormat<T>;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    typename F::Block b;
    auto* bytes = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof b; ++i) bytes[i] = static_cast<uint8_t>(rng());
    for (size_t i = 0; i + 1 < sizeof b; i += 2) {
      // Any f16 field may hold an inf or NaN pattern; clear bit 14 of every 16-bit word
      // whose exponent is all ones, which leaves other fields random enough.
      uint16_t word;
      std::memcpy(&word, bytes + i, 2);
      if ((word & 0x7c00) == 0x7c00) bytes[i + 1] &= 0xbf;
    }
    for (int g = 0; g < F::kElements / 8; ++g) {
      float eight[8];
      dequantize_eight<T>(b, g, eight);
      for (int l = 0; l < 8; ++l) {
        ASSERT_EQ(eight[l], F::element(b, 8 * g + l)) << name(T) << " eight " << g << " element " << l;
      }
    }
  }
}

TEST(Dequantize, EightsEqualElements) {
  expect_eights_equal_elements<DType::Q8_0>(1);
  expect_eights_equal_elements<DType::Q4_0>(2);
  expect_eights_equal_elements<DType::Q4_1>(3);
  expect_eights_equal_elements<DType::Q5_0>(4);
  expect_eights_equal_elements<DType::Q5_1>(5);
  expect_eights_equal_elements<DType::Q2_K>(6);
  expect_eights_equal_elements<DType::Q3_K>(7);
  expect_eights_equal_elements<DType::Q4_K>(8);
  expect_eights_equal_elements<DType::Q5_K>(9);
  expect_eights_equal_elements<DType::Q6_K>(10);
}

// llama.cpp's Q4_K_M on a 32-layer LLaMA: Q6_K for output.weight and for attn_v and
// ffn_down where use_more_bits holds (layers 0-3, 28-31, and 6, 9, ..., 27), Q4_K
// elsewhere, token_embd included.
TEST(WeightMix, Q4KMPicksLlamaCppsTypes) {
  ModelConfig c = preset_config("llama-7b");
  set_weight_type(c, "Q4_K_M");
  ASSERT_EQ(c.weight_mix, WeightMix::Q4_K_M);
  ASSERT_EQ(c.weight_type, DType::Q4_K);
  const std::vector<int> more_bits = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int l = 0; l < 32; ++l) {
    const bool more = std::find(more_bits.begin(), more_bits.end(), l) != more_bits.end();
    const std::string p = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(weight_type_for(c, p + "attn_v.weight", 4096), more ? DType::Q6_K : DType::Q4_K) << l;
    EXPECT_EQ(weight_type_for(c, p + "ffn_down.weight", 11008), more ? DType::Q6_K : DType::Q4_K) << l;
    EXPECT_EQ(weight_type_for(c, p + "attn_q.weight", 4096), DType::Q4_K) << l;
    EXPECT_EQ(weight_type_for(c, p + "ffn_up.weight", 4096), DType::Q4_K) << l;
  }
  EXPECT_EQ(weight_type_for(c, "output.weight", 4096), DType::Q6_K);
  EXPECT_EQ(weight_type_for(c, "token_embd.weight", 4096), DType::Q4_K);
  EXPECT_EQ(llama_file_type(c.weight_type, c.weight_mix), 15u);
}

// Rows that 256 does not divide take llama.cpp's fallbacks (11008, llama-7b's ffn_down
// width, is 43 x 256 and fits).
TEST(WeightMix, KQuantRowsThatDoNotFitFallBack) {
  EXPECT_EQ(fallback_type(DType::Q4_K, 11008), DType::Q4_K);
  EXPECT_EQ(fallback_type(DType::Q4_K, 1024 + 32), DType::Q5_0);
  EXPECT_EQ(fallback_type(DType::Q5_K, 1024 + 32), DType::Q5_1);
  EXPECT_EQ(fallback_type(DType::Q6_K, 1024 + 32), DType::Q8_0);
  EXPECT_EQ(fallback_type(DType::Q2_K, 1024 + 32), DType::Q4_0);
  EXPECT_EQ(fallback_type(DType::Q3_K, 1024 + 32), DType::Q4_0);
  EXPECT_EQ(fallback_type(DType::Q4_K, 1000), DType::F16);
  EXPECT_EQ(fallback_type(DType::Q4_0, 64), DType::Q4_0);
  ModelConfig c = preset_config("llama-7b");
  set_weight_type(c, "q4_k_m");
  EXPECT_EQ(weight_type_for(c, "output.weight", 1024 + 32), DType::Q8_0);  // llama.cpp: output falls to Q8_0
}

TEST(WeightMix, UnknownNamesAreErrors) {
  ModelConfig c = preset_config("tiny-256");
  EXPECT_THROW(set_weight_type(c, "q4_k_xl"), Error);
  EXPECT_THROW(set_weight_type(c, "i32"), Error);
  try {
    set_weight_type(c, "q7_k");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q7_k"), std::string::npos);
  }
}

}  // namespace
}  // namespace braid
