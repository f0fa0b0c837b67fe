// The int8 matrix-vector product for q8_0, q4_*, q5_*, q4_K, q5_K and q6_K weights (batch <= 8,
// and mul_mat_id); the weight side of each type is in int8_dot.cuh.
//
// Note [Int8 activations]: dequantizing every weight to f32 and multiplying it with f32
// x costs several instructions per weight element and reads four bytes of x per element,
// which made the quantized kernels compute- and L1-bound far below memory bandwidth. As
// llama.cpp's mmvq does, x is instead quantized once per node (quantize_columns_kernel)
// to blocks of 32 int8 values q_x with one f32 scale d_x (x ~= d_x * q_x) and the sum
// s_x = d_x * sum(q_x), into the stream's scratch. A weight block (d_w, q_w) then meets
// a block of x through __dp4a, four products per instruction, exact in int32:
//
//   q8_0:  sum(w * x) ~= d_w * d_x * dot(q_w, q_x)
//   q4_0:  w = d_w * (n - 8), n the nibble:  d_w * (d_x * dot(n, q_x) - 8 * s_x)
//   q4_1:  w = d_w * n + m:                  d_w * d_x * dot(n, q_x) + m * s_x
//
// The cost is the rounding of x to 8 bits (per-block scale, so about 2^-8 relative to
// each block's largest value): the normalized squared error against the f32 reference is
// around 1e-5 for random data (the op tests allow 2e-4).
//
// Several threads share one weight block (kThreads: 4 for q8_0, 8 weights each; 2 for q4_*
// and q5_*, 8 bytes of nibbles = 16 values each; 8 for a K-quant super-block, 32 weights
// each, Note [K-quant units]), so a warp reads a contiguous span of the row per load
// instruction. Blocks are 34 and 18 bytes, so q8_0 and q4_0 are read as
// 16-bit words (only 2-byte alignment is guaranteed) and paired into 32-bit words; q4_1
// blocks (20 bytes) are 4-byte aligned and read as 32-bit words. For q4_*, the quantized
// x of a block is stored in "nibble order" (elements 0-7, 16-23, 8-15, 24-31), so the 16
// x values that meet one thread's 8 nibble bytes are one aligned 16-byte load.
//
// The int32 dot products become floats without I2F (a quarter of the FMA rate on sm_90,
// see Note [Integer to float]): the __dp4a chain starts from the bit pattern of 1.5 * 2^23
// instead of 0, so for |sum| < 2^22 its result read as a float is exactly 1.5 * 2^23 + sum.
//
// Two rows per group (every type but q8_0, and every type at batch > 1) reuse each loaded x block.
//
// Past 8 columns the weights meet x on tensor cores instead (matmul_mma.cu), in f16.
// Every sum is reduced in a fixed order (warp butterflies, then the warps of a row in
// index order).
#include "backend/cuda/int8_dot.cuh"
#include "backend/cuda/matmul.cuh"
#include "backend/cuda/quantize_x.cuh"

