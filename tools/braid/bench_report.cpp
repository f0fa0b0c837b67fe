// Renderings of bench rows: markdown (like llama-bench), CSV, JSON, and the summary.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>
#include <tuple>

#include "bench.h"

namespace braid::cli {
namespace {

std::string params_text(int64_t params) {
  if (params >= 1000000000) return fmt::format("{:.2f} B", static_cast<double>(params) / 1e9);
  return fmt::format("{:.2f} M", static_cast<double>(params) / 1e6);
}

std::string mib(size_t bytes) { return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

std::string format_markdown(const std::vector<BenchRow>& rows) {
  std::string out =
      "| model | size | params | backend | policy | streams | graph | executor | fused | test | t/s (median) | "
      "mean ± sd | host us/step | arena MiB "
      "| total MiB |\n"
      "| --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n";
  for (const BenchRow& r : rows) {
    out += fmt::format("| {} | {:.2f} GiB | {} | {} | {} | {} | {} | {} | {} | {} | {:.2f} | {:.2f} ± {:.2f} | {:.1f} | {} | {} |\n",
                       r.model, r.size_gib, params_text(r.params), r.backend, r.policy, r.streams, r.graph ? 1 : 0,
                       r.executor, r.fused ? 1 : 0, r.test, r.tps_median, r.tps_mean, r.tps_sd, r.host_us, mib(r.memory.arena_bytes),
                       mib(r.memory.total()));
  }
  return out;
}

std::string format_csv(const std::vector<BenchRow>& rows) {
  std::string out =
      "model,size_bytes,params,backend,device,policy,streams,graph,executor,fused,test,tokens,tps_mean,tps_sd,host_us,"
      "arena_bytes,workspace_bytes,total_bytes,tps_median\n";
  for (const BenchRow& r : rows) {
    out += fmt::format("\"{}\",{:.0f},{},{},\"{}\",{},{},{},{},{},{},{},{:.3f},{:.3f},{:.2f},{},{},{},{:.3f}\n", r.model,
                       r.size_gib * (1u << 30), r.params, r.backend, r.device, r.policy, r.streams, r.graph ? 1 : 0,
                       r.executor, r.fused ? 1 : 0, r.test, r.tokens, r.tps_mean, r.tps_sd, r.host_us, r.memory.arena_bytes,
                       r.memory.workspace_bytes, r.memory.total(), r.tps_median);
  }
  return out;
}

std::string format_json(const std::vector<BenchRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const BenchRow& r : rows) {
    out.push_back({{"model", r.model},
                   {"size_bytes", static_cast<int64_t>(r.size_gib * (1u << 30))},
                   {"params", r.params},
                   {"backend", r.backend},
                   {"device", r.device},
                   {"policy", r.policy},
                   {"streams", r.streams},
                   {"graph", r.graph},
                   {"executor", r.executor},
                   {"fused", r.fused},
                   {"test", r.test},
                   {"tokens", r.tokens},
                   {"tps_mean", r.tps_mean},
                   {"tps_sd", r.tps_sd},
                   {"tps_median", r.tps_median},
                   {"host_us", r.host_us},
                   {"auto_choice", r.auto_choice},
                   {"memory",
                    {{"arena_bytes", r.memory.arena_bytes},
                     {"workspace_bytes", r.memory.workspace_bytes},
                     {"inputs_bytes", r.memory.inputs_bytes},
                     {"weights_bytes", r.memory.weights_bytes},
                     {"state_bytes", r.memory.state_bytes},
                     {"total_bytes", r.memory.total()}}}});
  }
  return out.dump(2);
}

std::string format_summary_markdown(const std::vector<BenchRow>& rows) {
  // Per (model, test, graph, fused): the serial row and the fastest multi-stream row.
  struct Pair {
    const BenchRow* serial = nullptr;
    const BenchRow* best = nullptr;
  };
  using Key = std::tuple<std::string, std::string, bool, bool>;
  std::map<Key, Pair> groups;
  std::vector<Key> order;
  for (const BenchRow& r : rows) {
    // Reference-kernel rows of the CPU, and persistent-kernel rows, compare with their own serial row.
    std::string model = r.backend == "cpu-reference" ? r.model + " (cpu-reference)" : r.model;
    if (r.executor != "graph") model += " (" + r.executor + ")";
    Key key{model, r.test, r.graph, r.fused};
    if (!groups.count(key)) order.push_back(key);
    Pair& p = groups[key];
    if (r.policy == "serial") {
      p.serial = &r;
    } else if (!p.best || r.tps_median > p.best->tps_median) {
      p.best = &r;
    }
  }
  std::string out =
      "| model | test | graph | fused | serial t/s | best multi-stream t/s | policy | speedup | "
      "serial arena / total MiB | multi-stream arena / total MiB |\n"
      "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n";
  for (const auto& key : order) {
    const Pair& p = groups[key];
    if (!p.serial || !p.best) continue;
    // cost (and auto) may settle on one stream: say so rather than call it multi-stream.
    const std::string policy = p.best->streams == 1 ? p.best->policy + " (1 stream)" : p.best->policy;
    out += fmt::format("| {} | {} | {} | {} | {:.2f} | {:.2f} | {} | {:.3f}x | {} / {} | {} / {} |\n",
                       std::get<0>(key), p.serial->test, p.serial->graph ? 1 : 0, p.serial->fused ? 1 : 0,
                       p.serial->tps_median, p.best->tps_median, policy,
                       p.best->tps_median / p.serial->tps_median, mib(p.serial->memory.arena_bytes),
                       mib(p.serial->memory.total()), mib(p.best->memory.arena_bytes), mib(p.best->memory.total()));
  }
  return out;
}

std::string format_auto_notes(const std::vector<BenchRow>& rows) {
  std::string out;
  for (const BenchRow& r : rows) {
    if (r.auto_choice.empty()) continue;
    out += fmt::format("- auto, {} {} graph={} fused={}: {}\n", r.model, r.test, r.graph ? 1 : 0, r.fused ? 1 : 0,
                       r.auto_choice);
  }
  return out;
}

}  // namespace braid::cli
