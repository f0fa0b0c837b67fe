// The tensor-core product of quantized weights with int8-quantized x, for batched decode
// (kMatvecMaxColumns < n <= kInt8MmaMaxColumns columns). See Note [Int8 tensor-core product].
//
// Note [Int8 tensor-core product]: past a few columns the __dp4a matrix-vector kernel
// (matvec_int8.cu) is compute-bound, and the cuBLAS path writes every weight as f16 to
// scratch each step (13 GB a step for llama-7b). Here the weights stay quantized: x is
// quantized once per node as for the dp4a kernel (quantize_columns, Note [Int8
// activations], plain order), and each 32-weight block meets the matching int8 block of
// x on the tensor cores through mma.sync.m16n8k32 (s8 x s8 -> s32):
//
//   acc(row, col) += d_w(row, blk) * d_x(col, blk) * dot + m_w(row, blk) * s_x(col, blk)
//
// where dot is the int32 product of the block's integer weights with q_x, d_w the block's
// (or K-quant sub-block's) scale and m_w its minimum (q4_1, q5_1: + m; q4_K, q5_K:
// - dmin * min; none for the signed types q8_0, q4_0 as n - 8, q5_0 as n - 16, q6_K as
// q - 32). q6_K has one scale per 16 weights, so its blocks take two m16n8k16 products.
//
// Tiles. A block of kMmaWarps = 4 warps owns kMmaRows = 64 consecutive rows (warp w rows
// 16 w..16 w + 15) and all n columns, padded to tiles of 8 (NT tiles: 4, 8 or 16; tiles
// past n are skipped, padded columns of the last tile are computed from zeros and never
// stored). It walks its part of k (Note [Split k]) in steps of kStepBlocks = 8 blocks (256
// weights: one K-quant super-block). Per step, the block copies q_x of those 8 blocks for
// all columns to shared memory (columns kXStride = 272 bytes apart: the 32-bit B-fragment
// reads of a warp then hit 32 different banks) and (d_x, s_x) as [block][column]; each
// lane reads its own A fragments straight from the weights, as the fragment layout wants
// them, half a step (kLoad = 4 blocks) at a time, the first half before the step's barrier
// (and the first step's before wait_for_producers, Note [Weight prefetch]); nothing about
// the weights goes through shared memory. With j (the block of the step) a constant of the
// unrolled loops, a K-quant super-block's header is read and unpacked once per row and
// step. Half a step in registers keeps every variant at or under 168 registers (3 blocks
// an SM) with no spills at sm_90; a whole step took up to 208 (kLoad, to tune). Up to 64
// columns (NT <= 8) the launch bounds ask for 4 blocks an SM (128 registers, still no
// spills): the kernel is bound by latency at ~2 warps a scheduler, and on the H200 4 blocks
// with k split for 528 took llama-7b Q4_K_M batched decode (8 layers, 64 sequences) from
// 10.5k to 12.4k t/s and 32 sequences from 7.8k to 9.3k. An L2 prefetch of the next step's
// weights measured no change and was left out.
//
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k32", .s8): lane = 4 g + t.
//   A (16 x 32, row): a0 = row g, k 4t..4t+3; a1 = row g+8, k 4t..4t+3; a2 = row g, k 16+4t..;
//                     a3 = row g+8, k 16+4t..
//   B (32 x 8, col):  b0 = k 4t..4t+3 of column g; b1 = k 16+4t..16+4t+3 of column g
//   C (16 x 8):       c0, c1 = row g, columns 2t, 2t+1; c2, c3 = row g+8, columns 2t, 2t+1
// (m16n8k16: a0 = row g, k 4t..4t+3; a1 = row g+8, k 4t..4t+3; b0 = k 4t..4t+3 of column g.)
// So a lane needs weights 4t..4t+3 and 16+4t..16+4t+3 of a block, for rows g and g+8: for
// the 4-bit types those are the low and high nibbles of one 32-bit word of qs (element j
// and j + 16 share byte j), which is why x stays in plain order.
//
// The int32 results become floats without I2F: each product starts from the bits of
// 1.5 * 2^23 (kDotBias, Note [Integer to float]), exact while |dot| < 2^22 (at most
// 32 * 127 * 127 here). Each accumulator sums its blocks in k order and the splits of k
// are added in split order, so the result is deterministic; there are no atomics.
#include <algorithm>