namespace braid::cuda {
namespace {

constexpr int kBlockThreads = 128;

// Note [Int8 product registers]: the one-column q4_K and q6_K kernels (two rows a group)
// leave ptxas 64-72 registers a thread, and 72 let only 7 blocks of 128 threads share a
// multiprocessor. These kernels wait on global loads most of their time (ncu, bench/NOTES.md
// section 19), so the eighth block's loads in flight are worth more than the registers:
// held to 64 (8 blocks, no spills on sm_90, `nvcc --resource-usage`), llama-7b Q4_K_M decode
// ran 2.3% faster on the H200. The other types and column counts are left alone: their
// counts are lower, or the cap would spill.
constexpr int kBlocksAt64Registers = 8;
constexpr int kQuantizeThreads = 256;
constexpr size_t kScratchAlignment = 256;

size_t align_up(size_t bytes) { return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment; }

// Where the quantized x lives in scratch (Int8Columns, matmul.cuh).
Int8Columns int8_columns(void* scratch, int64_t k, int64_t columns) {
  auto* base = static_cast<uint8_t*>(scratch);
  return {reinterpret_cast<const int8_t*>(base),
          reinterpret_cast<const float2*>(base + align_up(static_cast<size_t>(k * columns)))};
}

// One thread per 4 elements, 8 threads per block of 32. k is a multiple of 32, so a
// group of 8 lanes is either all inside the column or all past its end; all lanes
// take part in the shuffles.
template <bool kNibbleOrder>
__global__ void __launch_bounds__(kQuantizeThreads)
    quantize_columns_kernel(const float* x, int64_t x_col_stride, int64_t k, int8_t* q, float2* ds) {
  wait_for_producers();
  const int64_t column = blockIdx.y;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kQuantizeThreads + threadIdx.x) * 4;
  const bool active = first < k;
  const float* xc = x + column * x_col_stride + first;
  float v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) v[i] = active ? xc[i] : 0.0f;
  int qi[4];
  const float2 block_ds = quantize_x_block<4>(v, qi);
  if (!active) return;
  uint32_t packed = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) packed |= (static_cast<uint32_t>(qi[i]) & 0xffu) << (8 * i);
  const int64_t block = first / kQuantBlock;
  const int j = static_cast<int>(first % kQuantBlock);
  const int position = kNibbleOrder ? nibble_order_position(j) : j;
  *reinterpret_cast<uint32_t*>(q + column * k + block * kQuantBlock + position) = packed;
  if (j == 0) ds[column * (k / kQuantBlock) + block] = block_ds;
}

