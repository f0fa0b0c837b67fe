// `braid stress`: a long decode in multi-stream mode (a captured CUDA graph on CUDA),
// checked against a serial run of the same tokens.
//
// Two runners decode the same seeded random tokens, each on its own backend (a backend
// holds the KV cache, so they must not share one): the runner under test with the chosen
// policy, streams and graph mode, and the reference with one stream, no CUDA graph and no
// worker threads. Every K steps both read their logits, which must be equal bit for bit
// (braid's kernels reduce in a fixed order, so plans and modes may not change a bit).
// When a sequence fills the context, both start a new one: long runs also exercise
// reset. Device memory (and the host's resident set) is measured after the first step
// and at the end; growth in between is a leak and fails the run.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>

#include "braid/backend.h"
#include "braid/runner.h"
#include "commands.h"
#include "model_source.h"

namespace braid::cli {
namespace {

struct StressOptions {
  ModelSource source;
  int steps = 10000;
  int check_every = 100;
  std::string policy = "cost";
  int streams = 4;
  int graph = 1;
  std::string backend;
  uint64_t token_seed = 1;
  double leak_tolerance_mib = 0;
  int perturb_step = 0;  // > 0: the tested runner gets another token at this step (tests the check)
};

// The host's resident set in bytes (Linux /proc), 0 where unknown.
size_t host_resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// A seeded stream of token ids below the vocabulary size.
class TokenStream {
 public:
  TokenStream(uint64_t seed, int vocab) : state_(seed), vocab_(static_cast<uint64_t>(vocab)) {}
  int32_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<int32_t>((z ^ (z >> 31)) % vocab_);
  }

 private:
  uint64_t state_;
  uint64_t vocab_;
};

// Throws with the first difference when the logits are not bit for bit equal.
void compare_logits(int step, int position, const std::vector<float>& actual, const std::vector<float>& expected) {
  BRAID_ASSERT(actual.size() == expected.size());
  if (std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)) == 0) return;
  size_t differing = 0, first = actual.size();
  double max_diff = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::memcmp(&actual[i], &expected[i], sizeof(float)) == 0) continue;
    ++differing;
    first = std::min(first, i);
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(actual[i]) - expected[i]));
  }
  throw Error(fmt::format("stress: step {} (position {}): logits differ from the serial run at {} of {} values "
                          "(first at index {}: {} vs {}; max |difference| {:.3g})",
                          step, position, differing, actual.size(), first, actual[first], expected[first], max_diff));
}

