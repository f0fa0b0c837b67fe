// CUDA mul_mat, mul_mat_id and attention against the CPU reference: every weight type
// at batch 1, 4 (matrix-vector kernel) and 64 (int8 tensor cores or cuBLAS), strided and misaligned operands,
// grouped-query attention at several positions in both the split (flash-decoding) and
// the single-chunk (prompt) form, and one captured graph replayed at new positions.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cmath>

#include "cuda_op_runner.h"

namespace braid {
namespace {

using test::CudaContext;
using test::OneNodeRunner;

using test::kWeightTypes;

// The int8 matrix-vector kernels (q8_0, q4_0, q4_1) round x to int8 with one scale per
// block of 32: the error of an element is uniform in +-d/2 with d = max|x| / 127, so for
// x uniform in [-1, 1] the output's normalized squared error is about
// (0.97 / 127)^2 / 12 / (1/3) = 1.5e-5, whatever the weights. 2e-4 leaves a margin of
// ten for small rows; a wrong nibble, offset or scale gives 1e-2 and more.
constexpr double kInt8Activations = 2e-4;

// Bounds by path. The f32/f16/bf16 matrix-vector kernel uses the weights exactly as the
// CPU does and differs only in f32 accumulation; the cuBLAS path: test::cublas_threshold.
// The types the int8 kernels read: matrix-vector (matvec_int8.cu) up to 8 columns, then the
// tensor-core product (matmul_mma.cu, weights and x in f16: within the int8 bound) up to
// kMmaMaxColumns.
constexpr int64_t kMmaMaxColumns = 128;  // matmul.cuh
bool int8_kernel_type(DType type) {
  switch (type) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return true;
    default: return false;
  }
}

double mul_mat_threshold(DType type, int64_t n) {
  const bool int8_kernels = n <= 8 || (int8_kernel_type(type) && n <= kMmaMaxColumns);
  if (traits(type).quantized && int8_kernels) return kInt8Activations;
  if (n <= 4) return 1e-9;  // (16- and 32-bit weights take cuBLAS from 5 columns)
  return test::cublas_threshold(type);
}

// x whose blocks of 32 have very different magnitudes (one scale per block), and an
// all-zero block (scale 0).
std::vector<float> blocks_of_mixed_magnitude(int64_t k, int64_t n, uint32_t seed) {
  std::vector<float> x = test::random_floats(static_cast<size_t>(k * n), seed);
  const float scales[] = {1.0f, 1e-3f, 1e3f, 0.0f, 0.25f};
  for (size_t i = 0; i < x.size(); ++i) x[i] *= scales[(i / 32) % 5];
  return x;
}

TEST(CudaMulMat, EveryWeightTypeAtBatch1_4_6_64) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : kWeightTypes) {
    for (int64_t n : {1, 4, 6, 64}) {
      Graph g;
      const TensorId w = g.weight("w", type, {512, 136, 1, 1});
      const TensorId x = g.input("x", DType::F32, {512, n, 1, 1});
      OneNodeRunner runner(g, ops::mul_mat(g, w, x), 201);
      SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n));
      test::expect_matches_reference(runner, mul_mat_threshold(type, n), cuda);
    }
  }
}

// mul_mat_add on every kernel: f16 (vector loads), q4_0 and q8_0 (int8 matrix-vector, then
// tensor cores at 64 columns), f32 rows of odd length (generic kernel), and cuBLAS, then
// the addition (f16 and f32 at 64 columns, every type at 160).
TEST(CudaMulMat, MulMatAddOnEveryPath) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F16, DType::Q4_0, DType::Q8_0, DType::F32}) {
    const int64_t k = type == DType::F32 ? 301 : 512;
    for (int64_t n : {1, 3, 64, 160}) {
      Graph g;
      const TensorId w = g.weight("w", type, {k, 136, 1, 1});
      const TensorId x = g.input("x", DType::F32, {k, n, 1, 1});
      const TensorId plus = g.input("plus", DType::F32, {136, n, 1, 1});
      OneNodeRunner runner(g, ops::mul_mat_add(g, w, x, plus), 205);
      SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n));
      test::expect_matches_reference(runner, mul_mat_threshold(type, n), cuda);
    }
  }
}

