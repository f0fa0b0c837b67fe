// The auto policy's choice and cache, on a scripted backend whose executables report
// given times: the fastest plan wins only when it beats serial by more than the margin,
// candidates that fail are skipped, and a remembered choice skips the timing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "braid/autotune.h"
#include "braid/model.h"
#include "braid/ops.h"
#include "braid/runner.h"

namespace braid {
namespace {

struct Script {
  explicit Script(std::map<std::string, double> times) : ms(std::move(times)) {}
  std::map<std::string, double> ms;  // per policy, read at each timing; absent: compile fails
  int compiles = 0;
  int resets = 0;
  int inputs_set = 0;
  std::string last_run;  // the policy of the executable that ran last
};

class ScriptedExecutable final : public Executable {
 public:
  ScriptedExecutable(Script& script, std::string policy) : script_(script), policy_(std::move(policy)) {}
  void set_input(TensorId, const void*, size_t) override { ++script_.inputs_set; }
  void run() override { script_.last_run = policy_; }
  void read(TensorId, void*, size_t) override {}
  void synchronize() override {}
  MemoryReport memory() const override { return {}; }
  std::vector<StepTiming> trace_run() override { return {}; }
  double time_runs_ms(int runs) override { return runs > 0 ? script_.ms.at(policy_) : -1; }
  double run_timed_ms() override {
    run();
    return script_.ms.at(policy_);
  }

 private:
  Script& script_;
  std::string policy_;
};

class ScriptedBackend final : public Backend {
 public:
  explicit ScriptedBackend(Script& script) : script_(script) {}
  std::string name() const override { return "scripted"; }
  std::string device_name() const override { return "Scripted Device"; }
  std::string driver_version() const override { return "driver 1"; }
  std::unique_ptr<Executable> compile(const Graph&, const Plan& plan, const ExecOptions&) override {
    ++script_.compiles;
    const auto it = script_.ms.find(plan.policy);
    if (it == script_.ms.end()) throw Error("scripted: out of device memory");
    return std::make_unique<ScriptedExecutable>(script_, plan.policy);
  }
  void reset_state() override { ++script_.resets; }
  size_t weights_bytes() const override { return 0; }
  size_t state_bytes() const override { return 0; }

 private:
  Script& script_;
};

Graph small_graph(int64_t width) {
  Graph g;
  const TensorId x = g.input("x", DType::F32, {width, 2, 1, 1});
  g.mark_output(ops::add(g, ops::scale(g, x, 2.0f), x));
  g.finalize();
  return g;
}

std::vector<Plan> plans(const std::vector<std::string>& policies) {
  std::vector<Plan> out;
  for (const std::string& p : policies) {
    Plan plan;
    plan.policy = p;
    out.push_back(plan);
  }
  return out;
}

AutoOptions no_cache() {
  AutoOptions o;
  o.use_cache = false;
  return o;
}

TEST(Autotune, FastestPlanWinsWhenClearlyFasterThanSerial) {
  Script script{{{"serial", 1.0}, {"levels", 0.9}, {"cost", 0.8}}};
  ScriptedBackend backend(script);
  const Graph g = small_graph(8);
  AutoReport report;
  const Plan chosen = choose_among(backend, g, plans({"serial", "levels", "cost"}), {}, no_cache(), &report);
  EXPECT_EQ(chosen.policy, "cost");
  EXPECT_EQ(report.chosen_index, 2);
  EXPECT_FALSE(report.from_cache);
  ASSERT_EQ(report.timings.size(), 3u);
  EXPECT_DOUBLE_EQ(report.timings[2].median_ms, 0.8);
  EXPECT_EQ(script.resets, 1) << "state is zeroed after timing";
  EXPECT_EQ(script.inputs_set, 3) << "every candidate runs on staged (zero) inputs";
  EXPECT_NEAR(report.timings[2].ratio_to_serial, 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(report.timings[2].win_fraction, 1.0);
  EXPECT_EQ(report.timings[2].samples_ms.size(), static_cast<size_t>(AutoOptions{}.rounds));
}

TEST(Autotune, SerialWinsWithinTheMargin) {
  Script script{{{"serial", 1.0}, {"levels", 0.995}, {"cost", 1.5}}};
  ScriptedBackend backend(script);
  const Graph g = small_graph(8);
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "levels", "cost"}), {}, no_cache()).policy, "serial");
}

TEST(Autotune, FailingCandidatesAreSkippedButSerialMustWork) {
  Script script{{{"serial", 1.0}, {"cost", 0.5}}};  // "levels" fails to compile
  ScriptedBackend backend(script);
  const Graph g = small_graph(8);
  AutoReport report;
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "levels", "cost"}), {}, no_cache(), &report).policy, "cost");
  EXPECT_LT(report.timings[1].median_ms, 0);
  EXPECT_NE(report.timings[1].error.find("out of device memory"), std::string::npos);

  Script broken{{{"cost", 0.5}}};  // serial itself fails: that is an error
  ScriptedBackend broken_backend(broken);
  EXPECT_THROW(choose_among(broken_backend, g, plans({"serial", "cost"}), {}, no_cache()), Error);
  EXPECT_EQ(broken.resets, 1) << "state is zeroed even when tuning fails";
}

