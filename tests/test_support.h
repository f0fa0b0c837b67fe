// Shared helpers for tests: fixtures, random data, comparisons.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace braid::test {

// Path of a fixture file (BRAID_FIXTURES overrides the configured folder). When the file
// is missing the test is skipped, except under CI (CI=true), where it fails.
std::string fixture(const std::string& name);
// True when the fixture exists; otherwise marks the test skipped or failed (see above).
bool have_fixture(const std::string& name);

// Uniform random floats in [lo, hi), never all zero.
std::vector<float> random_floats(size_t count, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// Normalized mean squared error: sum (a-b)^2 / sum b^2; infinity when any value is NaN.
double nmse(const std::vector<float>& actual, const std::vector<float>& expected);

}  // namespace braid::test
