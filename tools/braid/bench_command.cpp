#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "bench.h"
#include "braid/batched_runner.h"
#include "braid/parallel_runner.h"
#include "braid/runner.h"
#include "commands.h"
#include "generation_options.h"
#include "model_source.h"

namespace braid::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> files;
  std::vector<std::string> presets;
  ModelSource base;  // type, layers, ctx, seed for presets; ctx and cache type for files too
  std::vector<int> prompt;
  std::vector<int> generate;
  std::vector<int> parallel;  // batched decode of this many sequences (instead of pp/tg)
  int repetitions = 3;
  std::vector<std::string> policies{"serial", "branch", "levels", "chains", "cost"};
  std::vector<int> graph{1};
  std::vector<std::string> executors{"graph"};  // graph, persistent (CUDA, decode only)
  std::vector<int> fuse{0};
  std::string backend;
  int devices = 1;  // tensor parallelism: CPU simulated ranks or GPUs over NCCL (ParallelRunner)
  std::vector<std::string> cpu_kernels{"fast"};  // CPU: fast, reference or both
  int streams = 4;
  bool auto_guard = true;  // auto: keep checking the choice at run time (PlanGuard)
  std::string output = "md";
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Deterministic, varied token ids below the vocabulary size.
std::vector<int32_t> bench_tokens(int n, int vocab) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 1) % vocab);
  return tokens;
}

struct TestTimes {
  std::vector<double> tps;      // tokens per second of each repetition
  std::vector<double> host_us;  // host time of every timed step (submit, not wait)
};

// Times one test (pp: one batch of n tokens; tg: n single-token steps) `reps` times after
// one warm-up. Wall-clock time around synchronized runs: what a user of the engine waits
// for. The host's share of a step is the time submit() takes to stage the inputs and
// issue the run (on CUDA with a graph: two small copies and one graph launch).
// (A ParallelRunner's submit returns when the step is done: its host share is the step.)
template <typename Runner>
TestTimes time_test(Runner& runner, bool prompt, int n, int reps) {
  const auto tokens = bench_tokens(n, runner.model().config.n_vocab);
  TestTimes times;
  for (int r = -1; r < reps; ++r) {
    runner.reset();
    auto step = [&](const std::vector<int32_t>& batch) {
      const auto submitted = std::chrono::steady_clock::now();
      runner.submit(batch);
      if (r >= 0) times.host_us.push_back(seconds_since(submitted) * 1e6);
      runner.wait();
    };
    const auto start = std::chrono::steady_clock::now();
    if (prompt) {
      step(tokens);
    } else {
      for (int i = 0; i < n; ++i) step({tokens[static_cast<size_t>(i)]});
    }
    const double s = seconds_since(start);
    if (r >= 0) times.tps.push_back(n / s);
  }
  return times;
}

// Batched decode, as llama-batched-bench measures it: `sequences` sequences each take a
// prompt of `prompt` tokens (one step per sequence, not timed), then `n` steps decode one
// token of every sequence at once. The rate is every decoded token over the decode time.
TestTimes time_batched(BatchedRunner& runner, int prompt, int n, int reps) {
  const int sequences = runner.sequences();
  const int vocab = runner.model().config.n_vocab;
  TestTimes times;
  for (int r = -1; r < reps; ++r) {
    std::vector<BatchEntry> decode;
    for (int s = 0; s < sequences; ++s) {
      runner.reset(s);
      std::vector<int32_t> tokens = bench_tokens(prompt + s, vocab);  // a different prompt each
      tokens.erase(tokens.begin(), tokens.begin() + s);
      if (prompt > 0) runner.step({{s, tokens}});
      decode.push_back({s, {static_cast<int32_t>((s * 31 + 7) % vocab)}});
    }
    const auto start = std::chrono::steady_clock::now();
    // (A step reads back what a greedy request of braid serve reads: each sequence's best
    // logits. No host share to time apart.)
    for (int i = 0; i < n; ++i) runner.step(decode, false);
    if (r >= 0) times.tps.push_back(static_cast<double>(sequences) * n / seconds_since(start));
  }
  return times;
}

// One configuration of the bench's loops: a model, how it runs, and where.
struct BenchRun {
  const BenchOptions& o;
  const ModelSource& source;
  const Model& model;      // as loaded: its size and parameters are reported, ranks shard it
  const Model& run_model;  // fused or not
  Backend& backend;
  const std::string& backend_name;
  const std::string& kernels;  // CPU: fast or reference
  const std::string& executor;
  int graph;
  int fuse;
  Policy policy;
  RunnerOptions runner;
};

