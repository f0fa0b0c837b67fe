// `braid bench --devices N` and `braid generate --devices N` on the CPU: simulated ranks.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

using test::run_cli;

TEST(ParallelCli, BenchOnTwoRanksHasItsRows) {
  const test::CliResult r = run_cli(
      "bench --backend cpu --preset tiny-256 --layers 1 --ctx 16 -p 4 -n 2 -r 1 --policy serial,cost --devices 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 4u);  // 2 policies x (pp4, tg2)
  for (const auto& row : rows) {
    EXPECT_EQ(row["backend"], "cpu x2");
    EXPECT_GT(row["tps_mean"].get<double>(), 0);
  }
}

TEST(ParallelCli, BadDeviceCountsAreErrors) {
  // tiny-256 has 8 heads: 3 ranks do not divide them.
  const test::CliResult r = run_cli("bench --backend cpu --preset tiny-256 --layers 1 -p 4 -n 2 -r 1 --devices 3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("8 attention heads do not split over 3 ranks"), std::string::npos) << r.err;
  EXPECT_NE(run_cli("bench --backend cpu --devices 0").exit_code, 0);
}

TEST(ParallelCli, GenerateOnRanksWritesOneRanksGreedyText) {
  if (!test::have_fixture("stories260K.gguf")) return;
  const std::string command =
      "generate -m '" + test::fixture("stories260K.gguf") + "' -p 'Once upon a time' -n 24 --temp 0 --backend cpu";
  const test::CliResult one = run_cli(command);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  for (int devices : {2, 4}) {
    const test::CliResult split = run_cli(command + " --devices " + std::to_string(devices));
    ASSERT_EQ(split.exit_code, 0) << split.err;
    EXPECT_EQ(split.out, one.out) << devices << " ranks";
    EXPECT_NE(split.err.find(std::to_string(devices) + " simulated ranks"), std::string::npos) << split.err;
  }
}

}  // namespace
}  // namespace braid