TEST(CudaMulMat, OddColumnCountsUseTheRightKernelWidth) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int64_t n : {2, 3, 5, 7, 8, 9}) {
    Graph g;
    const TensorId w = g.weight("w", DType::Q4_0, {256, 40, 1, 1});
    const TensorId x = g.input("x", DType::F32, {256, n, 1, 1});
    OneNodeRunner runner(g, ops::mul_mat(g, w, x), 211);
    SCOPED_TRACE(n);
    test::expect_matches_reference(runner, mul_mat_threshold(DType::Q4_0, n), cuda);
  }
}

// Rows whose length is no multiple of the 16-byte chunk (tail loop of the fast kernel),
// a strided weight view, and x columns that start one float in (the generic kernel; at
// 70 columns, x's conversion to 16 bits one element at a time).
TEST(CudaMulMat, StridedAndMisalignedOperands) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    for (int64_t n : {1, 3, 12, 70}) {
      for (size_t x_offset : {size_t{0}, size_t{4}}) {
        const int64_t k = type == DType::F32 ? 102 : type == DType::F16 ? 100 : 96;  // tails of 2, 4, 0
        Graph g;
        const TensorId w_full = g.weight("w", type, {k, 70, 1, 1});
        const Tensor& wf = g[w_full];
        // Every other row, from row 2: rows stay 16-byte aligned where the type allows.
        const TensorId w =
            ops::view(g, w_full, {k, 33, 1, 1}, {wf.nb[0], 2 * wf.nb[1], wf.nb[2], wf.nb[3]}, 2 * wf.nb[1]);
        const TensorId x_full = g.input("x", DType::F32, {(k + 7) / 4 * 4, n, 1, 1});  // 16-byte column stride
        const Tensor& xf = g[x_full];
        const TensorId x = ops::view(g, x_full, {k, n, 1, 1}, xf.nb, x_offset);
        OneNodeRunner runner(g, ops::mul_mat(g, w, x), 221);
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + " x offset " + std::to_string(x_offset));
        test::expect_matches_reference(runner, mul_mat_threshold(type, n), cuda);
      }
    }
  }
}

// Past 8 columns the int8 types take the tensor-core product (matmul_mma.cu): every
// type, column counts around its tiles of 8 (and 128, the last it takes), 200 rows (a
// partial last tile of 64), rows of several steps of 8 blocks (k split over several
// thread blocks, Note [Split k]; 544 = 17 blocks ends on a partial step), x blocks of
// very different magnitudes (and all-zero ones), mul_mat_add with one and with several
// splits, and x columns further apart than k.
TEST(CudaMulMat, Int8TensorCoresOnEveryTypeFrom9To128Columns) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  constexpr int64_t m = 200;
  for (DType type : kWeightTypes) {
    if (!int8_kernel_type(type)) continue;
    const bool k_quant = traits(type).block_elements == 256;
    for (int64_t k : {k_quant ? int64_t{768} : int64_t{544}, int64_t{2816}}) {
      for (int64_t n : {9, 16, 31, 32, 33, 64, 100, 128}) {
        Graph g;
        const TensorId w = g.weight("w", type, {k, m, 1, 1});
        const TensorId x = g.input("x", DType::F32, {k, n, 1, 1});
        const TensorId node = ops::mul_mat(g, w, x);
        ASSERT_FALSE(cuda::uses_cublas(g, node));
        OneNodeRunner runner(g, node, 271);
        runner.set_floats(x, blocks_of_mixed_magnitude(k, n, 272));
        SCOPED_TRACE(std::string(name(type)) + " k=" + std::to_string(k) + " n=" + std::to_string(n));
        test::expect_matches_reference(runner, kInt8Activations, cuda);
      }
    }
    for (int64_t n : {17, 100}) {  // mul_mat_add, and x columns k + 32 floats apart, one float in
      for (bool add : {false, true}) {
        const int64_t k = k_quant ? 512 : 256;
        Graph g;
        const TensorId w = g.weight("w", type, {k, m, 1, 1});
        const TensorId x_full = g.input("x", DType::F32, {k + 32, n, 1, 1});
        const TensorId x = ops::view(g, x_full, {k, n, 1, 1}, g[x_full].nb, add ? size_t{0} : size_t{4});
        const TensorId node = add ? ops::mul_mat_add(g, w, x, g.input("plus", DType::F32, {m, n, 1, 1}))
                                  : ops::mul_mat(g, w, x);
        ASSERT_FALSE(cuda::uses_cublas(g, node));
        OneNodeRunner runner(g, node, 281);
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + (add ? " add" : " strided x"));
        test::expect_matches_reference(runner, kInt8Activations, cuda);
      }
    }
  }
}

