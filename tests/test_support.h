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

// Path of a committed reference file in tests/data, e.g. "smollm2_reference.json".
std::string test_data(const std::string& name);

// A real model too large for the fixtures folder, e.g. "SmolLM2-135M-Instruct.Q4_1.gguf".
// Models live in their own cache folder: $BRAID_MODELS, else $XDG_CACHE_HOME/braid, else
// $HOME/.cache/braid -- where scripts/fetch_smollm2.sh puts them (.ci/run runs it).
std::string real_model_path(const std::string& name);
// The model's path when it is there. Otherwise an empty string, and the test is marked
// skipped with a message naming the fetch script (failed under CI=true, like a fixture):
//   const std::string model = test::real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
//   if (model.empty()) return;
std::string real_model(const std::string& name);
// The same for another file of the model cache, fetched by `fetch_script`.
std::string cached_file(const std::string& name, const std::string& fetch_script);

// Uniform random floats in [lo, hi), never all zero.
std::vector<float> random_floats(size_t count, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// A deterministic, varied prompt of n ids: 1 (BOS-like) first, then ids spread over the
// vocabulary.
std::vector<int32_t> prompt_ids(int n, int vocab);
// The index of the largest value (the first of equals).
int32_t argmax(const std::vector<float>& v);

// Normalized mean squared error: sum (a-b)^2 / sum b^2; infinity when any value is NaN.
double nmse(const std::vector<float>& actual, const std::vector<float>& expected);

}  // namespace braid::test
