// `braid bench` on the CPU backend with tiny settings: one row per policy and test, with
// speed, host time per step and memory, in every output format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "braid/backend.h"
#include "cli_test_util.h"

namespace braid {
namespace {

using test::contains;
using test::run_cli;

const std::string kTiny =
    "bench --backend cpu --preset tiny-256 --layers 1 --ctx 16 -p 4 -n 2 -r 2 --policy serial,branch";

TEST(BenchCommand, JsonHasARowPerPolicyAndTest) {
  const test::CliResult r = run_cli(kTiny + " -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;  // serial and branch, pp4 and tg2
  for (const auto& row : rows) {
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["backend"], "cpu");
    EXPECT_TRUE(row["test"] == "pp4" || row["test"] == "tg2");
    EXPECT_GT(row["tps_mean"].get<double>(), 0.0);
    EXPECT_GT(row["tps_median"].get<double>(), 0.0);
    // On the CPU backend submit() does the work, so the host's share is the whole step.
    EXPECT_GT(row["host_us"].get<double>(), 0.0);
    EXPECT_GT(row["memory"]["total_bytes"].get<int64_t>(), 0);
    EXPECT_EQ(row["streams"].get<int>() > 1, row["policy"] == "branch");
  }
}

TEST(BenchCommand, MarkdownAndCsvCarryTheMedianAndTheHostTime) {
  const test::CliResult md = run_cli(kTiny);
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(contains(md.out, "| t/s (median) | mean ± sd | host us/step | arena MiB |")) << md.out;
  EXPECT_TRUE(contains(md.out, "best multi-stream t/s")) << md.out;  // the summary
  const test::CliResult csv = run_cli(kTiny + " -o csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_TRUE(contains(csv.out, ",tps_mean,tps_sd,host_us,arena_bytes,workspace_bytes,total_bytes,tps_median\n"))
      << csv.out;
}

// The summary's "best multi-stream" plan may have settled on one stream (cost and auto
// can; --streams 1 makes every policy do so): the policy column says it.
TEST(BenchCommand, SummaryNamesABestPlanOfOneStream) {
  const test::CliResult md = run_cli(
      "bench --backend cpu --preset tiny-256 --layers 1 --ctx 64 -p 4 -n 2 -r 1 --policy serial,branch --streams 1");
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(contains(md.out, "| branch (1 stream) |")) << md.out;
}

// --cache-type f16: the same rows with a 16-bit KV cache, named so, in less memory.
TEST(BenchCommand, SixteenBitCacheTakesLessMemory) {
  const std::string args = "bench --backend cpu --preset tiny-256 --layers 1 --ctx 256 -p 4 -n 2 -r 1 --policy serial";
  const test::CliResult f32 = run_cli(args + " -o json");
  const test::CliResult f16 = run_cli(args + " --cache-type f16 -o json");
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  ASSERT_EQ(f16.exit_code, 0) << f16.err;
  const auto rows32 = nlohmann::json::parse(f32.out);
  const auto rows16 = nlohmann::json::parse(f16.out);
  ASSERT_EQ(rows32.size(), rows16.size());
  for (size_t i = 0; i < rows16.size(); ++i) {
    EXPECT_TRUE(contains(rows16[i]["model"].get<std::string>(), "(f16 cache)")) << rows16[i].dump();
    EXPECT_GT(rows16[i]["tps_median"].get<double>(), 0.0);
    // One layer's k and v caches, 256 rows of 256 values: 512 KiB in f32, 256 KiB in f16.
    EXPECT_EQ(rows32[i]["memory"]["total_bytes"].get<int64_t>() - rows16[i]["memory"]["total_bytes"].get<int64_t>(),
              256 * 1024)
        << rows32[i].dump() << "\n" << rows16[i].dump();
  }
}

// --cpu-kernels fast,reference: one run times both kernel sets, the reference rows named
// by their backend column and summarized against their own serial row.
TEST(BenchCommand, CpuKernelsFastAndReferenceInOneRun) {
  const test::CliResult r = run_cli(kTiny + " --cpu-kernels fast,reference -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 8u) << r.out;
  int reference = 0;
  for (const auto& row : rows) reference += row["backend"] == "cpu-reference";
  EXPECT_EQ(reference, 4);
  const test::CliResult md = run_cli(kTiny + " --cpu-kernels reference");
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(contains(md.out, "(cpu-reference)")) << md.out;  // the summary's model column
  EXPECT_NE(run_cli(kTiny + " --cpu-kernels slow").exit_code, 0);
}

// A model the persistent kernel cannot run (q4_0 weights) keeps its graph executor's rows,
// and stderr says which executor was left out and why; asked for alone, that is the error.
TEST(BenchCommand, PersistentExecutorLeavesOutWhatItCannotRun) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const std::string args = "bench --preset tiny-256 --type q4_0 --layers 1 -p 0 -n 4 -r 1 --policy serial,branch";
  const test::CliResult both = run_cli(args + " --executor graph,persistent -o json");
  ASSERT_EQ(both.exit_code, 0) << both.err;
  const auto rows = nlohmann::json::parse(both.out);
  ASSERT_EQ(rows.size(), 2u) << both.out;
  for (const auto& row : rows) EXPECT_EQ(row["executor"], "graph") << row.dump();
  EXPECT_TRUE(contains(both.err, "no persistent rows: persistent executor: cannot run")) << both.err;
  const test::CliResult alone = run_cli(args + " --executor persistent");
  EXPECT_EQ(alone.exit_code, 1) << alone.out;
  EXPECT_TRUE(contains(alone.err, "persistent executor: cannot run")) << alone.err;
}

}  // namespace
}  // namespace braid
