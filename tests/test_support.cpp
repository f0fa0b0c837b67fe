#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

namespace braid::test {

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("BRAID_FIXTURES");
  return std::string(dir && *dir ? dir : BRAID_FIXTURES_DIR) + "/" + name;
}

bool have_fixture(const std::string& name) {
  if (std::filesystem::exists(fixture(name))) return true;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") {
    ADD_FAILURE() << "fixture missing under CI: " << fixture(name);
  } else {
    // GTEST_SKIP returns from the function it is in: a lambda keeps it out of this bool one.
    [&] { GTEST_SKIP() << "fixture missing: " << fixture(name); }();
  }
  return false;
}

std::vector<float> random_floats(size_t count, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  if (count > 0 && lo <= 0 && hi >= 0) v[0] = lo + (hi - lo) * 0.75f + 1e-3f;  // never all zero
  return v;
}

double nmse(const std::vector<float>& actual, const std::vector<float>& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double err = 0, ref = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isnan(actual[i]) || std::isnan(expected[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(actual[i]) - expected[i];
    err += d * d;
    ref += static_cast<double>(expected[i]) * expected[i];
  }
  return ref > 0 ? err / ref : err;
}

}  // namespace braid::test
