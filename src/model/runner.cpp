#include "braid/runner.h"

#include <fmt/format.h>

#include <iterator>
#include <numeric>

namespace braid {

ModelRunner::ModelRunner(const Model& model, Backend& backend, RunnerOptions options)
    : model_(model), backend_(backend), options_(options) {
  model_.config.check();
  if (options_.fuse) fused_ = std::make_unique<const Model>(fuse_projections(model_));
}

ModelRunner::Prepared& ModelRunner::prepare(int n_tokens) {
  auto it = prepared_.find(n_tokens);
  if (it != prepared_.end()) return it->second;
  Prepared p;
  GraphOptions graph_options;
  graph_options.fuse_projections = options_.fuse;
  p.graph = build_graph(graph_model(), n_tokens, graph_options);
  if (options_.policy == Policy::Auto) {
    if (position_ != 0) {
      throw Error(fmt::format("auto policy: batch size {} must be prepared before the sequence starts "
                              "(tuning overwrites the KV cache)", n_tokens));
    }
    AutoOptions tuning = options_.autotune;
    tuning.exec = options_.exec;
    // Time what the graph will run: a sequence from position 0 (a prompt's queries then
    // attend to 1..n keys), with valid token ids.
    tuning.stage_inputs = [&](Executable& executable) {
      std::vector<int32_t> tokens(static_cast<size_t>(n_tokens)), positions(static_cast<size_t>(n_tokens));
      for (int i = 0; i < n_tokens; ++i) tokens[static_cast<size_t>(i)] = (i * 7919 + 1) % model_.config.n_vocab;
      std::iota(positions.begin(), positions.end(), 0);
      executable.set_input(p.graph.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
      executable.set_input(p.graph.positions, positions.data(), positions.size() * sizeof(int32_t));
    };
    p.plan = choose_plan(backend_, p.graph.graph, options_.plan, tuning, &auto_report_);
    if (options_.guard.enabled && p.plan.policy != "serial") {
      p.guard = std::make_unique<PlanGuard>(options_.guard);
      // Compiled now, not at the guard's first serial step: compiling (on CUDA, capturing
      // a graph) inside a step would make that step ms slower than either plan runs.
      serial_executable(p);
    }
  } else {
    p.plan = make_plan(p.graph.graph, options_.policy, options_.plan);
  }
  p.executable = backend_.compile(p.graph.graph, p.plan, options_.exec);
  return prepared_.emplace(n_tokens, std::move(p)).first->second;
}

Executable& ModelRunner::serial_executable(Prepared& p) {
  if (!p.serial) {
    p.serial = backend_.compile(p.graph.graph, make_plan(p.graph.graph, Policy::Serial, options_.plan), options_.exec);
  }
  return *p.serial;
}

ModelRunner::Staged ModelRunner::stage(const std::vector<int32_t>& tokens, bool guarded) {
  const int n = static_cast<int>(tokens.size());
  if (n == 0) throw Error("eval: no tokens");
  if (position_ + n > model_.config.n_ctx) {
    throw Error(fmt::format("context full: {} tokens at position {} exceed the context of {}", n, position_,
                            model_.config.n_ctx));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= model_.config.n_vocab) {
      throw Error(fmt::format("token id {} outside the vocabulary of {}", t, model_.config.n_vocab));
    }
  }
  retired_.reset();  // (its last run has been read or waited for)
  Staged s;
  s.prepared = &prepare(n);
  Prepared& p = *s.prepared;
  s.executable = p.executable.get();
  if (guarded && p.guard) {
    s.action = p.guard->next();
    if (s.action == PlanGuard::Action::TimeSerial) s.executable = &serial_executable(p);
  }
  std::vector<int32_t> positions(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), position_);
  s.executable->set_input(p.graph.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
  s.executable->set_input(p.graph.positions, positions.data(), positions.size() * sizeof(int32_t));
  position_ += n;
  return s;
}

Executable& ModelRunner::run(const std::vector<int32_t>& tokens) {
  const Staged s = stage(tokens);
  if (s.action == PlanGuard::Action::RunChosen) {
    s.executable->run();
    return *s.executable;
  }
  // A sampled step of the guard: timed (and so synchronized), then judged.
  Prepared& p = *s.prepared;
  p.guard->record(s.executable->run_timed_ms());
  if (p.guard->fell_back()) {
    guard_fallbacks_.push_back({p.graph.n_tokens, p.plan.policy, p.guard->runs(), p.guard->last_ratio()});
    fmt::print(stderr, "braid: auto guard: plan '{}' fell behind serial ({:.3f}x its time over the last steps) "
               "for batch size {}; running serial\n", p.plan.policy, p.guard->last_ratio(), p.graph.n_tokens);
    // The chosen plan's executable ran this step: it stays alive until the next stage().
    std::swap(p.executable, p.serial);
    p.plan = make_plan(p.graph.graph, Policy::Serial, options_.plan);
    retired_ = std::move(p.serial);
  }
  return *s.executable;
}

std::vector<StepTiming> ModelRunner::trace(const std::vector<int32_t>& tokens) {
  return stage(tokens, /*guarded=*/false).executable->trace_run();
}

std::vector<float> ModelRunner::eval(const std::vector<int32_t>& tokens) {
  const int n = static_cast<int>(tokens.size());
  Executable& ran = run(tokens);
  const ModelGraph& g = prepared_.at(n).graph;
  std::vector<float> out(static_cast<size_t>(g.graph[g.logits].elements()));
  ran.read(g.logits, out.data(), out.size() * sizeof(float));
  return out;
}

std::vector<float> ModelRunner::eval_continuing(const std::vector<int32_t>& tokens) {
  const bool can_prepare = options_.policy != Policy::Auto || position_ == 0;
  if (can_prepare || prepared_.count(static_cast<int>(tokens.size())) != 0) return eval(tokens);
  std::vector<float> logits;
  for (size_t at = 0; at < tokens.size();) {
    const int left = static_cast<int>(tokens.size() - at);
    auto it = prepared_.upper_bound(left);  // the first size above what is left
    if (it == prepared_.begin()) {
      throw Error(fmt::format("auto policy: no prepared batch size of at most {} tokens to continue the sequence "
                              "at position {} (prepare batch size 1 before the sequence starts)",
                              left, position_));
    }
    const int size = std::prev(it)->first;
    const auto begin = tokens.begin() + static_cast<std::ptrdiff_t>(at);
    logits = eval(std::vector<int32_t>(begin, begin + size));
    at += static_cast<size_t>(size);
  }
  return logits;
}

void ModelRunner::eval_no_logits(const std::vector<int32_t>& tokens) {
  submit(tokens);
  wait();
}

void ModelRunner::submit(const std::vector<int32_t>& tokens) { submitted_ = &run(tokens); }

void ModelRunner::wait() {
  if (submitted_ != nullptr) submitted_->synchronize();
}

void ModelRunner::reset() {
  backend_.reset_state();
  position_ = 0;
}

void ModelRunner::prepare(const std::vector<int>& batch_sizes) {
  for (int n : batch_sizes) prepare(n);
}

const Plan& ModelRunner::plan(int n_tokens) { return prepare(n_tokens).plan; }
const Graph& ModelRunner::graph(int n_tokens) { return prepare(n_tokens).graph.graph; }
MemoryReport ModelRunner::memory(int n_tokens) { return prepare(n_tokens).executable->memory(); }

}  // namespace braid