#include "backend/cuda/int8_dot.cuh"
#include "backend/cuda/matmul.cuh"

namespace braid::cuda {
namespace {

constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaRows = 16 * kMmaWarps;
constexpr int kStepBlocks = 8;
constexpr int kXStride = kStepBlocks * kQuantBlock + 16;  // bytes between columns of the staged q_x
// Thread blocks worth splitting k for: four per SM of an H100/H200, what the registers allow
// at up to 64 columns (Note [Split k]).
constexpr int64_t kTargetBlocks = 528;
constexpr size_t kScratchAlignment = 256;

size_t align_up(size_t bytes) { return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment; }

// Note [Split k]: a block owns 64 rows, so a 4096-row matrix gives 64 blocks, half the SMs
// of an H200 with one block (4 warps) each, too few loads in flight to stream the weights.
// The blocks then split k: grid row y (of `splits`) takes steps [y * steps_per_split,
// (y + 1) * steps_per_split) and writes its partial sums to scratch, and sum_splits_kernel
// adds the partials in split order (and the addend of mul_mat_add): a fixed order for a
// given shape, so results do not change from run to run. Splits are chosen from the shape
// alone (the scratch is sized when the plan is made): enough for kTargetBlocks blocks, at
// most one per step.
struct KSplit {
  int64_t splits;
  int64_t steps_per_split;
};
KSplit k_split(int64_t k, int64_t m) {
  const int64_t row_blocks = (m + kMmaRows - 1) / kMmaRows;
  const int64_t steps = (k / kQuantBlock + kStepBlocks - 1) / kStepBlocks;
  const int64_t wanted = std::max<int64_t>(1, std::min(steps, (kTargetBlocks + row_blocks - 1) / row_blocks));
  const int64_t per_split = (steps + wanted - 1) / wanted;
  return {(steps + per_split - 1) / per_split, per_split};
}

// Where the partial sums of the splits live in scratch: after the int8 copy of x.
size_t partials_offset(int64_t k, int64_t n) { return align_up(int8_matvec_scratch_bytes(k, n)); }

// A step of kStepBlocks blocks is one K-quant super-block.
static_assert(kStepBlocks * kQuantBlock == kSuperBlock);

// What a lane needs of one 32-weight block of one row: the signed (or unsigned, with a
// minimum) int8 weights 4t..4t+3 (lo) and 16+4t..16+4t+3 (hi), the scale of each half
// (equal but for q6_K) and the minimum term's factor (acc += m * s_x).
struct Frag {
  int lo, hi;
  float d, d_hi, m;
};

template <DType W>
struct MmaWeights;

template <>
struct MmaWeights<DType::Q8_0> {
  static constexpr bool kMin = false, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + (step * kStepBlocks + j) * sizeof(BlockQ8_0));  // qs at h + 1
    return {pair16(h + 1 + 2 * t), pair16(h + 9 + 2 * t), half_bits_to_float(__ldg(h)), 0.0f, 0.0f};
  }
};

template <>
struct MmaWeights<DType::Q4_0> {
  static constexpr bool kMin = false, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + (step * kStepBlocks + j) * sizeof(BlockQ4_0));
    const auto q = static_cast<uint32_t>(pair16(h + 1 + 2 * t));  // qs bytes 4t..4t+3
    return {static_cast<int>(__vsub4(q & 0x0f0f0f0fu, 0x08080808u)),
            static_cast<int>(__vsub4((q >> 4) & 0x0f0f0f0fu, 0x08080808u)), half_bits_to_float(__ldg(h)), 0.0f, 0.0f};
  }
};

template <>
struct MmaWeights<DType::Q4_1> {  // 4-byte aligned blocks (int8_matvec_ok)
  static constexpr bool kMin = true, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + (step * kStepBlocks + j) * sizeof(BlockQ4_1));
    const uint32_t dm = __ldg(words), q = __ldg(words + 1 + t);
    return {static_cast<int>(q & 0x0f0f0f0fu), static_cast<int>((q >> 4) & 0x0f0f0f0fu),
            half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)), 0.0f,
            half_bits_to_float(static_cast<uint16_t>(dm >> 16))};
  }
};

