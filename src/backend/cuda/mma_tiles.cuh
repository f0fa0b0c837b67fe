// The pieces of the tensor-core product of quantized weights (matmul_mma.cu) that are not
// its kernel: the tiles of rows and the splits of k (Note [Split k]), the fragments of each
// weight block a lane reads (MmaWeights), and the store of a tile's sums or of a split's
// partial sums.
#pragma once

#include <algorithm>
#include <type_traits>

#include "backend/cuda/int8_dot.cuh"
#include "backend/cuda/matmul.cuh"

namespace braid::cuda::mma {

constexpr int kMmaWarps = 8;  // a warp owns 16 rows (Note [Staged steps], matmul_mma.cu)
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaRows = 16 * kMmaWarps;
constexpr int kStepBlocks = 8;
// Thread blocks worth splitting k for: 2 an SM of an H100/H200 (the shared memory holds 3
// blocks of q4_K up to 32 columns, 2 at 64, 1 at 128). On the H200, 264 against 528: 4096 x
// 4096 q4_K at 16 / 32 / 64 columns 11.8 / 14.3 / 19.8 us against 14.2 / 17.2 / 24.6.
// Past 32 columns, 396 (a second, partial wave): the same 4096 x 4096 (it still takes 8
// splits), ffn_down's 11008 x 4096 q6_K 85.5 -> 80.3 us (11 splits, not 9), llama-7b
// Q4_K_M at 64 sequences 6395 -> 6456 t/s, the same in two calls; 132 and 198 were slower.
inline int64_t target_blocks(int64_t n) { return n > 32 ? 396 : 264; }

// Note [Split k]: a block owns 128 rows, so a 4096-row matrix gives 32 blocks, a quarter of
// the SMs of an H200, too few loads in flight to stream the weights.
// The blocks then split k: grid row y (of `splits`) takes steps [y * steps_per_split,
// (y + 1) * steps_per_split) and writes its partial sums to scratch, and sum_splits_kernel
// adds the partials in split order (and the addend of mul_mat_add): a fixed order for a
// given shape, so results do not change from run to run. Splits are chosen from the shape
// and width alone (the scratch is sized when the plan is made): enough for target_blocks,
// at most one per step.
struct KSplit {
  int64_t splits;
  int64_t steps_per_split;
};
inline KSplit k_split(int64_t k, int64_t m, int64_t n) {
  const int64_t row_blocks = (m + kMmaRows - 1) / kMmaRows;
  const int64_t steps = (k / kQuantBlock + kStepBlocks - 1) / kStepBlocks;
  const int64_t wanted = std::max<int64_t>(1, std::min(steps, (target_blocks(n) + row_blocks - 1) / row_blocks));
  const int64_t per_split = (steps + wanted - 1) / wanted;
  return {(steps + per_split - 1) / per_split, per_split};
}

// A step of kStepBlocks blocks is one K-quant super-block.
static_assert(kStepBlocks * kQuantBlock == kSuperBlock);

// The weights are read from their staged copy in shared memory (Note [Staged steps]);
// through generic pointers, since __ldg is for global memory only.
template <typename T>
__device__ __forceinline__ T load_plain(const T* p) {
  return *p;
}
__device__ __forceinline__ int load_pair16(const uint16_t* p) {
  return static_cast<int>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 16));
}

// The alignment int8_matvec_ok guarantees of a row's blocks (and so of each step's bytes).
template <DType W>
constexpr int row_align() {
  if constexpr (W == DType::Q4_1 || W == DType::Q5_1 || W == DType::Q4_K || W == DType::Q5_K) {
    return Int8Dot<W>::kAlign;
  } else {
    return 2;
  }
}

// What a lane needs of one 32-weight block of one row: the integer weights 4t..4t+3 (lo)
// and 16+4t..16+4t+3 (hi) as signed bytes, the scale of each half (equal but for q6_K)
// and the minimum (q4_1, q5_1: + m; q4_K, q5_K: - dmin * min): weight = d q + m. The block
// is MmaWeights<W>::load(row, j, t): block j of a step whose bytes start at `row`.
struct Frag {
  int lo, hi;
  float d, d_hi, m;
};

template <DType W>
struct MmaWeights;

template <>
struct MmaWeights<DType::Q8_0> {
  static constexpr bool kMin = false, kSplit = false;
  static constexpr int kStepBytes = kStepBlocks * sizeof(BlockQ8_0);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + j * sizeof(BlockQ8_0));  // qs at h + 1
    return {load_pair16(h + 1 + 2 * t), load_pair16(h + 9 + 2 * t), half_bits_to_float(load_plain(h)), 0.0f, 0.0f};
  }
};

