// `braid plan`: build a model's graph, plan it with one or every policy, and show the
// plan (text, JSON or DOT) with its stream count, events, arena peak and validity.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "braid/model.h"
#include "braid/persistent_schedule.h"
#include "braid/plan.h"
#include "commands.h"
#include "model_source.h"

namespace braid::cli {
namespace {

struct PlanCommandOptions {
  std::string preset = "llama-7b";
  int batch = 1;
  std::string policy = "cost";
  int streams = 4;
  bool json = false;
  bool verbose = false;
  bool fuse = false;
  bool persistent = false;
  std::string dot;
};

void run_plan(const PlanCommandOptions& o) {
  const ModelConfig config = preset_config(o.preset);
  GraphOptions graph_options;
  graph_options.fuse_projections = o.fuse;
  const ModelGraph mg = build_graph_shapes(config, o.batch, graph_options);
  std::vector<Policy> policies;
  if (o.policy == "all") {
    policies = all_policies();
  } else {
    policies.push_back(policy_from_name(o.policy));
  }
  PlanOptions options;
  options.max_streams = o.streams;
  const Plan serial = make_plan(mg.graph, Policy::Serial, options);

  nlohmann::json all = nlohmann::json::array();
  for (Policy policy : policies) {
    const Plan plan = make_plan(mg.graph, policy, options);
    const ValidationReport report = validate(mg.graph, plan);
    if (o.json) {
      nlohmann::json j = nlohmann::json::parse(to_json(mg.graph, plan));
      j["model"] = o.preset;
      j["batch"] = o.batch;
      j["fused"] = o.fuse;
      j["serial_arena_peak_bytes"] = serial.arena_bytes;
      if (!o.verbose) j.erase("steps");
      all.push_back(j);
    } else {
      if (o.verbose) fmt::print("{}\n", to_text(mg.graph, plan));
      fmt::print("{:<8} streams {:>2}  events {:>5}  waits {:>5}  arena {:>9.2f} MiB ({:.3f}x serial)  "
                 "estimate {:>9.1f} us  {}\n",
                 policy_name(policy), plan.stream_count, plan.event_count, plan.wait_count(),
                 static_cast<double>(plan.arena_bytes) / (1 << 20),
                 serial.arena_bytes ? static_cast<double>(plan.arena_bytes) / static_cast<double>(serial.arena_bytes) : 1.0,
                 plan.critical_path_estimate_us, report.ok ? "valid" : "INVALID");
      for (const auto& problem : report.problems) fmt::print("  {}\n", problem);
      if (o.persistent && report.ok) fmt::print("{}\n", to_text(mg.graph, make_persistent_schedule(mg.graph, plan)));
    }
    if (!o.dot.empty()) {
      const std::string path = policies.size() == 1 ? o.dot : fmt::format("{}.{}", o.dot, policy_name(policy));
      std::ofstream out(path);
      if (!out || !(out << to_dot(mg.graph, plan))) throw Error(fmt::format("cannot write {}", path));
    }
    if (!report.ok) throw Error(fmt::format("plan {} failed validation", policy_name(policy)));
  }
  if (o.json) fmt::print("{}\n", (all.size() == 1 ? all[0] : all).dump(2));
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanCommandOptions>();
  CLI::App* cmd = app.add_subcommand("plan", "Plan a preset's graph with a stream policy and show streams, events and arena peak");
  cmd->add_option("--preset", o->preset, preset_list())->capture_default_str();
  cmd->add_option("--batch", o->batch, "Tokens per step (1: decode)")->capture_default_str()->check(positive());
  cmd->add_option("--policy", o->policy, "serial, branch, levels, chains, cost, auto or all")->capture_default_str();
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("-v,--verbose", o->verbose, "Print every step");
  cmd->add_flag("--persistent", o->persistent, "Print the plan as a persistent kernel's task schedule");
  cmd->add_flag("--fuse", o->fuse, "Fuse sibling projections (q/k/v, gate/up) into one mul_mat each");
  cmd->add_option("--dot", o->dot, "Write Graphviz DOT to this file (FILE.policy for --policy all)");
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace braid::cli