template <>
struct MmaWeights<DType::Q5_0> {
  static constexpr bool kMin = false, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + (step * kStepBlocks + j) * sizeof(BlockQ5_0));  // qh at h + 1, qs at h + 3
    const auto qh = static_cast<uint32_t>(pair16(h + 1));
    const auto q = static_cast<uint32_t>(pair16(h + 3 + 2 * t));
    const uint32_t lo = (q & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (4 * t)));
    const uint32_t hi = ((q >> 4) & 0x0f0f0f0fu) | static_cast<uint32_t>(spread4_to_bit4(qh >> (16 + 4 * t)));
    return {static_cast<int>(__vsub4(lo, 0x10101010u)), static_cast<int>(__vsub4(hi, 0x10101010u)),
            half_bits_to_float(__ldg(h)), 0.0f, 0.0f};
  }
};

template <>
struct MmaWeights<DType::Q5_1> {  // 4-byte aligned blocks
  static constexpr bool kMin = true, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + (step * kStepBlocks + j) * sizeof(BlockQ5_1));
    const uint32_t dm = __ldg(words), qh = __ldg(words + 1), q = __ldg(words + 2 + t);
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
__device__ __forceinline__ Frag k_scale_min_frag(const uint8_t* row, int64_t step, int j, int t) {
  const uint8_t* super = row + step * sizeof(Block);
  const uint32_t dm = __ldg(reinterpret_cast<const uint32_t*>(super));
  int sc, mn;
  quant_detail::k_scale_min(super + offsetof(Block, scales), j, &sc, &mn);
  const auto* qs = reinterpret_cast<const uint32_t*>(super + offsetof(Block, qs)) + 8 * (j / 2);
  const int shift = 4 * (j % 2);
  uint32_t lo = (__ldg(qs + t) >> shift) & 0x0f0f0f0fu;
  uint32_t hi = (__ldg(qs + 4 + t) >> shift) & 0x0f0f0f0fu;
  if constexpr (kFifthBit) {
    const auto* qh = reinterpret_cast<const uint32_t*>(super + offsetof(BlockQ5_K, qh));
    lo |= ((__ldg(qh + t) >> j) & 0x01010101u) << 4;
    hi |= ((__ldg(qh + 4 + t) >> j) & 0x01010101u) << 4;
  }
  return {static_cast<int>(lo), static_cast<int>(hi),
          half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)) * static_cast<float>(sc), 0.0f,
          -half_bits_to_float(static_cast<uint16_t>(dm >> 16)) * static_cast<float>(mn)};
}

template <>
struct MmaWeights<DType::Q4_K> {  // 16-byte aligned blocks
  static constexpr bool kMin = true, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    return k_scale_min_frag<BlockQ4_K, false>(row, step, j, t);
  }
};

template <>
struct MmaWeights<DType::Q5_K> {
  static constexpr bool kMin = true, kSplit = false;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    return k_scale_min_frag<BlockQ5_K, true>(row, step, j, t);
  }
};

// q6_K (Int8Dot<Q6_K>): sub-block j = 4 h + g, weight l: nibble g / 2 of ql byte
// 64 h + 32 (g % 2) + l, bits 2 g.. of qh byte 32 h + l, scale scales[2 j + l / 16];
// w = d scale (q - 32). 2-byte aligned blocks: 16-bit loads.
template <>
struct MmaWeights<DType::Q6_K> {
  static constexpr bool kMin = false, kSplit = true;
  __device__ static Frag load(const uint8_t* row, int64_t step, int j, int t) {
    const uint8_t* super = row + step * sizeof(BlockQ6_K);
    const int h = j / 4, g = j % 4;
    const auto* ql = reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (g % 2) + 4 * t);
    const auto* qh = reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, qh) + 32 * h + 4 * t);
    const auto* scales = reinterpret_cast<const int8_t*>(super + offsetof(BlockQ6_K, scales)) + 2 * j;
    const float d = half_bits_to_float(__ldg(reinterpret_cast<const uint16_t*>(super + offsetof(BlockQ6_K, d))));
    auto six_bits = [&](int offset) {  // halves: offset 0 (weights 4t..) or 8 (16+4t..), in 16-bit words
      const uint32_t low = (static_cast<uint32_t>(pair16(ql + offset)) >> (4 * (g / 2))) & 0x0f0f0f0fu;
      const uint32_t high = ((static_cast<uint32_t>(pair16(qh + offset)) >> (2 * g)) & 0x03030303u) << 4;
      return static_cast<int>(__vsub4(low | high, 0x20202020u));
    };
    return {six_bits(0), six_bits(8), d * static_cast<float>(__ldg(scales)), d * static_cast<float>(__ldg(scales + 1)),
            0.0f};
  }
};

