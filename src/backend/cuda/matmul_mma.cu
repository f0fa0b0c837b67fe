// The tensor-core product of quantized weights dequantized to f16 in registers with f16 x,
// for batched decode. See Note [Half tensor-core product].
//
// Note [Half tensor-core product]: the kernel before this one multiplied int8 weights by
// int8-quantized x (mma.sync.m16n8k32, as the dp4a matrix-vector kernel does) and paid for
// the quantized x in floating point: every 32-weight block of every (row, column) needs its
// own scales (d_w d_x, m_w s_x) after its product, 16 float instructions a warp per
// mma.sync. ncu counted 11 M instructions for a 4096 x 4096 q4_K product at 64 columns,
// issued at 0.43 a cycle per scheduler. Here the scales go on the weights instead: each
// lane turns its fragment of a block into f16 once for every column tile (w = d q + m, a
// half2 instruction per two weights after an exact integer-to-half trick), x is f16, and
// mma.sync.m16n8k16 (f16 x f16 -> f32) accumulates the whole of k with nothing between
// the products. The numbers are the cuBLAS path's: weights rounded to f16 (for K-quants,
// d * scale rounded once), x rounded to f16, sums in f32.
//
// The order of k. An m16n8k16 sums 16 k slots; lane (g, t) holds slots 2t, 2t+1 (a0, a1;
// b0) and 8+2t, 9+2t (a2, a3; b1). A product's sum is the same for any order of its slots
// as long as A and B agree, so slots 2t, 2t+1, 8+2t, 9+2t take weights 4t..4t+3 of the
// block's first half (MmaWeights' `lo`, one 32-bit word of the 4-bit types) and the
// block's second product the same of 16+4t.. (`hi`). x stays in plain order: a lane reads
// its four values of a column with one 8-byte load.
//
// Note [Staged steps]: nothing is read from global memory in the fragment layout. A lane's
// fragment of a block is 4-byte words of 8 rows, so a warp's load touched 8 cache lines for
// 128 bytes: the int8 kernel, which read its weights that way, kept L1 72% busy, and this
// one was as slow while it did the same (4096 x 4096 q4_K at 64 columns: 33 us int8, 31
// f16 from global memory, 28 staged; at 16 columns 22 against 12). Each step (a
// super-block of every row, and the step's x for every column) is copied to shared memory
// in 16-byte chunks with cp.async, whole rows at a time, two stages deep: the next step's
// copies are in flight while this one multiplies, and the fragments are read from shared
// memory.
//
// A block is 8 warps of 16 rows. At 64 columns a step's x (34 KB) outweighs its q4_K
// weights (18 KB for 128 rows), and every block stages x again: 128 rows halve that
// traffic against 64, and 16 warps an SM hide more of shared memory's latency. 4096 x
// 4096 q4_K at 64 columns: 28.3 us with 4 warps, 19.8 with 8; 4 warps of two 16-row tiles
// each (each B fragment read feeding two mma) gave 21.4.
//
// Note [Whole steps]: ncu on 11008 x 4096 q4_K at 64 columns found the kernel bound by
// instruction latency, not memory: DRAM 10% busy, an instruction every 1.9 cycles a
// scheduler, the top stall a fixed-latency dependency (each block's decode into f16 feeds
// its products). The block and tile loops were unrolled but left early for partial steps
// and tiles, and those exits kept the compiler from decoding block j + 1 while block j's
// products issue. A step of every block and every tile now takes a copy of the loop with
// no exits. On the H200: 4096 x 11008 q4_K at 64 columns 53.2 -> 41.7 us, q6_K 73.1 ->
// 52.3; llama-7b Q4_K_M at 64 sequences 6545 -> 7689 t/s (16 sequences, whose 2 tiles take
// the loop with exits: 3262 -> 3210).
#include "backend/cuda/mma_tiles.cuh"

namespace braid::cuda {
namespace mma {
namespace {

// Bytes between columns of the staged x: a step of f16 (512 bytes) and 32 more, so the
// 8-byte B reads of a half-warp (4 columns x 32 bytes) hit 32 different banks.
constexpr int kColumnStride = kStepBlocks * kQuantBlock * 2 + 32;

// Where the partial sums of the splits live in scratch: after the f16 copy of x.
size_t partials_offset(int64_t k, int64_t n) { return align_up(static_cast<size_t>(k * n) * sizeof(__half)); }

// One stage: a step of the weights of the block's kMmaRows rows, then of x for N columns.
// Row r's bytes of the step are copied in the 16-byte chunks that hold them (its first byte
// `offset` into the first chunk, 0 but for blocks of less alignment) kRowStride bytes apart:
// an odd number of chunks, so the 4-byte fragment reads of rows g = 0..7 (with t) hit 32
// different banks.
template <DType W, int N>
struct Stage {
  static constexpr int kStepBytes = MmaWeights<W>::kStepBytes;
  static constexpr int kMaxOffset = 16 - (row_align<W>() < 16 ? row_align<W>() : 16);
  static constexpr int kChunks = (kMaxOffset + kStepBytes + 15) / 16;
  static constexpr int kRowStride = 16 * (kChunks | 1);
  static constexpr size_t kWeightBytes = static_cast<size_t>(kMmaRows) * kRowStride;
  static constexpr size_t kBytes = kWeightBytes + static_cast<size_t>(N) * kColumnStride;

