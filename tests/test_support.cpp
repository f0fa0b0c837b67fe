#include "test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

namespace braid::test {

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("BRAID_FIXTURES");
  return std::string(dir && *dir ? dir : BRAID_FIXTURES_DIR) + "/" + name;
}

namespace {

bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Marks the current test skipped, or failed under CI, where every input must be present.
void report_missing(const std::string& message) {
  if (under_ci()) {
    ADD_FAILURE() << message << " (under CI)";
  } else {
    // GTEST_SKIP() returns void, so record the skip without returning from this function.
    GTEST_MESSAGE_(message.c_str(), ::testing::TestPartResult::kSkip);
  }
}

const char* non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

}  // namespace

bool have_fixture(const std::string& name) {
  if (std::filesystem::exists(fixture(name))) return true;
  report_missing("fixture missing: " + fixture(name));
  return false;
}

std::string test_data(const std::string& name) { return std::string(BRAID_TEST_DATA_DIR) + "/" + name; }

std::string real_model_path(const std::string& name) {
  // The same folder as scripts/fetch_smollm2.sh: keep the two in step.
  std::string dir;
  if (const char* models = non_empty_env("BRAID_MODELS")) {
    dir = models;
  } else if (const char* cache = non_empty_env("XDG_CACHE_HOME")) {
    dir = std::string(cache) + "/braid";
  } else if (const char* home = non_empty_env("HOME")) {
    dir = std::string(home) + "/.cache/braid";
  } else {
    dir = ".cache/braid";  // no HOME: relative to the working folder, as good as any
  }
  return dir + "/" + name;
}

std::string cached_file(const std::string& name, const std::string& fetch_script) {
  const std::string path = real_model_path(name);
  if (std::filesystem::exists(path)) return path;
  report_missing("missing from the model cache: " + path + "; run " + fetch_script + " to fetch it");
  return "";
}

std::string real_model(const std::string& name) { return cached_file(name, "scripts/fetch_smollm2.sh"); }

std::vector<float> random_floats(size_t count, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  if (count > 0 && lo <= 0 && hi >= 0) v[0] = lo + (hi - lo) * 0.75f + 1e-3f;  // never all zero
  return v;
}

std::vector<int32_t> prompt_ids(int n, int vocab) {
  std::vector<int32_t> ids{1};
  for (int i = 1; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 7919 + 13) % vocab));
  return ids;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
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