// The tensor-core product takes kMatvecMaxColumns + 1 to kMmaMaxColumns columns of
// the int8 types; more columns, and the other quantized types, go to cuBLAS. (Decided from
// the graph alone: runs without a GPU.)
TEST(CudaMulMat, TensorCoresTakeUpTo128Columns) {
  for (DType type : {DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q2_K}) {
    for (int64_t n : {9, 128, 129}) {
      Graph g;
      const TensorId node =
          ops::mul_mat(g, g.weight("w", type, {512, 64, 1, 1}), g.input("x", DType::F32, {512, n, 1, 1}));
      const bool tensor_cores = int8_kernel_type(type) && n <= kMmaMaxColumns;
      EXPECT_EQ(cuda::uses_cublas(g, node), !tensor_cores) << name(type) << " n=" << n;
      if (tensor_cores) {  // the f16 copy of x
        EXPECT_GE(cuda::scratch_bytes(g, node), static_cast<size_t>(512 * n * 2)) << name(type);
      }
    }
  }
}

// Rows long enough for the block-per-row int8 kernel, with a partial last step (88 blocks),
// an odd row count (the two-row groups of batch > 1 end on half a group), every kernel width.
TEST(CudaMulMat, Int8KernelsOnLongRowsAtEveryWidth) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  constexpr int64_t k = 2816, m = 37;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    for (int64_t n : {1, 2, 3, 5, 8}) {
      Graph g;
      const TensorId w = g.weight("w", type, {k, m, 1, 1});
      const TensorId x = g.input("x", DType::F32, {k, n, 1, 1});
      OneNodeRunner runner(g, ops::mul_mat(g, w, x), 251);
      runner.set_floats(x, blocks_of_mixed_magnitude(k, n, 252));
      SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n));
      test::expect_matches_reference(runner, kInt8Activations, cuda);
    }
  }
}

// The int8 kernels quantize x into the stream's scratch: a node reports it, and its
// launch refuses to run without it.
TEST(CudaMulMat, Int8KernelsNeedTheScratchTheyReport) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K}) {
    for (int64_t n : {3, 64}) {  // matrix-vector, tensor cores
      Graph g;
      const TensorId w = g.weight("w", type, {4096, 8, 1, 1});
      const TensorId x = g.input("x", DType::F32, {4096, n, 1, 1});
      const TensorId node = ops::mul_mat(g, w, x);
      EXPECT_GE(cuda::scratch_bytes(g, node), static_cast<size_t>(4096 * n + 128 * n * 8)) << name(type);
      cuda::DeviceAddresses memory(static_cast<size_t>(g.tensor_count()), nullptr);
      cuda::StreamContext ctx{cuda.stream(), cuda.cublas(), nullptr, 0};
      EXPECT_THROW(cuda::launch(g, node, memory, ctx), Error) << name(type) << " n=" << n;
    }
  }
  Graph g;  // f16 weights need none
  const TensorId node = ops::mul_mat(g, g.weight("w", DType::F16, {4096, 8, 1, 1}), g.input("x", DType::F32, {4096, 3, 1, 1}));
  EXPECT_EQ(cuda::scratch_bytes(g, node), 0u);
}

