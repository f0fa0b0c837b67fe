// `braid generate`: text from a GGUF model, streamed to stdout token by token; timings
// (prompt and generation tokens/s) go to stderr so that stdout holds only the text.
#include <fmt/format.h>

#include <cstdio>

#include "braid/backend.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "braid/tokenizer.h"
#include "commands.h"

namespace braid::cli {
namespace {

struct GenerateCommandOptions {
  std::string file;
  std::string prompt;
  int max_tokens = 128;
  SamplingOptions sampling;
  std::string policy = "serial";
  int streams = 4;
  int graph = 1;
  bool fuse = false;
  int context = 0;
  std::string backend;
};

double per_second(size_t tokens, double seconds) { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }

void run_generate(const GenerateCommandOptions& o) {
  const GgufFile file = GgufFile::open(o.file);
  const auto tokenizer = load_tokenizer(file);
  Model model = load_gguf_model(file);
  if (o.context > 0) model.config.n_ctx = o.context;

  RunnerOptions runner_options;
  runner_options.policy = policy_from_name(o.policy);
  runner_options.plan.max_streams = o.streams;
  runner_options.exec.cuda_graph = o.graph != 0;
  runner_options.fuse = o.fuse;
  const std::string backend_name = o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend;
  auto backend = make_backend(backend_name);
  ModelRunner runner(model, *backend, runner_options);

  GenerateOptions options;
  options.max_tokens = o.max_tokens;
  options.sampling = o.sampling;
  std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);
  const GenerateResult result = generate(runner, *tokenizer, o.prompt, options, [](int32_t, const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);  // each token as soon as it exists
  });
  std::fputs("\n", stdout);
  std::fflush(stdout);

  fmt::print(stderr, "\nbraid generate: {}, backend {} ({}), policy {} ({} streams), graph {}, fused {}, seed {}\n",
             o.file, backend_name, backend->device_name(), o.policy, runner.plan(1).stream_count, o.graph,
             o.fuse ? 1 : 0, o.sampling.seed);
  fmt::print(stderr, "prompt:     {:>5} tokens in {:8.3f} s ({:.2f} t/s)\n", result.prompt_tokens.size(),
             result.prompt_seconds, per_second(result.prompt_tokens.size(), result.prompt_seconds));
  fmt::print(stderr, "generated:  {:>5} tokens in {:8.3f} s ({:.2f} t/s), stopped at {}\n", result.tokens.size(),
             result.generate_seconds, per_second(result.tokens.size(), result.generate_seconds),
             stop_reason_name(result.stop));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateCommandOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a GGUF model, streamed to stdout");
  cmd->add_option("-m,--model", o->file, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", o->prompt, "The prompt")->required();
  cmd->add_option("-n,--n-predict", o->max_tokens, "Most tokens to generate")->capture_default_str()
      ->check(non_negative());
  cmd->add_option("--temp", o->sampling.temperature, "Temperature; 0 or below: greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens; 0: all")->capture_default_str()
      ->check(non_negative());
  cmd->add_option("--top-p", o->sampling.top_p, "Keep the most likely tokens up to this mass; 1: all")
      ->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--seed", o->sampling.seed, "Seed of the sampler")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Penalty of recent tokens; 1: off")
      ->capture_default_str()->check(positive());
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Recent tokens the penalty looks at")
      ->capture_default_str()->check(non_negative());
  cmd->add_option("--policy", o->policy, "Plan policy: serial, branch, levels, chains, cost, auto")
      ->capture_default_str();
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()
      ->check(CLI::Range(1, 32));
  cmd->add_option("--graph", o->graph, "CUDA graph capture off/on: 0 or 1")->capture_default_str()
      ->check(CLI::Range(0, 1));
  cmd->add_flag("--fuse", o->fuse, "Fuse sibling projections (q/k/v, gate/up) into one mul_mat each");
  cmd->add_option("--ctx", o->context, "Context length (default: the model's)")->check(positive());
  cmd->add_option("--backend", o->backend, "cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace braid::cli