template <>
struct MmaWeights<DType::Q4_0> {
  static constexpr bool kMin = false, kSplit = false;
  static constexpr int kStepBytes = kStepBlocks * sizeof(BlockQ4_0);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + j * sizeof(BlockQ4_0));
    const auto q = static_cast<uint32_t>(load_pair16(h + 1 + 2 * t));  // qs bytes 4t..4t+3
    return {static_cast<int>(__vsub4(q & 0x0f0f0f0fu, 0x08080808u)),
            static_cast<int>(__vsub4((q >> 4) & 0x0f0f0f0fu, 0x08080808u)), half_bits_to_float(load_plain(h)), 0.0f,
            0.0f};
  }
};

template <>
struct MmaWeights<DType::Q4_1> {  // 4-byte aligned blocks (int8_matvec_ok)
  static constexpr bool kMin = true, kSplit = false;
  static constexpr int kStepBytes = kStepBlocks * sizeof(BlockQ4_1);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + j * sizeof(BlockQ4_1));
    const uint32_t dm = load_plain(words), q = load_plain(words + 1 + t);
    return {static_cast<int>(q & 0x0f0f0f0fu), static_cast<int>((q >> 4) & 0x0f0f0f0fu),
            half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)), 0.0f,
            half_bits_to_float(static_cast<uint16_t>(dm >> 16))};
  }
};

template <>
struct MmaWeights<DType::Q5_0> {
  static constexpr bool kMin = false, kSplit = false;
  static constexpr int kStepBytes = kStepBlocks * sizeof(BlockQ5_0);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + j * sizeof(BlockQ5_0));  // qh at h + 1, qs at h + 3
    const auto qh = static_cast<uint32_t>(load_pair16(h + 1));
    const auto q = static_cast<uint32_t>(load_pair16(h + 3 + 2 * t));
    const uint32_t lo = (q & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (4 * t)));
    const uint32_t hi = ((q >> 4) & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (16 + 4 * t)));
    return {static_cast<int>(__vsub4(lo, 0x10101010u)), static_cast<int>(__vsub4(hi, 0x10101010u)),
            half_bits_to_float(load_plain(h)), 0.0f, 0.0f};
  }
};

template <>
struct MmaWeights<DType::Q5_1> {  // 4-byte aligned blocks
  static constexpr bool kMin = true, kSplit = false;
  static constexpr int kStepBytes = kStepBlocks * sizeof(BlockQ5_1);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + j * sizeof(BlockQ5_1));
    const uint32_t dm = load_plain(words), qh = load_plain(words + 1), q = load_plain(words + 2 + t);
    const uint32_t lo = (q & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (4 * t)));
    const uint32_t hi = ((q >> 4) & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (16 + 4 * t)));
    return {static_cast<int>(lo), static_cast<int>(hi), half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)), 0.0f,
            half_bits_to_float(static_cast<uint16_t>(dm >> 16))};
  }
};

// q4_K and q5_K: sub-block j of a super-block has weight l in nibble j % 2 of qs byte
// 32 (j / 2) + l (and, for q5_K, its fifth bit in bit j of qh byte l); w = d sc_j q - dmin m_j.
// A step is one super-block, so j is known when the loops are unrolled.
template <typename Block, bool kFifthBit>
__device__ __forceinline__ Frag k_scale_min_frag(const uint8_t* super, int j, int t) {
  const uint32_t dm = load_plain(reinterpret_cast<const uint32_t*>(super));
  int sc, mn;
  quant_detail::k_scale_min(super + offsetof(Block, scales), j, &sc, &mn);
  const auto* qs = reinterpret_cast<const uint32_t*>(super + offsetof(Block, qs)) + 8 * (j / 2);
  const int shift = 4 * (j % 2);
  uint32_t lo = (load_plain(qs + t) >> shift) & 0x0f0f0f0fu;
  uint32_t hi = (load_plain(qs + 4 + t) >> shift) & 0x0f0f0f0fu;
  if constexpr (kFifthBit) {
    const auto* qh = reinterpret_cast<const uint32_t*>(super + offsetof(BlockQ5_K, qh));
    lo |= ((load_plain(qh + t) >> j) & 0x01010101u) << 4;
    hi |= ((load_plain(qh + 4 + t) >> j) & 0x01010101u) << 4;
  }
  return {static_cast<int>(lo), static_cast<int>(hi),
          half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)) * static_cast<float>(sc), 0.0f,
          -half_bits_to_float(static_cast<uint16_t>(dm >> 16)) * static_cast<float>(mn)};
}

