// What `braid generate` and `braid chat` share: the model file, the sampling options and
// the way the model runs (policy, streams, graph capture, fusion, context, backend), as
// command-line options and as a loaded model with its tokenizer and runner.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "braid/backend.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/parallel_runner.h"
#include "braid/runner.h"
#include "braid/tokenizer.h"

namespace braid::cli {

struct GenerationOptions {
  std::string file;
  int max_tokens = 128;
  SamplingOptions sampling;
  std::string policy = "serial";
  int streams = 4;
  int graph = 1;
  bool fuse = false;
  bool auto_guard = true;  // auto: keep checking the choice at run time (PlanGuard)
  int context = 0;
  std::string cache_type = "f32";  // --cache-type
  std::string backend;
  // Tensor parallelism over this many devices (`braid generate --devices`): on the CPU,
  // simulated ranks; on CUDA, one GPU per rank over NCCL (ParallelRunner).
  int devices = 1;

  GenerateOptions generate_options() const;
};

// -m, -n, --temp, --top-k, --top-p, --seed, --repeat-penalty, --repeat-last-n, --policy,
// --streams, --graph, --fuse, --ctx, --cache-type, --backend.
void add_generation_options(CLI::App& cmd, GenerationOptions& options);

// A GGUF model ready to generate. Not movable: the runner refers to the model.
struct LoadedGenerator {
  explicit LoadedGenerator(const GenerationOptions& options);
  LoadedGenerator(const LoadedGenerator&) = delete;
  LoadedGenerator& operator=(const LoadedGenerator&) = delete;

  GgufFile file;
  std::unique_ptr<Tokenizer> tokenizer;
  Model model;
  std::string backend_name;  // "cuda" or "cpu"
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ModelRunner> runner;      // one device
  std::unique_ptr<ParallelRunner> parallel;  // devices > 1 (then runner and backend are null)
};

// "backend cpu (...), policy serial (1 streams), graph 1, fused 0, seed 42": how it ran.
std::string describe_run(const GenerationOptions& options, LoadedGenerator& generator);

}  // namespace braid::cli
