// `braid opbench`, run as the built binary on the CPU: a row per op, clear errors.
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace braid {
namespace {

using test::CliResult;
using test::contains;
using test::run_cli;

TEST(OpBenchCli, MulMatPrintsARowPerTypeAndShape) {
  const CliResult r = run_cli("opbench --backend cpu --type q4_k,f16 --shape 256x64,512x32 --batch 2 --runs 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* row : {"| mul_mat | q4_k | 256 x 64 | 2 |", "| mul_mat | f16 | 256 x 64 | 2 |",
                          "| mul_mat | q4_k | 512 x 32 | 2 |", "| mul_mat | f16 | 512 x 32 | 2 |"}) {
    EXPECT_TRUE(contains(r.out, row)) << row << " missing from\n" << r.out;
  }
}

// A shape with anything after KxM is an error, not its first KxM (a comma list once ran
// only the first shape).
TEST(OpBenchCli, ShapesAreWholeKxM) {
  const CliResult r = run_cli("opbench --backend cpu --type f16 --shape 256x64abc --runs 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "braid: error: shape '256x64abc' is not KxM\n");
}

// Rows that are not whole blocks of the type cannot be quantized (this wrote past the
// weights' buffer once).
TEST(OpBenchCli, RowsOfPartialBlocksAreErrors) {
  const CliResult r = run_cli("opbench --backend cpu --type q4_k --shape 576x576 --runs 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "braid: error: shape '576x576': k must be a multiple of q4_k's 256-element blocks\n");
}

TEST(OpBenchCli, AttentionOfABatchOfSequences) {
  const CliResult r = run_cli(
      "opbench --op attention --backend cpu --batch 3 --length 20 --heads 8 --kv-heads 2 --head-dim 16 --runs 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| attention | f16 cache | 8 / 2 heads x 16 | 3 x 20 rows |")) << r.out;
}

TEST(OpBenchCli, ImpossibleAttentionShapesAreErrors) {
  CliResult r = run_cli("opbench --op attention --backend cpu --heads 6 --kv-heads 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "braid: error: 6 heads do not group over 4 kv heads\n");
  // (--cache-type is the option bench, generate and serve share: a usage error.)
  r = run_cli("opbench --op attention --backend cpu --cache-type q4_0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "braid: usage error: --cache-type: q4_0 not in {f32,f16,bf16} (see braid opbench --help)\n");
  r = run_cli("opbench --op softmax --backend cpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "--op")) << r.err;
}

}  // namespace
}  // namespace braid