// kRowThreads threads (a warp, or the whole block) own kRows consecutive rows; each
// thread walks its part of every kRowThreads / kThreads-th unit of those rows, kUnroll
// units a step with all their loads issued before the first use. The first
// step's weights are loaded before wait_for_producers (Note [Weight prefetch]), except
// for mul_mat_id, whose expert is read from device memory.
//
// kMinBlocks is __launch_bounds__'s minimum of resident blocks: 0 leaves the register count
// to ptxas, kBlocksAt64Registers holds it to 64 (Note [Int8 product registers]).
template <DType W, int NC, int kRows, int kRowThreads, int kMinBlocks>
__global__ void __launch_bounds__(kBlockThreads, kMinBlocks) int8_matvec_kernel(MatvecArgs a, Int8Columns x) {
  using Dot = Int8Dot<W>;
  constexpr int kUnroll = 2;
  constexpr int kGroups = kBlockThreads / kRowThreads;
  constexpr int kRowWarps = kRowThreads / 32;
  constexpr int kStride = kRowThreads / Dot::kThreads;  // weight units a step covers
  const int thread = threadIdx.x % kRowThreads;
  const int part = thread % Dot::kThreads;
  const int64_t first_row = (static_cast<int64_t>(blockIdx.x) * kGroups + threadIdx.x / kRowThreads) * kRows;
  if (first_row >= a.m) return;  // whole groups: kRowThreads is a multiple of 32
  const int64_t units = a.k / Dot::kUnit;
  const int64_t x_blocks = a.k / kQuantBlock;  // (d_x, s_x) pairs of a column
  // A row past the end reads the last row; its sums are dropped.
  auto row_of = [&](const uint8_t* w, int r) { return w + min(first_row + r, a.m - 1) * a.w_row_stride; };
  const int64_t first_unit = thread / Dot::kThreads;
  const bool prefetch = a.ids == nullptr && first_unit + (kUnroll - 1) * kStride < units;
  typename Dot::Part first[kUnroll][kRows];
  if (prefetch) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        first[u][r] = Dot::load(row_of(a.w, r), first_unit + u * kStride, part);
      }
    }
  }
  wait_for_producers();

  const uint8_t* w = a.w;
  const int8_t* xq = x.q;
  const float2* xds = x.ds;
  float* out = a.out;
  int columns = a.n;  // <= NC without ids
  if (a.ids != nullptr) {  // mul_mat_id: grid row y is the token, its expert comes from device memory
    const int64_t token = blockIdx.y;
    const int expert = a.ids[token * a.ids_col_stride + a.slot];
    xq += token * a.k;
    xds += token * x_blocks;
    out += token * a.m;
    columns = 1;
    if (expert < 0 || expert >= a.experts) {  // a bad id poisons the result instead of reading out of bounds
      if (thread < kRows && first_row + thread < a.m) out[first_row + thread] = __int_as_float(0x7fc00000);
      return;
    }
    w += static_cast<int64_t>(expert) * a.w_expert_stride;
  }
  const uint8_t* rows[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) rows[r] = row_of(w, r);

  float acc[kRows][NC];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int c = 0; c < NC; ++c) acc[r][c] = 0.0f;
  }
  auto accumulate = [&](const typename Dot::Part(&wp)[kRows], int64_t unit) {
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      if (c == 0 || c < columns) {  // columns >= 1: column 0's loads need no branch
        const typename Dot::X xv = Dot::load_x(xq + c * a.k, xds + c * x_blocks, unit, part);
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r][c] = Dot::add(acc[r][c], wp[r], xv);
      }
    }
  };

  int64_t unit = first_unit;
  if (prefetch) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) accumulate(first[u], unit + u * kStride);
    unit += kUnroll * kStride;
  }
  for (; unit + (kUnroll - 1) * kStride < units; unit += kUnroll * kStride) {
    typename Dot::Part wp[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) wp[u][r] = Dot::load(rows[r], unit + u * kStride, part);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) accumulate(wp[u], unit + u * kStride);
  }
  for (; unit < units; unit += kStride) {
    typename Dot::Part wp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wp[r] = Dot::load(rows[r], unit, part);
    accumulate(wp, unit);
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int c = 0; c < NC; ++c) acc[r][c] = warp_sum(acc[r][c]);
  }
  if constexpr (kRowWarps == 1) {
    if (thread == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          if (c < columns && first_row + r < a.m) {
            out[c * a.m + first_row + r] = with_plus(a, c * a.m + first_row + r, acc[r][c]);
          }
        }
      }
    }
  } else {
    __shared__ float partial[kRowWarps][kRows * NC];  // one group per block here
    if (thread % 32 == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int c = 0; c < NC; ++c) partial[thread / 32][r * NC + c] = acc[r][c];
      }
    }
    __syncthreads();
    if (thread < kRows * NC) {
      const int r = thread / NC;
      const int c = thread % NC;
      if (c < columns && first_row + r < a.m) {
        float sum = 0.0f;
#pragma unroll
        for (int w2 = 0; w2 < kRowWarps; ++w2) sum += partial[w2][thread];
        out[c * a.m + first_row + r] = with_plus(a, c * a.m + first_row + r, sum);
      }
    }
  }
}

template <DType W, int NC, int kRows, int kMinBlocks = 0>
void launch_shaped(const MatvecArgs& a, const Int8Columns& x, unsigned tokens, cudaStream_t stream) {
  // Short rows (at most two weight blocks a thread) get a warp each, and so do rows of up
  // to eight when there are many of them (measured on the H100: 2048 x 8192 and 4096 x
  // 32000 gain 20-35%, 2048 x 2048 loses); other rows a whole block, which keeps more
  // loads in flight per row.
  const int64_t parts = a.k / Int8Dot<W>::kUnit * Int8Dot<W>::kThreads;
  if (parts <= 64 || (parts <= 256 && a.m >= 8192)) {
    const dim3 grid(grid_size(a.m, kBlockThreads / 32 * kRows), tokens);
    launch_kernel(int8_matvec_kernel<W, NC, kRows, 32, kMinBlocks>, grid, kBlockThreads, 0, stream, a, x);
  } else {
    const dim3 grid(grid_size(a.m, kRows), tokens);
    launch_kernel(int8_matvec_kernel<W, NC, kRows, kBlockThreads, kMinBlocks>, grid, kBlockThreads, 0, stream, a, x);
  }
}