// D = A B + kDotBias in every element: read as floats (unbias), 1.5 * 2^23 + dot.
__device__ __forceinline__ void mma_k32(int (&d)[4], int a0, int a1, int a2, int a3, int b0, int b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(kDotBias));
}
__device__ __forceinline__ void mma_k16(int (&d)[4], int a0, int a1, int b0) {
  asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%7,%7,%7};"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a0), "r"(a1), "r"(b0), "r"(kDotBias));
}

// The weights of blocks first_j.. first_j + kLoad - 1 of a step for rows g (f[i][0]) and
// g + 8 (f[i][1]); blocks past the row's end (a partial last step of a legacy type) are
// not loaded, nor used.
template <DType W, int kLoad>
__device__ __forceinline__ void load_blocks(Frag (&f)[kLoad][2], const uint8_t* row_g, const uint8_t* row_g8,
                                            int64_t step, int first_j, int64_t blocks, int t) {
#pragma unroll
  for (int i = 0; i < kLoad; ++i) {
    if (step * kStepBlocks + first_j + i < blocks) {
      f[i][0] = MmaWeights<W>::load(row_g, step, first_j + i, t);
      f[i][1] = MmaWeights<W>::load(row_g8, step, first_j + i, t);
    }
  }
}

// acc += the products of one block of rows g, g + 8 (w0, w1) with the block of x of each
// column tile: xq the block's q_x in shared memory (column c at xq + c * kXStride), ds
// its (d_x, s_x) by column.
template <DType W, int NT>
__device__ __forceinline__ void add_block(float (&acc)[NT][4], const Frag& w0, const Frag& w1, const int8_t* xq,
                                          const float2* ds_by_column, int tiles, int g, int t) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    if (nt >= tiles) break;
    const int8_t* xb = xq + (8 * nt + g) * kXStride + 4 * t;
    const int b0 = *reinterpret_cast<const int*>(xb);
    const int b1 = *reinterpret_cast<const int*>(xb + 16);
    const float4 ds = *reinterpret_cast<const float4*>(ds_by_column + 8 * nt + 2 * t);  // columns 2t, 2t+1
    float* out = acc[nt];
    if constexpr (MmaWeights<W>::kSplit) {  // two halves of 16 with their own scales
      static_assert(!MmaWeights<W>::kMin, "the split blocks (q6_K) have no minimum");
      int c0[4], c1[4];
      mma_k16(c0, w0.lo, w1.lo, b0);
      mma_k16(c1, w0.hi, w1.hi, b1);
      out[0] = fmaf(ds.x, fmaf(w0.d, unbias(c0[0]), w0.d_hi * unbias(c1[0])), out[0]);
      out[1] = fmaf(ds.z, fmaf(w0.d, unbias(c0[1]), w0.d_hi * unbias(c1[1])), out[1]);
      out[2] = fmaf(ds.x, fmaf(w1.d, unbias(c0[2]), w1.d_hi * unbias(c1[2])), out[2]);
      out[3] = fmaf(ds.z, fmaf(w1.d, unbias(c0[3]), w1.d_hi * unbias(c1[3])), out[3]);
    } else {
      int c[4];
      mma_k32(c, w0.lo, w1.lo, w0.hi, w1.hi, b0, b1);
      out[0] = fmaf(w0.d * ds.x, unbias(c[0]), out[0]);
      out[1] = fmaf(w0.d * ds.z, unbias(c[1]), out[1]);
      out[2] = fmaf(w1.d * ds.x, unbias(c[2]), out[2]);
      out[3] = fmaf(w1.d * ds.z, unbias(c[3]), out[3]);
      if constexpr (MmaWeights<W>::kMin) {
        out[0] = fmaf(w0.m, ds.y, out[0]);
        out[1] = fmaf(w0.m, ds.w, out[1]);
        out[2] = fmaf(w1.m, ds.y, out[2]);
        out[3] = fmaf(w1.m, ds.w, out[3]);
      }
    }
  }
}