RunnerOptions runner_options(const BenchOptions& o, Policy policy, int graph, int fuse, const std::string& kernels,
                             bool persistent) {
  RunnerOptions ro;
  ro.exec.persistent = persistent;
  ro.exec.cpu_reference = kernels == "reference";
  ro.policy = policy;
  ro.plan.max_streams = o.streams;
  ro.exec.cuda_graph = graph != 0;
  ro.fuse = fuse != 0;
  ro.guard.enabled = o.auto_guard;
  return ro;
}

// A row of `test` (`tokens` counted a repetition) with the configuration's columns and the
// statistics of `times`.
BenchRow describe(const BenchRun& r, const std::string& test, int tokens, const TestTimes& times) {
  const std::vector<double>& tps = times.tps;
  BenchRow row;
  row.model = r.source.label();
  row.size_gib = static_cast<double>(r.model.weight_bytes()) / (1u << 30);
  row.params = r.model.parameter_count();
  row.backend = r.backend_name == "cpu" && r.kernels == "reference" ? "cpu-reference" : r.backend_name;
  row.device = r.backend.device_name();
  row.policy = std::string(policy_name(r.policy));
  row.graph = r.graph != 0 && !r.runner.exec.persistent;
  row.executor = r.executor;
  row.fused = r.fuse != 0;
  row.test = test;
  row.tokens = tokens;
  row.tps_mean = std::accumulate(tps.begin(), tps.end(), 0.0) / static_cast<double>(tps.size());
  double var = 0;
  for (double t : tps) var += (t - row.tps_mean) * (t - row.tps_mean);
  row.tps_sd = tps.size() > 1 ? std::sqrt(var / static_cast<double>(tps.size() - 1)) : 0;
  row.tps_median = median(tps);
  row.host_us = times.host_us.empty() ? 0 : median(times.host_us);
  return row;
}

std::string test_name(bool is_prompt, int n) { return fmt::format("{}{}", is_prompt ? "pp" : "tg", n); }

// Batched decode: each prompt length, then the generated tokens, in every sequence.
void bench_batched(const BenchRun& r, const std::vector<int>& prompts, const std::vector<int>& generate,
                   std::vector<BenchRow>& rows) {
  for (int sequences : r.o.parallel) {
    for (int p : prompts) {
      // Its own backend: the caches' size depends on the number of sequences.
      auto batch_backend = make_backend(r.backend_name);
      RunnerOptions options = r.runner;
      options.best_logits = {kSamplingBestLogits, 0};
      BatchedRunner runner(r.run_model, *batch_backend, sequences, std::max(sequences, p), options);
      const int bucket = runner.bucket_for(sequences);
      for (int n : generate) {
        fmt::print(stderr, "braid bench: {} {} graph={} fuse={} {} sequences, pp{} then tg{}\n", r.source.label(),
                   policy_name(r.policy), r.graph, r.fuse, sequences, p, n);
        BenchRow row = describe(r, fmt::format("pp{}+tg{} x{}", p, n, sequences), sequences * n,
                                time_batched(runner, p, n, r.o.repetitions));
        row.streams = runner.plan(bucket).stream_count;
        row.memory = runner.memory(bucket);
        if (r.policy == Policy::Auto) row.auto_choice = runner.plan(bucket).policy;
        rows.push_back(row);
      }
    }
  }
}

// Tensor parallelism over --devices ranks. Every rank shards the unfused model and fuses its
// own shard (RunnerOptions::fuse).
void bench_ranks(const BenchRun& r, const std::vector<int>& prompt, const std::vector<int>& generate,
                 std::vector<BenchRow>& rows) {
  const int devices = r.o.devices;
  ParallelRunner parallel(r.model, devices, r.runner, r.backend_name);
  auto test = [&](bool is_prompt, int n) {
    if (n <= 0) return;
    fmt::print(stderr, "braid bench: {} {} fuse={} {} ranks {}\n", r.source.label(), policy_name(r.policy), r.fuse,
               devices, test_name(is_prompt, n));
    BenchRow row = describe(r, test_name(is_prompt, n), n, time_test(parallel, is_prompt, n, r.o.repetitions));
    row.backend = fmt::format("{} x{}", row.backend, devices);
    row.host_us = 0;  // (the step itself: see time_test)
    row.streams = parallel.rank_runner(0).plan(is_prompt ? n : 1).stream_count;
    row.memory = parallel.rank_runner(0).memory(is_prompt ? n : 1);  // one rank's
    rows.push_back(row);
  };
  for (int n : prompt) test(true, n);
  for (int n : generate) test(false, n);
}