// The product on x quantized in scratch (every token's column with ids), on the stream of
// the quantization, so it sees the finished x.
template <DType W>
void launch_typed(const MatvecArgs& a, const Int8Columns& x, unsigned tokens, cudaStream_t stream) {
  BRAID_ASSERT(a.ids != nullptr || a.n <= 8);
  const int columns = a.ids != nullptr ? 1 : a.n;
  // One column: two rows a group (each x block loaded serves both; on the H100's llama
  // shapes up to 40% faster for 4-bit weights, none slower; on the H200 10-17% for q4_K and
  // q6_K on 2048 x 32000 and 11008 x 4096), one for q8_0, where two were no faster; q4_K
  // and q6_K held to 64 registers (Note [Int8 product registers]).
  if (columns <= 1) {
    if constexpr (W == DType::Q4_K || W == DType::Q6_K) {
      launch_shaped<W, 1, 2, kBlocksAt64Registers>(a, x, tokens, stream);
    } else if constexpr (W == DType::Q8_0) {
      launch_shaped<W, 1, 1>(a, x, tokens, stream);
    } else {
      launch_shaped<W, 1, 2>(a, x, tokens, stream);
    }
  } else if (columns <= 2) {
    launch_shaped<W, 2, 2>(a, x, tokens, stream);
  } else if (columns <= 4) {
    launch_shaped<W, 4, 2>(a, x, tokens, stream);
  } else {
    launch_shaped<W, 8, 2>(a, x, tokens, stream);
  }
}

// Quantizes x (every token's column with ids), then the product; or the product alone on
// the copy of x its producer quantized (Note [Shared int8 activations]).
template <DType W>
void launch_product(const NodeLaunch& launch, const MatvecArgs& a, unsigned tokens) {
  Int8Columns x;
  if (launch.x_int8 != nullptr) {
    const SharedInt8& copy = *launch.x_int8;
    BRAID_ASSERT(a.ids == nullptr && copy.nibble_order == Int8Dot<W>::kNibbleOrder && copy.k == a.k &&
                 copy.columns == a.n);
    x = int8_columns(copy.data, a.k, a.n);
  } else {
    x = quantize_columns(launch, a.x, a.x_col_stride, a.k, a.n, Int8Dot<W>::kNibbleOrder);
  }
  launch_typed<W>(a, x, tokens, launch.ctx.stream);
}

}  // namespace

bool int8_matvec_type(DType w_type) {
  switch (w_type) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return true;
    default: return false;
  }
}

bool int8_matvec_ok(DType w_type, const MatvecArgs& a) {
  if (!int8_matvec_type(w_type) || a.k <= 0 || a.k % traits(w_type).block_elements != 0) return false;
  // The widest loads each block size allows (int8_dot.cuh's kAlign).
  int64_t need = 2;
  switch (w_type) {
    case DType::Q4_1: need = Int8Dot<DType::Q4_1>::kAlign; break;
    case DType::Q5_1: need = Int8Dot<DType::Q5_1>::kAlign; break;
    case DType::Q4_K: need = Int8Dot<DType::Q4_K>::kAlign; break;
    case DType::Q5_K: need = Int8Dot<DType::Q5_K>::kAlign; break;
    default: break;
  }
  return reinterpret_cast<uintptr_t>(a.w) % need == 0 && a.w_row_stride % need == 0 &&
         a.w_expert_stride % need == 0;
}

size_t int8_matvec_scratch_bytes(int64_t k, int64_t columns) {
  return align_up(static_cast<size_t>(k * columns)) +
         static_cast<size_t>(columns * (k / kQuantBlock)) * sizeof(float2);
}