template <>
struct MmaWeights<DType::Q4_K> {  // 16-byte aligned blocks
  static constexpr bool kMin = true, kSplit = false;
  static constexpr int kStepBytes = sizeof(BlockQ4_K);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    return k_scale_min_frag<BlockQ4_K, false>(row, j, t);
  }
};

template <>
struct MmaWeights<DType::Q5_K> {
  static constexpr bool kMin = true, kSplit = false;
  static constexpr int kStepBytes = sizeof(BlockQ5_K);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* row, int j, int t) {
    return k_scale_min_frag<BlockQ5_K, true>(row, j, t);
  }
};

// q6_K (Int8Dot<Q6_K>): sub-block j = 4 h + g, weight l: nibble g / 2 of ql byte
// 64 h + 32 (g % 2) + l, bits 2 g.. of qh byte 32 h + l, scale scales[2 j + l / 16];
// w = d scale (q - 32). 2-byte aligned blocks: 16-bit loads.
template <>
struct MmaWeights<DType::Q6_K> {
  static constexpr bool kMin = false, kSplit = true;
  static constexpr int kStepBytes = sizeof(BlockQ6_K);  // a row's bytes in one step
  __device__ static Frag load(const uint8_t* super, int j, int t) {
    const int h = j / 4, g = j % 4;
    const auto* ql = reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (g % 2) + 4 * t);
    const auto* qh = reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, qh) + 32 * h + 4 * t);
    const auto* scales = reinterpret_cast<const int8_t*>(super + offsetof(BlockQ6_K, scales)) + 2 * j;
    const float d = half_bits_to_float(load_plain(reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, d))));
    auto six_bits = [&](int offset) {  // halves: offset 0 (weights 4t..) or 8 (16+4t..), in 16-bit words
      const uint32_t low = (static_cast<uint32_t>(load_pair16(ql + offset)) >> (4 * (g / 2))) & 0x0f0f0f0fu;
      const uint32_t high = ((static_cast<uint32_t>(load_pair16(qh + offset)) >> (2 * g)) & 0x03030303u) << 4;
      return static_cast<int>(__vsub4(low | high, 0x20202020u));
    };
    return {six_bits(0), six_bits(8), d * static_cast<float>(load_plain(scales)),
            d * static_cast<float>(load_plain(scales + 1)), 0.0f};
  }
};

// Stores what lane (g, t) of the warp owning rows first_row.. first_row + 15 summed for the
// tiles of 8 columns (acc[nt]: m16n8 C fragments): the product (plus the addend) with one
// split of k, else its partial sums at partials + blockIdx.y * m * n.
template <int NT>
__device__ __forceinline__ void store_tiles(const float (&acc)[NT][4], const MatvecArgs& a, float* partials,
                                            int64_t first_row, int tiles, int g, int t) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    if (nt >= tiles) break;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = first_row + g + (i >= 2 ? 8 : 0);
      const int column = 8 * nt + 2 * t + i % 2;
      if (row < a.m && column < a.n) {
        const int64_t at = column * a.m + row;
        if (gridDim.y == 1) {
          a.out[at] = with_plus(a, at, acc[nt][i]);
        } else {
          partials[blockIdx.y * a.m * a.n + at] = acc[nt][i];
        }
      }
    }
  }
}

// The bytes of scratch the partial sums of the splits take (none with one split).
inline size_t partials_bytes(int64_t k, int64_t m, int64_t n) {
  const KSplit split = k_split(k, m, n);
  return split.splits > 1 ? static_cast<size_t>(split.splits * m * n) * sizeof(float) : 0;
}

constexpr size_t kScratchAlignment = 256;
inline size_t align_up(size_t bytes) { return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment; }

// Calls f(std::integral_constant<DType, W>{}) for the weight types MmaWeights reads;
// false for any other.
template <typename F>
bool with_weight_type(DType w, F&& f) {
  switch (w) {
    case DType::Q8_0: f(std::integral_constant<DType, DType::Q8_0>{}); return true;
    case DType::Q4_0: f(std::integral_constant<DType, DType::Q4_0>{}); return true;
    case DType::Q4_1: f(std::integral_constant<DType, DType::Q4_1>{}); return true;
    case DType::Q5_0: f(std::integral_constant<DType, DType::Q5_0>{}); return true;
    case DType::Q5_1: f(std::integral_constant<DType, DType::Q5_1>{}); return true;
    case DType::Q4_K: f(std::integral_constant<DType, DType::Q4_K>{}); return true;
    case DType::Q5_K: f(std::integral_constant<DType, DType::Q5_K>{}); return true;
    case DType::Q6_K: f(std::integral_constant<DType, DType::Q6_K>{}); return true;
    default: return false;
  }
}

}  // namespace braid::cuda::mma