// Grid row y sums steps [y * steps_per_split, (y + 1) * steps_per_split) of k; with one
// split it stores the product (plus the addend), with more its partial sums at partials +
// y * m * n (Note [Split k]). Step s is blocks 8 s..8 s + 7 of every row (block j of the
// step: MmaWeights::load(row, s, j, t)).
template <DType W, int NT>
__global__ void __launch_bounds__(kMmaThreads, NT <= 8 ? 4 : 2)
    int8_mma_kernel(MatvecArgs a, Int8Columns x, float* partials, int64_t steps_per_split) {
  constexpr int N = 8 * NT;
  constexpr int kLoad = kStepBlocks / 2;  // blocks whose weights are in registers at once
  __shared__ __align__(16) int8_t xq[N * kXStride];
  __shared__ __align__(16) float2 xds[kStepBlocks][N];  // (d_x, s_x) of block i of the step, column c
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kMmaRows + 16 * warp;
  // Rows past the end read the last row; their sums are dropped.
  const uint8_t* row_g = a.w + min(first_row + g, a.m - 1) * a.w_row_stride;
  const uint8_t* row_g8 = a.w + min(first_row + g + 8, a.m - 1) * a.w_row_stride;
  const int tiles = (a.n + 7) / 8;  // <= NT
  const int64_t blocks = a.k / kQuantBlock;
  const int64_t begin = blockIdx.y * steps_per_split;
  const int64_t end = min((blocks + kStepBlocks - 1) / kStepBlocks, begin + steps_per_split);

  Frag f[kLoad][2];
  load_blocks<W, kLoad>(f, row_g, row_g8, begin, 0, blocks, t);
  wait_for_producers();

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;
  }
  for (int64_t step = begin; step < end; ++step) {
    const int64_t first = step * kStepBlocks;  // block
    const int step_blocks = blocks - first < kStepBlocks ? static_cast<int>(blocks - first) : kStepBlocks;
    if (step > begin) load_blocks<W, kLoad>(f, row_g, row_g8, step, 0, blocks, t);
    __syncthreads();  // the previous step's reads of xq and xds are done
    // q_x of the step's blocks, 16 bytes a thread a turn (zeros for padded columns).
    for (int i = static_cast<int>(threadIdx.x); i < tiles * 8 * 2 * kStepBlocks; i += kMmaThreads) {
      const int c = i / (2 * kStepBlocks), chunk = i % (2 * kStepBlocks);
      if (chunk >= 2 * step_blocks) continue;
      int4 v = make_int4(0, 0, 0, 0);
      if (c < a.n) v = *reinterpret_cast<const int4*>(x.q + c * a.k + first * kQuantBlock + 16 * chunk);
      *reinterpret_cast<int4*>(xq + c * kXStride + 16 * chunk) = v;
    }
    for (int i = static_cast<int>(threadIdx.x); i < tiles * 8 * kStepBlocks; i += kMmaThreads) {
      const int c = i / kStepBlocks, b = i % kStepBlocks;
      if (b >= step_blocks) continue;
      xds[b][c] = c < a.n ? x.ds[c * blocks + first + b] : make_float2(0.0f, 0.0f);
    }
    __syncthreads();
#pragma unroll
    for (int part = 0; part < kStepBlocks / kLoad; ++part) {
      if (part * kLoad >= step_blocks) break;
      if (part > 0) load_blocks<W, kLoad>(f, row_g, row_g8, step, part * kLoad, blocks, t);
#pragma unroll
      for (int i = 0; i < kLoad; ++i) {
        const int b = part * kLoad + i;  // of the step
        if (b >= step_blocks) break;
        add_block<W, NT>(acc, f[i][0], f[i][1], xq + kQuantBlock * b, xds[b], tiles, g, t);
      }
    }
  }

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

