// `braid stress` on the CPU backend with tiny settings: the decode loop wraps the context
// (new sequences), every check is bit for bit, and a perturbed step is caught.
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace braid {
namespace {

using test::contains;
using test::run_cli;

const std::string kTiny = "stress --preset tiny-256 --layers 1 --ctx 8 --backend cpu --policy branch --streams 4";

TEST(StressCommand, MultiStreamDecodeMatchesSerialOnCpu) {
  const test::CliResult r = run_cli(kTiny + " --steps 20 --check-every 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // Branch forks the Q/K/V and gate/up matmuls: more than one stream.
  EXPECT_TRUE(contains(r.out, "policy branch on 3 streams")) << r.out;
  // 20 steps in a context of 8: sequences start at steps 1, 9 and 17; checks at those
  // three, at 5, 10 and 15, and at the last step.
  EXPECT_TRUE(contains(r.out, "20 steps in 3 sequences, 7 checks bit-identical")) << r.out;
  EXPECT_TRUE(contains(r.out, "host resident: ")) << r.out;
}

TEST(StressCommand, ADifferentTokenIsCaught) {
  const test::CliResult r = run_cli(kTiny + " --steps 12 --check-every 4 --perturb-step 3");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  // Step 3 changed the cache, so step 4's logits differ even though its token is the same.
  EXPECT_TRUE(contains(r.err, "braid: error: stress: step 4 (position 3): logits differ from the serial run")) << r.err;
}

}  // namespace
}  // namespace braid
