// The auto policy (autotune.h): compile every candidate plan, time them on the device in
// interleaved rounds, keep the fastest unless it does not beat serial beyond the noise,
// and remember the choice with the timings behind it.
#include "braid/autotune.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <vector>

#include "backend/autotune_cache.h"
#include "backend/plan_choice.h"

namespace braid {

namespace {

// FNV-1a, 64 bits: stable across runs and machines (std::hash is neither promised).
class Fnv1a {
 public:
  void bytes(const void* data, size_t count) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < count; ++i) hash_ = (hash_ ^ p[i]) * 1099511628211ull;
  }
  template <typename T>
  void add(const T& value) {
    static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T>);
    bytes(&value, sizeof value);
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

uint64_t plan_options_hash(const PlanOptions& options) {
  Fnv1a h;
  h.add(options.max_streams);
  h.add(options.cost.bandwidth_gbps);
  h.add(options.cost.flops_tflops);
  h.add(options.cost.launch_us);
  h.add(options.cost.sync_us);
  h.add(options.cost.sm_count);
  return h.value();
}

// Compiles `plan`, stages zero inputs (then the caller's, if any) and warms it up.
std::unique_ptr<Executable> ready_plan(Backend& backend, const Graph& graph, const Plan& plan,
                                       const AutoOptions& options) {
  std::unique_ptr<Executable> executable = backend.compile(graph, plan, options.exec);
  for (const Tensor& t : graph.tensors()) {
    if (!t.has(kInput)) continue;
    const std::vector<uint8_t> zeros(t.bytes(), 0);
    executable->set_input(t.id, zeros.data(), zeros.size());
  }
  if (options.stage_inputs) options.stage_inputs(*executable);
  for (int i = 0; i < options.warmup_runs; ++i) executable->run();
  executable->synchronize();
  return executable;
}

}  // namespace

uint64_t graph_structure_hash(const Graph& graph) {
  Fnv1a h;
  h.add(graph.tensor_count());
  for (const Tensor& t : graph.tensors()) {
    h.add(t.op);
    h.add(t.type);
    h.add(t.flags);
    for (int64_t n : t.ne) h.add(n);
    for (size_t b : t.nb) h.add(b);
    h.add(t.src.size());
    for (TensorId s : t.src) h.add(s);
    for (int32_t i : t.params.i) h.add(i);
    for (float f : t.params.f) h.add(f);
    h.add(t.view_source);
    h.add(t.view_offset);
  }
  h.add(graph.outputs().size());
  for (TensorId id : graph.outputs()) h.add(id);
  return h.value();
}

std::string autotune_cache_key(const Backend& backend, const Graph& graph, const PlanOptions& options,
                               const ExecOptions& exec) {
  return fmt::format("{}|{}|{}|graph {:016x}|options {:016x}|{}", backend.name(), backend.device_name(),
                     backend.driver_version(), graph_structure_hash(graph), plan_options_hash(options),
                     exec.cuda_graph ? "cuda graph" : "eager");
}

std::string default_autotune_cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/braid/autotune.json";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/braid/autotune.json";
  return {};
}

Plan choose_among(Backend& backend, const Graph& graph, const std::vector<Plan>& candidates,
                  const PlanOptions& options, const AutoOptions& auto_options, AutoReport* report) {
  if (candidates.empty()) throw Error("auto: no candidate plans");
  if (auto_options.runs_per_sample < 1 || auto_options.rounds < 1) {
    throw Error(fmt::format("auto: {} rounds of {} runs (at least 1 each)", auto_options.rounds,
                            auto_options.runs_per_sample));
  }
  AutoReport local;
  AutoReport& out = report ? *report : local;
  out = AutoReport{};
  out.cache_key = autotune_cache_key(backend, graph, options, auto_options.exec);
  const std::string cache_path =
      auto_options.use_cache ? (auto_options.cache_path.empty() ? default_autotune_cache_path() : auto_options.cache_path)
                             : std::string();

  if (!cache_path.empty()) {
    const auto cached = autotune::load_choice(cache_path, out.cache_key);
    // A cached index is trusted only while it still names the same policy (the planner
    // may have changed its candidate list since).
    if (cached && cached->index >= 0 && cached->index < static_cast<int>(candidates.size()) &&
        candidates[static_cast<size_t>(cached->index)].policy == cached->policy) {
      out.chosen_index = cached->index;
      out.chosen_policy = cached->policy;
      out.from_cache = true;
      return candidates[static_cast<size_t>(cached->index)];
    }
  }

  // Every candidate is compiled and warmed up first, then timed in interleaved rounds
  // (Note [Choosing a plan through noise]).
  std::vector<std::unique_ptr<Executable>> executables(candidates.size());
  std::vector<std::string> errors(candidates.size());
  std::vector<std::vector<double>> samples;
  try {
    executables[0] = ready_plan(backend, graph, candidates[0], auto_options);  // serial must work
    for (size_t i = 1; i < candidates.size(); ++i) {
      try {
        executables[i] = ready_plan(backend, graph, candidates[i], auto_options);
      } catch (const Error& e) {
        errors[i] = e.what();  // e.g. out of memory for a wider plan: not a candidate
      }
    }
    std::vector<bool> live(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) live[i] = executables[i] != nullptr;
    samples = autotune::sample_interleaved(live, auto_options.rounds, [&](size_t c) {
      return executables[c]->time_runs_ms(auto_options.runs_per_sample);
    });
  } catch (...) {
    executables.clear();
    try {
      backend.reset_state();
    } catch (...) {
      // The original error is the one to report.
    }
    throw;
  }
  executables.clear();
  backend.reset_state();

  std::vector<autotune::Verdict> verdicts;
  const size_t best = autotune::choose(
      samples, autotune::ChoiceRule{auto_options.serial_margin, auto_options.min_win_fraction}, &verdicts);
  for (size_t i = 0; i < candidates.size(); ++i) {
    CandidateTiming t;
    t.policy = candidates[i].policy;
    t.error = errors[i];
    t.median_ms = samples[i].empty() ? -1 : median(samples[i]);
    t.ratio_to_serial = verdicts[i].median_ratio;
    t.win_fraction = verdicts[i].win_fraction;
    t.samples_ms = samples[i];
    out.timings.push_back(std::move(t));
  }
  out.chosen_index = static_cast<int>(best);
  out.chosen_policy = candidates[best].policy;
  if (!cache_path.empty()) {
    autotune::store_choice(cache_path, out.cache_key, {out.chosen_policy, out.chosen_index}, out.timings);
  }
  return candidates[best];
}

Plan choose_plan(Backend& backend, const Graph& graph, const PlanOptions& options,
                 const AutoOptions& auto_options, AutoReport* report) {
  return choose_among(backend, graph, candidate_plans(graph, options), options, auto_options, report);
}

}  // namespace braid