// A quantized matrix larger than one dequantized slice (128 MiB of f16) on the cuBLAS path:
// two slices along k, the second added to the first's product (gemm.cu, Note [Slices
// along k]); q2_K has no int8 kernel, so 9 columns take cuBLAS.
TEST(CudaMulMat, QuantizedGemmSpansSeveralSlices) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  Graph g;
  const TensorId w = g.weight("w", DType::Q2_K, {8192, 8320, 1, 1});
  const TensorId x = g.input("x", DType::F32, {8192, 9, 1, 1});
  const TensorId node = ops::mul_mat(g, w, x);
  ASSERT_TRUE(cuda::uses_cublas(g, node));
  OneNodeRunner runner(g, node, 231);
  test::expect_matches_reference(runner, mul_mat_threshold(DType::Q2_K, 9), cuda);
}

// The matrix-vector form of mul_mat_id: up to 8 tokens, or (15 tokens here) fewer tokens
// than experts. Prompt sizes take the batched GEMM (cuda_mul_mat_id_test.cpp).
TEST(CudaMulMatId, ExpertPerTokenFromDeviceIds) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F16, DType::Q4_0, DType::Q8_0, DType::F32}) {
    for (int64_t n : {1, 4, 15}) {
      for (int slot : {0, 1}) {
        Graph g;
        const TensorId w = g.weight("w", type, {256, 48, 16, 1});
        const TensorId x = g.input("x", DType::F32, {256, n, 1, 1});
        const TensorId ids = g.input("ids", DType::I32, {2, n, 1, 1});
        const TensorId node = ops::mul_mat_id(g, w, x, ids, slot);
        ASSERT_FALSE(cuda::uses_cublas(g, node));
        OneNodeRunner runner(g, node, 241);
        std::vector<int32_t> chosen(static_cast<size_t>(2 * n));
        for (size_t i = 0; i < chosen.size(); ++i) chosen[i] = static_cast<int32_t>((i * 7 + 3) % 16);
        runner.set_ints(ids, chosen);
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + " slot=" + std::to_string(slot));
        test::expect_matches_reference(runner, traits(type).quantized ? kInt8Activations : 1e-9, cuda);
      }
    }
  }
}

// Long rows (block-per-row int8 kernel) for every quantized type; each token's x is
// quantized on its own. A token whose id is out of range gets NaN, the others are right.
TEST(CudaMulMatId, Int8KernelsOnLongRowsAndABadExpertId) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  constexpr int64_t k = 2816, m = 21, n = 5;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    Graph g;
    const TensorId w = g.weight("w", type, {k, m, 3, 1});
    const TensorId x = g.input("x", DType::F32, {k, n, 1, 1});
    const TensorId ids = g.input("ids", DType::I32, {2, n, 1, 1});
    OneNodeRunner runner(g, ops::mul_mat_id(g, w, x, ids, 1), 261);
    runner.set_floats(x, blocks_of_mixed_magnitude(k, n, 262));
    runner.set_ints(ids, {0, 2, 1, 1, 2, 0, 0, 1, 1, 2});
    SCOPED_TRACE(name(type));
    test::expect_matches_reference(runner, kInt8Activations, cuda);

    runner.set_ints(ids, {0, 2, 1, 3, 2, 0, 0, 1, 1, 2});  // token 1 asks for expert 3 of 3
    const std::vector<float> out = runner.device(cuda);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t r = 0; r < m; ++r) {
        const float v = out[static_cast<size_t>(t * m + r)];
        if (t == 1) {
          EXPECT_TRUE(std::isnan(v)) << "token 1 row " << r;
        } else {
          EXPECT_TRUE(std::isfinite(v)) << "token " << t << " row " << r;
        }
      }
    }
  }
}

struct AttentionShape {
  int64_t head_dim, heads, kv_heads, ctx;
};