// One device: the prompt and generation tests, and which plan auto chose (and whether its
// guard fell back to serial).
void bench_one(const BenchRun& r, const std::vector<int>& prompt, const std::vector<int>& generate,
               std::vector<BenchRow>& rows) {
  ModelRunner runner(r.run_model, r.backend, r.runner);
  auto test = [&](bool is_prompt, int n) {
    if (n <= 0) return;
    fmt::print(stderr, "braid bench: {} {} graph={} executor={} fuse={} {}\n", r.source.label(),
               policy_name(r.policy), r.graph, r.executor, r.fuse, test_name(is_prompt, n));
    const size_t fallbacks_before = runner.guard_fallbacks().size();
    BenchRow row = describe(r, test_name(is_prompt, n), n, time_test(runner, is_prompt, n, r.o.repetitions));
    row.streams = runner.plan(is_prompt ? n : 1).stream_count;
    row.memory = runner.memory(is_prompt ? n : 1);
    if (r.policy == Policy::Auto) {
      row.auto_choice = runner.plan(is_prompt ? n : 1).policy;
      for (size_t i = fallbacks_before; i < runner.guard_fallbacks().size(); ++i) {
        const GuardFallback& f = runner.guard_fallbacks()[i];
        row.auto_choice =
            fmt::format("{}, guard -> serial at run {} ({:.3f}x serial's time)", f.policy, f.run, f.ratio);
      }
    }
    rows.push_back(row);
  };
  // A prompt runs on the graph executor whatever the option says: its rows are the graph
  // executor's, measured once.
  if (!r.runner.exec.persistent) {
    for (int n : prompt) test(true, n);
  }
  for (int n : generate) test(false, n);
}

