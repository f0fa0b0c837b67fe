// ops::top_logits on the CPU, reference and fast kernels: each row's best logits and their
// ids against a full stable sort, with ties, NaN, signed zeros and a padded vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "op_harness.h"
#include "test_support.h"

namespace braid {
namespace {

using test::OpGraph;

// The k best of row[0, columns), as [k values, k ids]: larger first, NaN last, equal
// values (-0 and +0 too) in index order.
std::vector<float> best_by_sorting(const float* row, int64_t columns, int k) {
  std::vector<int32_t> order(static_cast<size_t>(columns));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    if (std::isnan(row[a]) || std::isnan(row[b])) return !std::isnan(row[a]) && std::isnan(row[b]);
    return row[a] > row[b];
  });
  std::vector<float> out(static_cast<size_t>(2 * k));
  for (int i = 0; i < k; ++i) {
    out[static_cast<size_t>(i)] = row[order[static_cast<size_t>(i)]];
    out[static_cast<size_t>(k + i)] = static_cast<float>(order[static_cast<size_t>(i)]);
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Case {
  const char* name;
  int64_t vocab, columns;
  int k;
  std::vector<float> (*values)(size_t count);
};

std::vector<float> spread(size_t count) { return test::random_floats(count, 301, -12.0f, 12.0f); }
std::vector<float> three_values(size_t count) {  // ties across the cut everywhere
  std::vector<float> v = test::random_floats(count, 302, 0.0f, 3.0f);
  for (float& x : v) x = std::floor(x);
  return v;
}
std::vector<float> odd_values(size_t count) {
  std::vector<float> v = test::random_floats(count, 303, -1.0f, 1.0f);
  for (size_t i = 0; i < count; i += 7) v[i] = std::nanf("");
  for (size_t i = 3; i < count; i += 11) v[i] = (i / 11) % 2 ? -0.0f : 0.0f;
  for (size_t i = 5; i < count; i += 13) v[i] = (i / 13) % 2 ? INFINITY : -INFINITY;
  return v;
}
std::vector<float> all_nan(size_t count) { return std::vector<float>(count, std::nanf("")); }

const Case kCases[] = {
    {"spread, padded vocabulary", 3000, 2990, 64, spread},
    {"three values", 3000, 3000, 64, three_values},
    {"NaN, signed zeros, infinities", 700, 700, 40, odd_values},
    {"every column", 50, 50, 50, odd_values},
    {"one", 129, 100, 1, spread},
    {"all NaN", 40, 40, 8, all_nan},
};

TEST(TopLogits, ReferenceAndFastKernelsEqualAFullSort) {
  constexpr int64_t kRows = 3;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const std::vector<float> values = c.values(static_cast<size_t>(c.vocab * kRows));
    for (bool fast : {false, true}) {
      OpGraph g;
      const TensorId logits = g.input("logits", DType::F32, {c.vocab, kRows, 1, 1}, values);
      const TensorId best = ops::top_logits(g.graph(), logits, c.k, c.columns);
      g.finish({best});
      fast ? g.run_cpu_fast() : g.run_cpu();
      const std::vector<float> got = g.read(best);
      for (int64_t t = 0; t < kRows; ++t) {
        const auto first = got.begin() + t * 2 * c.k;
        EXPECT_TRUE(same_bits(std::vector<float>(first, first + 2 * c.k),
                              best_by_sorting(values.data() + t * c.vocab, c.columns, c.k)))
            << "row " << t << (fast ? " fast" : " reference");
      }
      EXPECT_TRUE(g.guards_intact());
    }
  }
}

TEST(TopLogits, RejectsImpossibleShapes) {
  OpGraph g;
  const TensorId logits = g.random_input("logits", DType::F32, {10, 2, 1, 1}, 1);
  EXPECT_THROW(ops::top_logits(g.graph(), logits, 0, 10), Error);
  EXPECT_THROW(ops::top_logits(g.graph(), logits, 11, 10), Error);  // more than the columns
  EXPECT_THROW(ops::top_logits(g.graph(), logits, 4, 3), Error);
  EXPECT_THROW(ops::top_logits(g.graph(), logits, 4, 11), Error);   // past the row
  const TensorId ids = g.ids("ids", {10, 1, 1, 1}, std::vector<int32_t>(10, 0));
  EXPECT_THROW(ops::top_logits(g.graph(), ids, 4, 10), Error);
}

}  // namespace
}  // namespace braid