// q [head_dim, heads, n] as a strided view (every other head of a wider tensor).
TensorId attention_node(Graph& g, const AttentionShape& s, int64_t n, DType cache_type, TensorId* positions,
                        int region = 0) {
  const TensorId q_full = g.input("q", DType::F32, {s.head_dim, 2 * s.heads, n, 1});
  const Tensor& qf = g[q_full];
  const TensorId q = ops::view(g, q_full, {s.head_dim, s.heads, n, 1}, {4, 2 * qf.nb[1], qf.nb[2], qf.nb[3]}, 0);
  const TensorId k = g.state("k", cache_type, {s.head_dim, s.kv_heads, s.ctx, 1});
  const TensorId v = g.state("v", cache_type, {s.head_dim, s.kv_heads, s.ctx, 1});
  *positions = g.input("pos", DType::I32, {n, 1, 1, 1});
  return ops::attention(g, q, k, v, *positions, 1.0f / 8.0f, region);
}

TEST(CudaAttention, DecodeAtSeveralPositionsGqa) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  const AttentionShape shape{128, 8, 2, 1024};  // split into chunks (flash-decoding)
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (int32_t position : {0, 5, 127, 128, 300, 1023}) {
      Graph g;
      TensorId pos;
      OneNodeRunner runner(g, attention_node(g, shape, 1, type, &pos), 301);
      runner.set_ints(pos, {position});
      SCOPED_TRACE(std::string(name(type)) + " position " + std::to_string(position));
      test::expect_matches_reference(runner, 1e-9, cuda);
    }
  }
}

TEST(CudaAttention, SmallBatchAndPromptShapes) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  struct Case {
    AttentionShape shape;
    std::vector<int32_t> positions;
  };
  const Case cases[] = {
      {{64, 4, 4, 600}, {40, 41, 42, 43}},                 // split, no grouping
      {{128, 8, 1, 96}, {0, 1, 2}},                        // one chunk (short cache), all heads on one kv head
      {{80, 6, 2, 256}, {3, 200, 17, 255, 9, 100, 50, 0, 128, 129, 64, 1}},  // prompt form, odd head_dim
      {{80, 6, 2, 256}, {200}},                            // decode, head_dim not a power of two
      {{30, 4, 2, 200}, {150, 31}},                        // head_dim not a multiple of 4: scalar tile loads
  };
  for (const Case& c : cases) {
    Graph g;
    TensorId pos;
    const auto n = static_cast<int64_t>(c.positions.size());
    OneNodeRunner runner(g, attention_node(g, c.shape, n, DType::F16, &pos), 311);
    runner.set_ints(pos, c.positions);
    SCOPED_TRACE("queries " + std::to_string(n) + " head_dim " + std::to_string(c.shape.head_dim));
    test::expect_matches_reference(runner, 1e-9, cuda);
  }
}

// Prompts of 16 queries or more with head size 64 or 128 take the tensor-core kernel:
// 16-bit q, keys, values and probabilities, f32 accumulation. Partial query tiles,
// queries out of order, grouped heads, every cache type.
TEST(CudaAttention, PromptsOnTensorCores) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  struct Case {
    AttentionShape shape;
    std::vector<int32_t> positions;
  };
  std::vector<int32_t> late(100), shuffled(64);
  for (int32_t i = 0; i < 100; ++i) late[static_cast<size_t>(i)] = 300 + i;
  for (int32_t i = 0; i < 64; ++i) shuffled[static_cast<size_t>(i)] = (i * 37) % 64 + 5 * (i % 3);
  const Case cases[] = {
      {{128, 8, 2, 600}, late},                        // two query tiles, the second partial; seven key tiles
      {{64, 4, 4, 300}, shuffled},                     // positions out of order within a tile
      {{64, 6, 2, 64}, std::vector<int32_t>(17, 63)},  // 17 queries that all see the whole cache
  };
  for (const Case& c : cases) {
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
      Graph g;
      TensorId pos;
      const auto n = static_cast<int64_t>(c.positions.size());
      OneNodeRunner runner(g, attention_node(g, c.shape, n, type, &pos), 331);
      runner.set_ints(pos, c.positions);
      SCOPED_TRACE(std::string(name(type)) + " queries " + std::to_string(n) + " head_dim " +
                   std::to_string(c.shape.head_dim));
      test::expect_matches_reference(runner, type == DType::BF16 ? 1e-4 : 1e-5, cuda);
    }
  }
}