void run_bench(const BenchOptions& o) {
  const std::string backend_name = o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend;
  std::vector<ModelSource> sources;
  for (const auto& f : o.files) {
    ModelSource s = o.base;  // (--ctx and --cache-type; a file has its own weight types and layers)
    s.file = f;
    sources.push_back(s);
  }
  for (const auto& p : o.presets) {
    ModelSource s = o.base;
    s.preset = p;
    sources.push_back(s);
  }
  const bool default_model = sources.empty();
  if (default_model) {  // the built-in default: under a minute
    ModelSource s = o.base;
    s.preset = backend_name == "cuda" ? "llama-1b" : "tiny-256";
    sources.push_back(s);
  }
  // The CPU backend is the reference, not a fast engine: its default tests are shorter.
  const bool short_tests = backend_name == "cpu" && default_model;
  const std::vector<int> prompt = !o.prompt.empty() ? o.prompt : std::vector<int>{short_tests ? 64 : 512};
  const std::vector<int> generate = !o.generate.empty() ? o.generate : std::vector<int>{short_tests ? 16 : 128};
  std::vector<Policy> policies;
  for (const auto& name : o.policies) {
    policies.push_back(policy_from_name(name));
  }
  // Bad input fails here, before the first progress line and before minutes spent on
  // the models that come before it.
  int needed = 0;  // context the longest test needs
  for (int n : prompt) needed = std::max(needed, n);
  for (int n : generate) needed = std::max(needed, n);
  const bool batched = !o.parallel.empty();
  const std::vector<int> batched_prompt = !o.prompt.empty() ? o.prompt : std::vector<int>{128};
  if (batched) {  // a prompt, then the generated tokens, in each sequence
    needed = *std::max_element(batched_prompt.begin(), batched_prompt.end()) + *std::max_element(generate.begin(), generate.end());
  }
  for (const ModelSource& source : sources) {
    check_model_source(source);
    if (source.context > 0 && source.context < needed) {
      throw Error(fmt::format("--ctx {} is shorter than the longest test ({} tokens)", source.context, needed));
    }
  }
  if (backend_name == "cuda" && !cuda_available()) make_backend(backend_name);  // throws why not
  const bool persistent_wanted =
      std::find(o.executors.begin(), o.executors.end(), "persistent") != o.executors.end();
  if (persistent_wanted && backend_name != "cuda") throw Error("--executor persistent needs the CUDA backend");
  if (persistent_wanted && (o.devices > 1 || batched)) {
    throw Error("--executor persistent runs single-sequence decode (tg) on one device: not with --devices or "
                "--parallel");
  }
  if (o.devices > 1 && batched) throw Error("--devices with --parallel (batched decode) is not supported yet");

  std::vector<BenchRow> rows;
  for (const ModelSource& source : sources) {
    fmt::print(stderr, "braid bench: loading {}\n", source.label());
    auto model = load_model(source);
    if (source.context == 0 && model->config.n_ctx < needed) model->config.n_ctx = needed;
    // Batched: the caches hold a context per sequence, so only the context the test needs.
    if (source.context == 0 && batched) model->config.n_ctx = needed;
    std::unique_ptr<Model> fused_model;  // fused once, shared by the runners
    for (int fuse : o.fuse) {
      if (fuse && !fused_model) fused_model = std::make_unique<Model>(fuse_projections(*model));
      // A backend per fusion mode: its device keeps only the weights these graphs read,
      // so the memory columns compare like with like.
      auto backend = make_backend(backend_name);
      for (int graph : o.graph) {
        for (const std::string& kernels : o.cpu_kernels) {
          for (const std::string& executor : o.executors) {
            const bool persistent = executor == "persistent";
            // The persistent kernel is one launch a step, never a CUDA graph: one set of rows.
            if (persistent && graph != o.graph.front()) continue;
            for (Policy policy : policies) {
              const BenchRun run{.o = o,
                                 .source = source,
                                 .model = *model,
                                 .run_model = fuse ? *fused_model : *model,
                                 .backend = *backend,
                                 .backend_name = backend_name,
                                 .kernels = kernels,
                                 .executor = executor,
                                 .graph = graph,
                                 .fuse = fuse,
                                 .policy = policy,
                                 .runner = runner_options(o, policy, graph, fuse, kernels, persistent)};
              if (batched) {
                bench_batched(run, batched_prompt, generate, rows);
              } else if (o.devices > 1) {
                bench_ranks(run, prompt, generate, rows);
              } else {
                try {
                  bench_one(run, prompt, generate, rows);
                } catch (const Unsupported& e) {
                  // The rows of the other executors stand; with no other, the error is the answer.
                  if (o.executors.size() == 1) throw;
                  fmt::print(stderr, "braid bench: {}: no {} rows: {}\n", source.label(), executor, e.what());
                  break;  // (every policy's plan has the same nodes)
                }
              }
            }
          }
        }
      }
    }
  }
  if (o.output == "json") {
    fmt::print("{}\n", format_json(rows));
  } else if (o.output == "csv") {
    fmt::print("{}", format_csv(rows));
  } else {
    if (!rows.empty()) fmt::print("device: {}\n\n", rows.front().device);
    fmt::print("{}\n{}", format_markdown(rows), format_summary_markdown(rows));
    const std::string notes = format_auto_notes(rows);
    if (!notes.empty()) fmt::print("\n{}", notes);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prompt (pp) and generation (tg) tokens/s for each plan policy; with no model, a built-in default");
  cmd->add_option("-m,--model", o->files, "GGUF model files");
  cmd->add_option("--preset", o->presets, "Built-in models: " + preset_list())->delimiter(',');
  cmd->add_option("--type", o->base.type, "Weight type of presets")->capture_default_str();
  cmd->add_option("--layers", o->base.layers, "Override presets' layer count")->check(positive());
  cmd->add_option("--ctx", o->base.context, "Context length")->check(positive());
  add_cache_type_option(*cmd, o->base.cache_type);
  cmd->add_option("-p,--n-prompt", o->prompt, "Prompt lengths (default 512)")->check(non_negative());
  cmd->add_option("-n,--n-gen", o->generate, "Generation lengths (default 128)")->check(non_negative());
  cmd->add_option("--parallel", o->parallel,
                  "Batched decode of N sequences at once (e.g. 1,8,32,64): each takes a prompt of -p tokens "
                  "(default 128), then -n steps decode all of them; rows count every sequence's tokens")
      ->delimiter(',')->check(positive());
  cmd->add_option("-r,--repetitions", o->repetitions, "Timed repetitions per test")
      ->capture_default_str()->check(positive());
  cmd->add_option("--policy", o->policies, "Plan policies (serial, branch, levels, chains, cost, auto)")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--graph", o->graph, "CUDA graph off/on: 0, 1 or 0,1")->delimiter(',')->check(CLI::Range(0, 1));
  cmd->add_option("--executor", o->executors,
                  "graph (a kernel a node), persistent (CUDA: one persistent kernel a decode step; tg tests "
                  "only) or graph,persistent")
      ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"graph", "persistent"}));
  cmd->add_option("--fuse", o->fuse, "Fused projections (q/k/v, gate/up) off/on: 0, 1 or 0,1")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(0, 1));
  cmd->add_option("--backend", o->backend, "cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->add_option("--devices", o->devices,
                  "Split the model over this many devices (tensor parallelism: GPUs over NCCL; on the CPU, "
                  "simulated ranks)")
      ->capture_default_str()->check(positive());
  cmd->add_option("--cpu-kernels", o->cpu_kernels,
                  "CPU kernels: fast, reference (the simple f64-accumulating ones) or fast,reference")
      ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"fast", "reference"}));
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_flag("!--no-auto-guard", o->auto_guard, "auto: keep the tuned plan even if it falls behind serial later");
  cmd->add_option("-o,--output", o->output, "md, json or csv")->capture_default_str()->check(CLI::IsMember({"md", "json", "csv"}));
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace braid::cli