  uint8_t* base;

  __device__ uint8_t* x() const { return base + kWeightBytes; }

  // Starts the copies of the weights of step `step` (`count` blocks) of the block's rows.
  // Weights are never written by kernels, so this may run before wait_for_producers.
  __device__ void fill_weights(const MatvecArgs& a, int64_t first_row_of_block, int64_t step, int count) const {
    // A legacy type's partial last step holds `count` blocks (a K-quant step is whole).
    const int bytes = count == kStepBlocks ? kStepBytes : count * (kStepBytes / kStepBlocks);
    for (int i = static_cast<int>(threadIdx.x); i < kMmaRows * kChunks; i += kMmaThreads) {
      const int r = i / kChunks, chunk = i % kChunks;
      const uint8_t* from = row_bytes(a, first_row_of_block + r, step);
      const int offset = static_cast<int>(reinterpret_cast<uintptr_t>(from) % 16);
      if (16 * chunk >= offset + bytes) continue;
      copy_async16(base + r * kRowStride + 16 * chunk, from - offset + 16 * chunk);
    }
  }

  // Starts the copies of x's blocks of step `step` (`count` blocks) for every column (zeros
  // for the padded columns of the last tile).
  __device__ void fill_x(const MatvecArgs& a, const __half* x16, int64_t step, int count, int tiles) const {
    constexpr int kChunksPerColumn = kStepBlocks * kQuantBlock * 2 / 16;
    for (int i = static_cast<int>(threadIdx.x); i < tiles * 8 * kChunksPerColumn; i += kMmaThreads) {
      const int c = i / kChunksPerColumn, chunk = i % kChunksPerColumn;
      if (chunk >= count * kQuantBlock * 2 / 16) continue;
      uint8_t* to = x() + c * kColumnStride + 16 * chunk;
      if (c < a.n) {
        copy_async16(to, x16 + c * a.k + step * kStepBlocks * kQuantBlock + 8 * chunk);
      } else {
        *reinterpret_cast<int4*>(to) = make_int4(0, 0, 0, 0);
      }
    }
  }

  // Row `row`'s bytes of step `step` in global memory (rows past the end read the last row;
  // their sums are dropped).
  __device__ static const uint8_t* row_bytes(const MatvecArgs& a, int64_t row, int64_t step) {
    return a.w + min(row, a.m - 1) * a.w_row_stride + step * kStepBytes;
  }
  // The same bytes staged (row r of the block).
  __device__ const uint8_t* staged_row(const MatvecArgs& a, int64_t first_row_of_block, int r, int64_t step) const {
    const uint8_t* from = row_bytes(a, first_row_of_block + r, step);
    return base + r * kRowStride + reinterpret_cast<uintptr_t>(from) % 16;
  }
};

// A lane's A operands of one block of one row, as f16 pairs: weights 4t, 4t+1 (lo01) and
// 4t+2, 4t+3 (lo23) of the first half, the same of the second (hi01, hi23).
struct HalfA {
  uint32_t lo01, lo23, hi01, hi23;
};

// Four signed 8-bit weights q (one 32-bit word) as d q + m in two f16 pairs. Byte q + 128
// under the exponent bits 0x64 is the f16 1024 + 128 + q, exact, and so is subtracting 1152.
__device__ __forceinline__ void to_half4(int q, __half2 d, __half2 m, uint32_t& p01, uint32_t& p23) {
  const uint32_t biased = static_cast<uint32_t>(q) ^ 0x80808080u;
  const __half2 offset = __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480));  // 1152
  const uint32_t h01 = __byte_perm(biased, 0x64646464u, 0x4140);
  const uint32_t h23 = __byte_perm(biased, 0x64646464u, 0x4342);
  const __half2 w01 = __hfma2(__hsub2(*reinterpret_cast<const __half2*>(&h01), offset), d, m);
  const __half2 w23 = __hfma2(__hsub2(*reinterpret_cast<const __half2*>(&h23), offset), d, m);
  p01 = *reinterpret_cast<const uint32_t*>(&w01);
  p23 = *reinterpret_cast<const uint32_t*>(&w23);
}

template <DType W>
__device__ __forceinline__ HalfA to_half(const Frag& f) {
  const __half2 d = __float2half2_rn(f.d);
  const __half2 d_hi = MmaWeights<W>::kSplit ? __float2half2_rn(f.d_hi) : d;
  const __half2 m = MmaWeights<W>::kMin ? __float2half2_rn(f.m) : __float2half2_rn(0.0f);
  HalfA a;
  to_half4(f.lo, d, m, a.lo01, a.lo23);
  to_half4(f.hi, d_hi, m, a.hi01, a.hi23);
  return a;
}

// acc += A B for one k16 slice: A rows g, g + 8 (f16 pairs), B the lane's two pairs of x.
__device__ __forceinline__ void mma_f16(float (&acc)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                        uint2 b) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b.x), "r"(b.y));
}

