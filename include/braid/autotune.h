// The `auto` policy: time the candidate plans on the real device and keep the fastest.
//
// Serial is always a candidate, and another plan wins only when it beats serial beyond
// the noise: candidates are timed in interleaved rounds against serial, and a plan must
// be faster by more than a margin (1%) in the median and in most rounds (Note [Choosing
// a plan through noise], src/backend/plan_choice.h). So `auto` is never slower than
// serial, also on a busy host: the failure of llama.cpp's multi-stream pull request
// cannot happen here. At run time the runner keeps checking (PlanGuard). The choice is
// remembered per (graph structure, plan options, backend, device, driver) in a small JSON
// file, so the timing runs happen once per model shape and machine.
//
// Backend-agnostic: it compiles plans through Backend and times them with
// Executable::time_runs_ms (CUDA events on the device, the host clock on the CPU).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "braid/backend.h"
#include "braid/plan.h"

namespace braid {

struct AutoOptions {
  int warmup_runs = 3;
  int rounds = 7;               // interleaved rounds; each candidate is sampled once a round
  int runs_per_sample = 4;      // a sample is the median time of this many runs
  double serial_margin = 0.01;  // a plan's median ratio to serial must be below 1 - margin
  double min_win_fraction = 0.75;  // and it must beat serial in this share of rounds
  bool use_cache = true;        // read and write the choice cache
  // The cache file; empty means $XDG_CACHE_HOME/braid/autotune.json, else
  // ~/.cache/braid/autotune.json (no cache when neither variable is set).
  std::string cache_path;
  ExecOptions exec;  // how candidates are compiled (CUDA graphs by default, as they run)
  // Stages representative inputs on each candidate before timing (a prompt's positions
  // 0..n-1, say: with zeros every query would attend to one key and the timing would
  // not be the prompt's). Inputs it leaves alone are zero.
  std::function<void(Executable&)> stage_inputs;
};

struct CandidateTiming {
  std::string policy;
  double median_ms = 0;  // negative when the candidate could not be compiled or run
  std::string error;     // why, in that case
  double ratio_to_serial = 1;  // median over rounds of (this / serial in the same round)
  double win_fraction = 0;     // share of rounds in which it beat serial
  std::vector<double> samples_ms;  // one per round
};

struct AutoReport {
  std::string chosen_policy;
  int chosen_index = 0;     // into the candidate list
  bool from_cache = false;  // no timing ran
  std::string cache_key;
  std::vector<CandidateTiming> timings;  // empty when from_cache
};

// Times braid::candidate_plans(graph, options) and returns the fastest (see above).
// Timing runs the graph with zero inputs (token 0 at position 0) and writes its state
// tensors: call it before a sequence starts, as the backend's state is zeroed
// (reset_state) afterwards.
Plan choose_plan(Backend& backend, const Graph& graph, const PlanOptions& options = {},
                 const AutoOptions& auto_options = {}, AutoReport* report = nullptr);

// The same over an explicit candidate list (candidates[0] is the baseline, serial);
// `options` is part of the cache key only.
Plan choose_among(Backend& backend, const Graph& graph, const std::vector<Plan>& candidates,
                  const PlanOptions& options = {}, const AutoOptions& auto_options = {},
                  AutoReport* report = nullptr);

// Hash of what makes two graphs run alike: ops, types, shapes, strides, parameters,
// flags and connections (not names, not weight values).
uint64_t graph_structure_hash(const Graph& graph);
// The key under which a choice is remembered.
std::string autotune_cache_key(const Backend& backend, const Graph& graph, const PlanOptions& options,
                               const ExecOptions& exec);
std::string default_autotune_cache_path();  // empty when no cache folder is known

}  // namespace braid