TEST(Autotune, RemembersTheChoicePerGraphAndDevice) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("braid_autotune_test_" + std::to_string(std::random_device{}()));
  AutoOptions options;
  options.cache_path = (dir / "nested" / "autotune.json").string();
  const Graph g = small_graph(8);

  Script script{{{"serial", 1.0}, {"cost", 0.8}}};
  ScriptedBackend backend(script);
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "cost"}), {}, options).policy, "cost");
  const int compiles = script.compiles;
  ASSERT_TRUE(fs::exists(options.cache_path));

  // Now serial would win, but the remembered choice is used without timing.
  script.ms = {{"serial", 0.5}, {"cost", 0.8}};
  AutoReport report;
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "cost"}), {}, options, &report).policy, "cost");
  EXPECT_TRUE(report.from_cache);
  EXPECT_EQ(script.compiles, compiles);

  // Another shape, other plan options, or a changed candidate list: tuned afresh.
  EXPECT_EQ(choose_among(backend, small_graph(16), plans({"serial", "cost"}), {}, options).policy, "serial");
  PlanOptions wider;
  wider.max_streams = 8;
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "cost"}), wider, options).policy, "serial");
  EXPECT_EQ(choose_among(backend, g, plans({"serial", "levels", "cost"}), {}, options, &report).policy, "serial");
  EXPECT_FALSE(report.from_cache);

  std::ifstream in(options.cache_path);
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["choices"].size(), 3u);  // the last tuning replaced the first entry
  for (const auto& [key, entry] : doc["choices"].items()) {  // the evidence behind each choice
    EXPECT_TRUE(entry.contains("ratio_to_serial")) << key;
    EXPECT_EQ(entry["samples_ms"]["serial"].size(), static_cast<size_t>(options.rounds)) << key;
  }
  fs::remove_all(dir);
}

// The run-time guard inside ModelRunner: auto picked "cost" (faster at tuning); later it
// takes 1.4x serial's time, and the runner switches to serial on its own.
TEST(Autotune, RunnerGuardFallsBackToSerialWhenTheChoiceStopsWinning) {
  Script script{{{"serial", 1.0}, {"cost", 0.8}}};
  ScriptedBackend backend(script);
  ModelConfig config = preset_config("tiny-256");
  config.n_embd = 64;
  config.n_ff = 128;
  config.n_head = 4;
  config.n_head_kv = 2;
  config.n_layer = 1;
  config.n_vocab = 64;
  config.n_ctx = 512;
  const Model shaped = make_random_model(config);
  RunnerOptions options;
  options.policy = Policy::Auto;
  options.autotune.use_cache = false;
  ModelRunner runner(shaped, backend, options);
  runner.prepare(std::vector<int>{1});
  ASSERT_EQ(runner.plan(1).policy, "cost");

  for (int i = 0; i < 100; ++i) runner.eval_no_logits({1});
  EXPECT_TRUE(runner.guard_fallbacks().empty());
  EXPECT_EQ(script.last_run, "cost");

  script.ms["cost"] = 1.4;
  for (int i = 0; i < 200; ++i) runner.eval_no_logits({1});
  ASSERT_EQ(runner.guard_fallbacks().size(), 1u);
  EXPECT_EQ(runner.guard_fallbacks()[0].policy, "cost");
  EXPECT_NEAR(runner.guard_fallbacks()[0].ratio, 1.4, 1e-9);
  EXPECT_EQ(runner.plan(1).policy, "serial");
  EXPECT_EQ(script.last_run, "serial");

  // With the guard off, the choice stays whatever happens.
  Script script2{{{"serial", 1.0}, {"cost", 0.8}}};
  ScriptedBackend backend2(script2);
  options.guard.enabled = false;
  ModelRunner unguarded(shaped, backend2, options);
  unguarded.prepare(std::vector<int>{1});
  script2.ms["cost"] = 1.4;
  for (int i = 0; i < 300; ++i) unguarded.eval_no_logits({1});
  EXPECT_TRUE(unguarded.guard_fallbacks().empty());
  EXPECT_EQ(script2.last_run, "cost");
}

TEST(Autotune, StructureHashIgnoresNamesButNotShapes) {
  Graph a = small_graph(8);
  Graph b;
  const TensorId x = b.input("tokens_in", DType::F32, {8, 2, 1, 1});
  b.mark_output(ops::add(b, ops::scale(b, x, 2.0f), x));
  b.finalize();
  EXPECT_EQ(graph_structure_hash(a), graph_structure_hash(b));
  EXPECT_NE(graph_structure_hash(a), graph_structure_hash(small_graph(16)));
  Graph c;
  const TensorId y = c.input("x", DType::F32, {8, 2, 1, 1});
  c.mark_output(ops::add(c, ops::scale(c, y, 3.0f), y));
  c.finalize();
  EXPECT_NE(graph_structure_hash(a), graph_structure_hash(c)) << "op parameters count";
}

TEST(Autotune, DefaultCachePathFollowsXdg) {
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
  EXPECT_EQ(default_autotune_cache_path(), "/tmp/xdg-test/braid/autotune.json");
  if (old) {
    setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  } else {
    unsetenv("XDG_CACHE_HOME");
  }
}

}  // namespace
}  // namespace braid