// Grid row y sums steps [y * steps_per_split, (y + 1) * steps_per_split) of k (Note [Split
// k]); x16 is x in f16, column c at x16 + c * k. Steps are staged two deep in dynamic
// shared memory (Stage<W, N>).
template <DType W, int NT>
__global__ void __launch_bounds__(kMmaThreads, NT <= 8 ? 2 : 1)
    half_mma_kernel(MatvecArgs a, const __half* x16, float* partials, int64_t steps_per_split) {
  constexpr int N = 8 * NT;
  using StageT = Stage<W, N>;
  extern __shared__ __align__(16) uint8_t shared[];
  auto stage_at = [&](int parity) { return StageT{shared + parity * StageT::kBytes}; };
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t block_row = static_cast<int64_t>(blockIdx.x) * kMmaRows;
  const int tiles = (a.n + 7) / 8;  // <= NT
  const int64_t blocks = a.k / kQuantBlock;
  const int64_t begin = blockIdx.y * steps_per_split;
  const int64_t end = min((blocks + kStepBlocks - 1) / kStepBlocks, begin + steps_per_split);
  auto blocks_of = [&](int64_t step) {
    const int64_t left = blocks - step * kStepBlocks;
    return left < kStepBlocks ? static_cast<int>(left) : kStepBlocks;
  };

  if (begin < end) stage_at(0).fill_weights(a, block_row, begin, blocks_of(begin));
  wait_for_producers();
  if (begin < end) {
    stage_at(0).fill_x(a, x16, begin, blocks_of(begin), tiles);
    copy_async_commit();
  }

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;
  }
  for (int64_t step = begin; step < end; ++step) {
    const int count = blocks_of(step);
    const int parity = static_cast<int>((step - begin) % 2);
    if (step + 1 < end) {
      // The other stage was last read in the step before, behind that step's final barrier.
      const StageT next = stage_at(1 - parity);
      next.fill_weights(a, block_row, step + 1, blocks_of(step + 1));
      next.fill_x(a, x16, step + 1, blocks_of(step + 1), tiles);
      copy_async_commit();
      copy_async_wait<1>();
    } else {
      copy_async_wait<0>();
    }
    __syncthreads();  // this step, copied by every thread, is in shared memory
    const StageT stage = stage_at(parity);
    const uint8_t* row_g = stage.staged_row(a, block_row, 16 * warp + g, step);
    const uint8_t* row_g8 = stage.staged_row(a, block_row, 16 * warp + g + 8, step);
    // `whole`: every block of the step and every tile, known at compile time, so that no
    // early exit keeps the compiler from interleaving one block's decoding with the last
    // one's products (Note [Whole steps]).
    auto multiply = [&](auto whole) {
#pragma unroll
      for (int j = 0; j < kStepBlocks; ++j) {
        if (!decltype(whole)::value && j >= count) break;
        const HalfA w0 = to_half<W>(MmaWeights<W>::load(row_g, j, t));
        const HalfA w1 = to_half<W>(MmaWeights<W>::load(row_g8, j, t));
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          if (!decltype(whole)::value && nt >= tiles) break;
          const uint8_t* column = stage.x() + (8 * nt + g) * kColumnStride + 64 * j + 8 * t;
          mma_f16(acc[nt], w0.lo01, w1.lo01, w0.lo23, w1.lo23, *reinterpret_cast<const uint2*>(column));
          mma_f16(acc[nt], w0.hi01, w1.hi01, w0.hi23, w1.hi23, *reinterpret_cast<const uint2*>(column + 32));
        }
      }
    };
    if (count == kStepBlocks && tiles == NT) {
      multiply(std::true_type{});
    } else {
      multiply(std::false_type{});
    }
    __syncthreads();  // every read of this stage is done before it is refilled
  }
  store_tiles<NT>(acc, a, partials, block_row + 16 * warp, tiles, g, t);
}