// out = the sum of the splits' partials in split order, plus the addend (mul_mat_add).
__global__ void sum_splits_kernel(const float* partials, int64_t splits, int64_t count, const float* plus,
                                  float* out) {
  wait_for_producers();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = partials[i];
    for (int64_t s = 1; s < splits; ++s) sum += partials[s * count + i];
    out[i] = plus != nullptr ? sum + plus[i] : sum;
  }
}

template <DType W>
void launch_typed(const MatvecArgs& a, const Int8Columns& x, float* partials, const KSplit& split,
                  cudaStream_t stream) {
  const dim3 grid(grid_size(a.m, kMmaRows), static_cast<unsigned>(split.splits));
  const int tiles = (a.n + 7) / 8;
  if (tiles <= 4) {
    launch_kernel(int8_mma_kernel<W, 4>, grid, kMmaThreads, 0, stream, a, x, partials, split.steps_per_split);
  } else if (tiles <= 8) {
    launch_kernel(int8_mma_kernel<W, 8>, grid, kMmaThreads, 0, stream, a, x, partials, split.steps_per_split);
  } else {
    launch_kernel(int8_mma_kernel<W, 16>, grid, kMmaThreads, 0, stream, a, x, partials, split.steps_per_split);
  }
}

}  // namespace

void launch_int8_mma(const NodeLaunch& launch, DType w_type, const MatvecArgs& args) {
  BRAID_ASSERT(args.ids == nullptr && args.n > 0 && args.n <= kInt8MmaMaxColumns && int8_matvec_ok(w_type, args));
  if (args.m == 0) return;
  if (args.m > INT32_MAX) throw Error(launch.label() + ": too many rows");
  launch.require_scratch(int8_mma_scratch_bytes(args.k, args.m, args.n));
  const KSplit split = k_split(args.k, args.m);
  if (split.splits > 65535) throw Error(launch.label() + ": rows too long");  // grid rows
  const Int8Columns x = quantize_columns(launch, args.x, args.x_col_stride, args.k, args.n, false);
  auto* partials = reinterpret_cast<float*>(static_cast<uint8_t*>(launch.ctx.scratch) + partials_offset(args.k, args.n));
  cudaStream_t stream = launch.ctx.stream;
  switch (w_type) {
    case DType::Q8_0: launch_typed<DType::Q8_0>(args, x, partials, split, stream); break;
    case DType::Q4_0: launch_typed<DType::Q4_0>(args, x, partials, split, stream); break;
    case DType::Q4_1: launch_typed<DType::Q4_1>(args, x, partials, split, stream); break;
    case DType::Q5_0: launch_typed<DType::Q5_0>(args, x, partials, split, stream); break;
    case DType::Q5_1: launch_typed<DType::Q5_1>(args, x, partials, split, stream); break;
    case DType::Q4_K: launch_typed<DType::Q4_K>(args, x, partials, split, stream); break;
    case DType::Q5_K: launch_typed<DType::Q5_K>(args, x, partials, split, stream); break;
    case DType::Q6_K: launch_typed<DType::Q6_K>(args, x, partials, split, stream); break;
    default: throw Error(launch.label() + ": no int8 tensor-core kernel for this weight type");
  }
  if (split.splits > 1) {
    const int64_t count = args.m * args.n;
    const auto blocks = static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 65535));
    launch_kernel(sum_splits_kernel, blocks, 256, 0, stream, partials, split.splits, count, args.plus, args.out);
  }
  launch.check_launch();
}

size_t int8_mma_scratch_bytes(int64_t k, int64_t m, int64_t n) {
  const KSplit split = k_split(k, m);
  const size_t partials = split.splits > 1 ? static_cast<size_t>(split.splits * m * n) * sizeof(float) : 0;
  return partials_offset(k, n) + partials;
}

}  // namespace braid::cuda