// Quantizes `columns` columns of x into `to` (int8_matvec_scratch_bytes(k, columns) bytes).
static Int8Columns quantize_columns_to(const NodeLaunch& launch, const float* x, int64_t x_col_stride, int64_t k,
                                int64_t columns, bool nibble_order, void* to) {
  if (columns > 65535) throw Error(launch.label() + ": more than 65535 columns");  // grid rows of the quantizer
  const Int8Columns out = int8_columns(to, k, columns);
  const dim3 grid(grid_size(k / 4, kQuantizeThreads), static_cast<unsigned>(columns));
  auto* q = static_cast<int8_t*>(to);
  auto* ds = const_cast<float2*>(out.ds);
  cudaStream_t stream = launch.ctx.stream;
  if (nibble_order) {
    launch_kernel(quantize_columns_kernel<true>, grid, kQuantizeThreads, 0, stream, x, x_col_stride, k, q, ds);
  } else {
    launch_kernel(quantize_columns_kernel<false>, grid, kQuantizeThreads, 0, stream, x, x_col_stride, k, q, ds);
  }
  return out;
}

Int8Columns quantize_columns(const NodeLaunch& launch, const float* x, int64_t x_col_stride, int64_t k,
                             int64_t columns, bool nibble_order) {
  launch.require_scratch(int8_matvec_scratch_bytes(k, columns));
  return quantize_columns_to(launch, x, x_col_stride, k, columns, nibble_order, launch.ctx.scratch);
}

void write_shared_int8(const NodeLaunch& launch, const SharedInt8& copy) {
  const Tensor& t = launch.node;
  BRAID_ASSERT(t.type == DType::F32 && t.is_contiguous() && copy.k % kQuantBlock == 0 &&
               copy.k * copy.columns == t.elements());
  quantize_columns_to(launch, reinterpret_cast<const float*>(launch.out_data()), copy.k, copy.k, copy.columns,
                      copy.nibble_order, copy.data);
  launch.check_launch();
}

Int8Out int8_out(const SharedInt8* copy) {
  if (copy == nullptr) return {};
  const Int8Columns c = int8_columns(copy->data, copy->k, copy->columns);
  return {const_cast<int8_t*>(c.q), const_cast<float2*>(c.ds), copy->k, copy->nibble_order};
}

bool int8_nibble_order(DType w_type) {
  switch (w_type) {
    case DType::Q4_0: return Int8Dot<DType::Q4_0>::kNibbleOrder;
    case DType::Q4_1: return Int8Dot<DType::Q4_1>::kNibbleOrder;
    case DType::Q5_0: return Int8Dot<DType::Q5_0>::kNibbleOrder;
    case DType::Q5_1: return Int8Dot<DType::Q5_1>::kNibbleOrder;
    default: return false;  // q8_0 and the K-quants
  }
}

void launch_int8_matvec(const NodeLaunch& launch, DType w_type, const MatvecArgs& args, unsigned tokens) {
  switch (w_type) {
    case DType::Q8_0: launch_product<DType::Q8_0>(launch, args, tokens); break;
    case DType::Q4_0: launch_product<DType::Q4_0>(launch, args, tokens); break;
    case DType::Q4_1: launch_product<DType::Q4_1>(launch, args, tokens); break;
    case DType::Q5_0: launch_product<DType::Q5_0>(launch, args, tokens); break;
    case DType::Q5_1: launch_product<DType::Q5_1>(launch, args, tokens); break;
    case DType::Q4_K: launch_product<DType::Q4_K>(launch, args, tokens); break;
    case DType::Q5_K: launch_product<DType::Q5_K>(launch, args, tokens); break;
    case DType::Q6_K: launch_product<DType::Q6_K>(launch, args, tokens); break;
    default: throw Error(launch.label() + ": no int8 matrix-vector kernel for this weight type");
  }
}

}  // namespace braid::cuda