// The dynamic shared memory of half_mma_kernel<W, NT>: two stages.
template <DType W, int NT>
constexpr size_t kSharedBytes = 2 * Stage<W, 8 * NT>::kBytes;
// q8_0's step is the longest: every type at every width fits an H100/H200 block (227 KB).
static_assert(kSharedBytes<DType::Q8_0, 16> <= 227 * 1024);

template <DType W, int NT>
void launch_tiles(const MatvecArgs& a, const __half* x16, float* partials, const KSplit& split, cudaStream_t stream) {
  constexpr size_t bytes = kSharedBytes<W, NT>;
  // At every launch: the attribute is the current device's (tensor-parallel ranks run on others).
  const cudaError_t configured =
      cudaFuncSetAttribute(half_mma_kernel<W, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (configured != cudaSuccess) throw Error(std::string("f16 tensor-core product: ") + cudaGetErrorString(configured));
  const dim3 grid(grid_size(a.m, kMmaRows), static_cast<unsigned>(split.splits));
  launch_kernel(half_mma_kernel<W, NT>, grid, kMmaThreads, bytes, stream, a, x16, partials, split.steps_per_split);
}

// Calls f(std::integral_constant<int, NT>{}) with the kernel width (tiles of 8 columns) that
// takes n columns.
template <typename F>
void with_width(int64_t n, F&& f) {
  const int64_t tiles = (n + 7) / 8;
  if (tiles <= 4) {
    f(std::integral_constant<int, 4>{});
  } else if (tiles <= 8) {
    f(std::integral_constant<int, 8>{});
  } else {
    f(std::integral_constant<int, 16>{});
  }
}

template <DType W>
void launch_typed(const MatvecArgs& a, const __half* x16, float* partials, const KSplit& split,
                  cudaStream_t stream) {
  with_width(a.n, [&](auto nt) { launch_tiles<W, decltype(nt)::value>(a, x16, partials, split, stream); });
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

// a.out = the sum of the partials of `splits` splits of k in split order, plus a.plus.
void launch_sum_splits(const NodeLaunch& launch, const float* partials, int64_t splits, const MatvecArgs& a) {
  const int64_t count = a.m * a.n;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 65535));
  launch_kernel(sum_splits_kernel, blocks, 256, 0, launch.ctx.stream, partials, splits, count, a.plus, a.out);
}

}  // namespace
}  // namespace mma

void launch_half_mma(const NodeLaunch& launch, DType w_type, const MatvecArgs& args) {
  using namespace mma;
  BRAID_ASSERT(args.ids == nullptr && args.n > 0 && args.n <= kMmaMaxColumns && int8_matvec_ok(w_type, args));
  if (args.m == 0) return;
  if (args.m > INT32_MAX) throw Error(launch.label() + ": too many rows");
  launch.require_scratch(half_mma_scratch_bytes(args.k, args.m, args.n));
  const KSplit split = k_split(args.k, args.m, args.n);
  if (split.splits > 65535) throw Error(launch.label() + ": rows too long");  // grid rows
  auto* scratch = static_cast<uint8_t*>(launch.ctx.scratch);
  auto* x16 = reinterpret_cast<__half*>(scratch);
  convert_columns(launch, w_type, args.x, args.x_col_stride, args.k, args.n, x16);
  auto* partials = reinterpret_cast<float*>(scratch + partials_offset(args.k, args.n));
  const bool typed = with_weight_type(w_type, [&](auto w) {
    launch_typed<decltype(w)::value>(args, x16, partials, split, launch.ctx.stream);
  });
  if (!typed) throw Error(launch.label() + ": no f16 tensor-core kernel for this weight type");
  if (split.splits > 1) launch_sum_splits(launch, partials, split.splits, args);
  launch.check_launch();
}

bool half_mma_fits(DType w_type, int64_t n) {
  using namespace mma;
  size_t bytes = 0;
  with_weight_type(w_type, [&](auto w) {
    with_width(n, [&](auto nt) { bytes = kSharedBytes<decltype(w)::value, decltype(nt)::value>; });
  });
  int device = 0, most = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();  // (no device: the launch, if any, reports it)
    return true;
  }
  return bytes <= static_cast<size_t>(most);
}

size_t half_mma_scratch_bytes(int64_t k, int64_t m, int64_t n) {
  return mma::partials_offset(k, n) + mma::partials_bytes(k, m, n);
}

}  // namespace braid::cuda