void run_stress(const StressOptions& o) {
  if (o.steps < 1 || o.check_every < 1) throw Error("stress: --steps and --check-every must be at least 1");
  const Policy policy = policy_from_name(o.policy);
  const std::string backend_name = o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend;
  ModelSource source = o.source;
  if (source.file.empty() && source.preset.empty()) source.preset = backend_name == "cuda" ? "llama-1b" : "tiny-256";
  check_model_source(source);
  if (backend_name == "cuda" && !cuda_available()) make_backend(backend_name);  // throws why not

  const size_t device_start = device_memory_used();
  const size_t host_start = host_resident_bytes();
  auto model = load_model(source);
  const int n_ctx = model->config.n_ctx;
  {
    auto tested_backend = make_backend(backend_name);
    auto reference_backend = make_backend(backend_name);
    RunnerOptions tested_options;
    tested_options.policy = policy;
    tested_options.plan.max_streams = o.streams;
    tested_options.exec.cuda_graph = o.graph != 0;
    RunnerOptions reference_options;
    reference_options.policy = Policy::Serial;
    reference_options.exec.cuda_graph = false;
    reference_options.exec.threads = false;
    ModelRunner tested(*model, *tested_backend, tested_options);
    ModelRunner reference(*model, *reference_backend, reference_options);
    tested.prepare(std::vector<int>{1});
    reference.prepare(std::vector<int>{1});
    fmt::print("stress: {} on {} ({}), policy {} on {} streams, graph {}, {} steps, check every {}, context {}\n",
               source.label(), backend_name, tested_backend->device_name(), o.policy, tested.plan(1).stream_count,
               o.graph, o.steps, o.check_every, n_ctx);
    std::fflush(stdout);

    TokenStream tokens(o.token_seed, model->config.n_vocab);
    size_t device_steady = 0, host_steady = 0;
    int checks = 0, sequences = 1;
    double tested_seconds = 0;
    for (int step = 1; step <= o.steps; ++step) {
      if (tested.position() == n_ctx) {  // the context is full: a new sequence
        tested.reset();
        reference.reset();
        ++sequences;
      }
      const std::vector<int32_t> token{tokens.next()};
      std::vector<int32_t> tested_token = token;
      if (step == o.perturb_step) tested_token[0] = (token[0] + 1) % model->config.n_vocab;
      // Also the first step of each sequence: a reset must leave nothing behind.
      const bool check = tested.position() == 0 || step % o.check_every == 0 || step == o.steps;
      const auto start = std::chrono::steady_clock::now();
      std::vector<float> logits;
      if (check) {
        logits = tested.eval(tested_token);
      } else {
        tested.eval_no_logits(tested_token);
      }
      tested_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (check) {
        const int position = reference.position();
        compare_logits(step, position, logits, reference.eval(token));
        ++checks;
      } else {
        reference.eval_no_logits(token);
      }
      if (step == 1) {  // everything is allocated now: later growth is a leak
        device_steady = device_memory_used();
        host_steady = host_resident_bytes();
      }
      if (step % (10LL * o.check_every) == 0 && step < o.steps) {  // progress every ten checks
        fmt::print("stress: step {}: {} checks bit-identical, {:.1f} steps/s\n", step, checks, step / tested_seconds);
        std::fflush(stdout);
      }
    }
    const size_t device_end = device_memory_used(), host_end = host_resident_bytes();
    fmt::print("stress: {} steps in {} sequences, {} checks bit-identical; {:.1f} steps/s (tested runner)\n", o.steps,
               sequences, checks, o.steps / tested_seconds);
    if (backend_name == "cuda") {
      fmt::print("device memory: {:.1f} MiB at start, {:.1f} MiB after the first step, {:.1f} MiB after step {}\n",
                 mib(device_start), mib(device_steady), mib(device_end), o.steps);
    }
    fmt::print("host resident: {:.1f} MiB at start, {:.1f} MiB after the first step, {:.1f} MiB after step {}\n",
               mib(host_start), mib(host_steady), mib(host_end), o.steps);
    if (device_end > device_steady && mib(device_end - device_steady) > o.leak_tolerance_mib) {
      throw Error(fmt::format("stress: device memory grew by {:.1f} MiB between step 1 and step {} (a leak?)",
                              mib(device_end - device_steady), o.steps));
    }
  }
  if (backend_name == "cuda") {
    const size_t released = device_memory_used();
    fmt::print("device memory after release: {:.1f} MiB ({:+.1f} MiB against the start)\n", mib(released),
               mib(released) - mib(device_start));
  }
}

}  // namespace

void add_stress_command(CLI::App& app) {
  auto o = std::make_shared<StressOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stress", "Decode many steps in multi-stream graph mode, checking logits against a serial run bit for bit");
  add_model_options(*cmd, o->source);
  cmd->add_option("--steps", o->steps, "Decode steps")->capture_default_str()->check(positive());
  cmd->add_option("--check-every", o->check_every, "Compare logits with the serial run every K steps")
      ->capture_default_str()->check(positive());
  cmd->add_option("--policy", o->policy, "Plan policy of the tested runner")->capture_default_str();
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_option("--graph", o->graph, "CUDA graph capture off/on: 0 or 1")->capture_default_str()->check(CLI::Range(0, 1));
  cmd->add_option("--backend", o->backend, "cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->add_option("--token-seed", o->token_seed, "Seed of the random tokens")->capture_default_str();
  cmd->add_option("--leak-tolerance-mib", o->leak_tolerance_mib, "Device memory growth allowed after step 1")
      ->capture_default_str()->check(non_negative());
  // Hidden: proves in tests that a difference is caught.
  cmd->add_option("--perturb-step", o->perturb_step, "Feed the tested runner another token at this step")
      ->group("");
  cmd->callback([o] { run_stress(*o); });
}

}  // namespace braid::cli
