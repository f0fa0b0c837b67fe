#include "generation_options.h"

#include <fmt/format.h>

#include "commands.h"
#include "model_source.h"

namespace braid::cli {

GenerateOptions GenerationOptions::generate_options() const {
  GenerateOptions options;
  options.max_tokens = max_tokens;
  options.sampling = sampling;
  return options;
}

void add_generation_options(CLI::App& cmd, GenerationOptions& o) {
  cmd.add_option("-m,--model", o.file, "GGUF model file")->required();
  cmd.add_option("-n,--n-predict", o.max_tokens, "Most tokens to generate")->capture_default_str()
      ->check(non_negative());
  cmd.add_option("--temp", o.sampling.temperature, "Temperature; 0 or below: greedy")->capture_default_str();
  cmd.add_option("--top-k", o.sampling.top_k, "Keep the k most likely tokens; 0: all")->capture_default_str()
      ->check(non_negative());
  cmd.add_option("--top-p", o.sampling.top_p, "Keep the most likely tokens up to this mass; 1: all")
      ->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--seed", o.sampling.seed, "Seed of the sampler")->capture_default_str();
  cmd.add_option("--repeat-penalty", o.sampling.repeat_penalty, "Penalty of recent tokens; 1: off")
      ->capture_default_str()->check(positive());
  cmd.add_option("--repeat-last-n", o.sampling.repeat_last_n, "Recent tokens the penalty looks at")
      ->capture_default_str()->check(non_negative());
  cmd.add_option("--policy", o.policy, "Plan policy: serial, branch, levels, chains, cost, auto")
      ->capture_default_str();
  cmd.add_option("--streams", o.streams, "Most streams a plan may use")->capture_default_str()
      ->check(CLI::Range(1, 32));
  cmd.add_option("--graph", o.graph, "CUDA graph capture off/on: 0 or 1")->capture_default_str()
      ->check(CLI::Range(0, 1));
  cmd.add_flag("--fuse", o.fuse, "Fuse sibling projections (q/k/v, gate/up) into one mul_mat each");
  cmd.add_flag("!--no-auto-guard", o.auto_guard, "auto: keep the tuned plan even if it falls behind serial later");
  cmd.add_option("--ctx", o.context, "Context length (default: the model's)")->check(positive());
  add_cache_type_option(cmd, o.cache_type);
  cmd.add_option("--backend", o.backend, "cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
}

LoadedGenerator::LoadedGenerator(const GenerationOptions& o)
    : file(GgufFile::open(o.file)), tokenizer(load_tokenizer(file)), model(load_gguf_model(file)) {
  if (o.context > 0) model.config.n_ctx = o.context;
  model.config.cache_type = cache_type_named(o.cache_type);
  RunnerOptions runner_options;
  runner_options.policy = policy_from_name(o.policy);
  runner_options.plan.max_streams = o.streams;
  runner_options.exec.cuda_graph = o.graph != 0;
  runner_options.fuse = o.fuse;
  runner_options.guard.enabled = o.auto_guard;
  backend_name = o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend;
  if (o.devices > 1) {
    parallel = std::make_unique<ParallelRunner>(model, o.devices, runner_options, backend_name);
    return;
  }
  backend = make_backend(backend_name);
  runner = std::make_unique<ModelRunner>(model, *backend, runner_options);
}

namespace {

std::string streams(int count) { return fmt::format("{} stream{}", count, count == 1 ? "" : "s"); }

}  // namespace

std::string describe_run(const GenerationOptions& o, LoadedGenerator& g) {
  if (g.parallel) {
    const std::string ranks = g.backend_name == "cpu" ? fmt::format("backend cpu, {} simulated ranks", g.parallel->ranks())
                                                      : fmt::format("backend cuda, {} GPUs", g.parallel->ranks());
    return fmt::format("{} (tensor parallel), policy {} ({}), fused {}, seed {}", ranks, o.policy,
                       streams(g.parallel->rank_runner(0).plan(1).stream_count), o.fuse ? 1 : 0, o.sampling.seed);
  }
  return fmt::format("backend {} ({}), policy {} ({}), graph {}, fused {}, seed {}", g.backend_name,
                     g.backend->device_name(), o.policy, streams(g.runner->plan(1).stream_count), o.graph,
                     o.fuse ? 1 : 0, o.sampling.seed);
}

}  // namespace braid::cli
