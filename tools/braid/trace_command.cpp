// `braid trace`: fill the KV cache with a prompt, then run one step with a timestamp
// around every node, and write the streams' timeline as Chrome trace JSON and SVG.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "braid/batched_runner.h"
#include "braid/runner.h"
#include "commands.h"
#include "model_source.h"
#include "trace_render.h"

namespace braid::cli {
namespace {

struct TraceOptions {
  ModelSource source;
  std::string policy = "cost";
  int streams = 4;
  int batch = 1;
  int prompt = 64;
  int sequences = 0;  // > 0: a decode step of this many sequences in one batched graph
  std::string backend;
  std::string json_path = "trace.json";
  std::string svg_path = "timeline.svg";
};

// Writes every file or none: each goes to PATH.tmp first, and only when all are written
// are they renamed into place, so a failure leaves no partial output behind.
void write_files(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> written;
  const auto fail = [&](const std::string& path) {
    for (const std::string& tmp : written) std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}", path));
  };
  for (const auto& [path, text] : files) {
    const std::string tmp = path + ".tmp";
    std::ofstream out(tmp);
    if (out) written.push_back(tmp);
    if (!out || !(out << text) || !out.flush()) fail(path);
  }
  for (const auto& [path, text] : files) {
    if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) fail(path);
    written.erase(written.begin());
  }
}

void run_trace(const TraceOptions& o) {
  ModelSource source = o.source;
  if (source.file.empty() && source.preset.empty()) source.preset = cuda_available() ? "llama-1b" : "tiny-256";
  const Policy policy = policy_from_name(o.policy);
  auto model = load_model(source);
  auto backend = make_backend(o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend);
  RunnerOptions ro;
  ro.policy = policy;
  ro.plan.max_streams = o.streams;
  std::vector<StepTiming> timings;
  const Graph* graph = nullptr;
  const Plan* plan = nullptr;
  std::string title;
  std::unique_ptr<ModelRunner> runner;
  std::unique_ptr<BatchedRunner> batched;
  if (o.sequences > 0) {
    // Every sequence takes its prompt (a step each), then one decode step of all of them is traced.
    model->config.n_ctx = std::min(model->config.n_ctx, o.prompt + 2);
    batched = std::make_unique<BatchedRunner>(*model, *backend, o.sequences, std::max(o.sequences, o.prompt), ro);
    std::vector<BatchEntry> decode;
    for (int s = 0; s < o.sequences; ++s) decode.push_back({s, {static_cast<int32_t>((s * 31 + 5) % model->config.n_vocab)}});
    for (int pass = 0; pass < 2; ++pass) {  // the first: warm-up
      for (int s = 0; s < o.sequences; ++s) {
        batched->reset(s);
        if (o.prompt > 0) batched->step({{s, std::vector<int32_t>(static_cast<size_t>(o.prompt), 1)}});
      }
      timings = batched->trace(decode);
    }
    const int bucket = batched->bucket_for(o.sequences);
    graph = &batched->graph(bucket);
    plan = &batched->plan(bucket);
    title = fmt::format("{} on {}: policy {}, {} sequences decoding in one batch, after {} tokens each",
                        source.label(), backend->device_name(), o.policy, o.sequences, o.prompt);
  } else {
    runner = std::make_unique<ModelRunner>(*model, *backend, ro);
    std::vector<int32_t> tokens(static_cast<size_t>(o.batch));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 31 + 5) % static_cast<size_t>(model->config.n_vocab));
    if (o.prompt > 0) runner->eval(std::vector<int32_t>(static_cast<size_t>(o.prompt), 1));
    runner->trace(tokens);  // warm-up: first use of this batch size
    runner->reset();
    if (o.prompt > 0) runner->eval(std::vector<int32_t>(static_cast<size_t>(o.prompt), 1));
    timings = runner->trace(tokens);
    graph = &runner->graph(o.batch);
    plan = &runner->plan(o.batch);
    title = fmt::format("{} on {}: policy {}, batch {}, after {} tokens", source.label(), backend->device_name(),
                        o.policy, o.batch, o.prompt);
  }
  write_files({{o.json_path, chrome_trace_json(*graph, *plan, timings, title)},
               {o.svg_path, timeline_svg(*graph, *plan, timings, title)}});
  double end = 0;
  std::map<std::string, std::pair<int, double>> by_op;  // op -> (count, busy us)
  for (const auto& t : timings) {
    end = std::max(end, t.end_us);
    auto& [count, busy] = by_op[op_name((*graph)[t.node].op)];
    ++count;
    busy += t.end_us - t.start_us;
  }
  fmt::print("{}: {} steps on {} streams in {:.1f} us; wrote {} and {}\n", title, timings.size(), plan->stream_count,
             end, o.json_path, o.svg_path);
  fmt::print("{:<12} {:>6} {:>10} {:>9}\n", "op", "nodes", "busy us", "us/node");
  for (const auto& [op, entry] : by_op) {
    fmt::print("{:<12} {:>6} {:>10.1f} {:>9.2f}\n", op, entry.first, entry.second, entry.second / entry.first);
  }
}

}  // namespace

void add_trace_command(CLI::App& app) {
  auto o = std::make_shared<TraceOptions>();
  CLI::App* cmd = app.add_subcommand("trace", "Time every node of one step and write a Chrome trace and an SVG timeline");
  add_model_options(*cmd, o->source);
  cmd->add_option("--policy", o->policy, "Plan policy")->capture_default_str();
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_option("--batch", o->batch, "Tokens in the traced step")->capture_default_str()->check(positive());
  cmd->add_option("--sequences", o->sequences,
                  "Trace a decode step of this many sequences in one batched graph (each after --prompt tokens)")
      ->check(positive());
  cmd->add_option("--prompt", o->prompt, "Tokens evaluated first to fill the cache")->capture_default_str()->check(non_negative());
  cmd->add_option("--backend", o->backend, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->add_option("--out", o->json_path, "Chrome trace JSON file")->capture_default_str();
  cmd->add_option("--svg", o->svg_path, "SVG timeline file")->capture_default_str();
  cmd->callback([o] { run_trace(*o); });
}

}  // namespace braid::cli