// A batch of sequences: a cache of regions, each query within its own. Decode batches
// (split into chunks of a region; past the split limit, the batched decode kernel, which
// also takes a prompt-sized batch: regions keep it off the tensor-core kernel) and a head
// size for the general kernel.
TEST(CudaAttention, EachQueryStaysWithinItsRegion) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  struct Case {
    AttentionShape shape;
    int region;
    std::vector<int32_t> rows;
  };
  std::vector<int32_t> mixed(24);
  for (int32_t i = 0; i < 24; ++i) mixed[static_cast<size_t>(i)] = (i % 4) * 512 + 100 + i * 9;
  // Twelve sequences of 40 rows: one row, a full region, lengths shorter and longer than a
  // block's sixteen groups of lanes.
  std::vector<int32_t> lengths(12);
  const int32_t last_row[] = {0, 39, 1, 15, 16, 17, 31, 33, 7, 38, 20, 2};
  for (int32_t i = 0; i < 12; ++i) lengths[static_cast<size_t>(i)] = i * 40 + last_row[i];
  const Case cases[] = {
      {{128, 8, 2, 4 * 512}, 512, {5, 512 + 300, 3 * 512 + 511, 2 * 512}},  // split, GQA
      {{64, 4, 4, 3 * 96}, 96, {95, 96, 200}},                              // one chunk
      {{64, 8, 2, 4 * 512}, 512, mixed},                                    // 24 queries, 4 regions
      {{128, 4, 4, 12 * 40}, 40, lengths},                                  // the batched decode kernel
      {{256, 4, 2, 2 * 300}, 300, {299, 300, 450}},                         // the general kernel
  };
  for (const Case& c : cases) {
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
      Graph g;
      TensorId pos;
      const auto n = static_cast<int64_t>(c.rows.size());
      OneNodeRunner runner(g, attention_node(g, c.shape, n, type, &pos, c.region), 341);
      runner.set_ints(pos, c.rows);
      SCOPED_TRACE(std::string(name(type)) + " queries " + std::to_string(n) + " region " + std::to_string(c.region));
      test::expect_matches_reference(runner, 1e-9, cuda);
    }
  }
}

// One captured graph serves every decode step: only the positions buffer changes.
TEST(CudaAttention, CapturedGraphFollowsPositionsInDeviceMemory) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  Graph g;
  TensorId pos;
  OneNodeRunner runner(g, attention_node(g, {128, 8, 2, 2048}, 1, DType::F16, &pos), 321);
  runner.set_ints(pos, {10});
  const std::vector<float> first = runner.device(cuda, true);
  EXPECT_LT(test::nmse(first, runner.reference()), 1e-9);
  for (int32_t position : {11, 700, 2047, 0}) {
    runner.set_ints(pos, {position});
    EXPECT_LT(test::nmse(runner.replay(cuda), runner.reference()), 1e-9) << "position " << position;
  }
  EXPECT_TRUE(runner.guards_intact());
}

TEST(CudaAttention, SplitFormNeedsTheScratchItReports) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  // A split node reports scratch, and its launch refuses to run without it.
  Graph g;
  TensorId pos;
  const TensorId node = attention_node(g, {128, 8, 2, 4096}, 1, DType::F16, &pos);
  EXPECT_GT(cuda::scratch_bytes(g, node), 0u);
  cuda::DeviceAddresses memory(static_cast<size_t>(g.tensor_count()), nullptr);
  cuda::StreamContext ctx{cuda.stream(), cuda.cublas(), nullptr, 0};
  EXPECT_THROW(cuda::launch(g, node, memory, ctx), Error);
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
