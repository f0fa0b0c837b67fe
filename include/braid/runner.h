// ModelRunner: a model on a backend, ready to evaluate tokens. It builds one graph and
// one plan per batch size on first use and keeps them (so decode steps replay the same
// executable, and on CUDA the same captured graph), and it owns the sequence position.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "braid/autotune.h"
#include "braid/backend.h"
#include "braid/model.h"
#include "braid/plan.h"
#include "braid/plan_guard.h"

namespace braid {

struct RunnerOptions {
  Policy policy = Policy::Serial;
  PlanOptions plan;
  ExecOptions exec;
  AutoOptions autotune;  // for Policy::Auto (its exec options are taken from `exec`)
  GuardOptions guard;    // for Policy::Auto: keep checking the choice at run time
  // Fused projections (GraphOptions::fuse_projections). The runner fuses the model's
  // weights once, at construction; pass a model from fuse_projections to share that
  // work between runners (fusing it again copies nothing).
  bool fuse = false;
  // BatchedRunner only: each step also finds these best logits of every row, which
  // step(entries, rows) reads back in place of (or beside) the whole rows.
  BestLogitsOptions best_logits{};
};

// The guard replaced auto's choice by serial for one batch size (PlanGuard).
struct GuardFallback {
  int n_tokens = 0;        // the batch size
  std::string policy;      // the plan that lost
  int run = 0;             // runs of that batch size until then
  double ratio = 1;        // median chosen / serial time over the judged pairs
};

class ModelRunner {
 public:
  ModelRunner(const Model& model, Backend& backend, RunnerOptions options = {});

  // Evaluates `tokens` at positions position()..position()+n-1 and advances the
  // position; returns the logits of the last token. Throws when the context is full.
  std::vector<float> eval(const std::vector<int32_t>& tokens);
  // eval(), for a sequence that goes on (a chat's next turn): where the batch size is new
  // and cannot be prepared now (the auto policy past position 0), the tokens go through
  // batch sizes already prepared, the largest that fits first. The logits are those of
  // one batch (within rounding). Throws when no prepared size fits (prepare 1 up front).
  std::vector<float> eval_continuing(const std::vector<int32_t>& tokens);
  // Same, without reading the logits back (for timing: the run is synchronized).
  void eval_no_logits(const std::vector<int32_t>& tokens);
  // eval_no_logits in two halves, so the host's share of a step can be timed: submit()
  // stages the inputs and issues the run without waiting for the device; wait() waits
  // for the last submitted run.
  void submit(const std::vector<int32_t>& tokens);
  void wait();
  // Evaluates `tokens` like eval(), timing every plan step (see Executable::trace_run).
  std::vector<StepTiming> trace(const std::vector<int32_t>& tokens);
  void reset();  // back to position 0 with an empty cache
  int position() const { return position_; }

  // Builds the graph, plan and executable for these batch sizes now. With the auto policy
  // this times the candidate plans, which overwrites the KV cache: prepare every batch
  // size a sequence will use before it starts (eval at position 0 prepares by itself).
  void prepare(const std::vector<int>& batch_sizes);
  const Plan& plan(int n_tokens);  // builds it when needed
  const Graph& graph(int n_tokens);
  MemoryReport memory(int n_tokens);
  const Model& model() const { return model_; }  // as given
  // How many executables (one per batch size) have been compiled: a decode loop that
  // stays at its count replays the same executable (on CUDA, the same captured graph).
  int compiled_count() const { return static_cast<int>(prepared_.size()); }
  // The last auto-policy choice: candidates' timings, or that it came from the cache.
  const AutoReport& auto_report() const { return auto_report_; }
  // Every time the run-time guard fell back to serial, in order.
  const std::vector<GuardFallback>& guard_fallbacks() const { return guard_fallbacks_; }

 private:
  struct Prepared {
    ModelGraph graph;
    Plan plan;
    std::unique_ptr<Executable> executable;
    // With the auto policy's guard, when auto chose another plan than serial:
    std::unique_ptr<PlanGuard> guard;
    std::unique_ptr<Executable> serial;  // compiled with the guard
  };
  // The next run: which prepared graph, on which of its executables, timed or not.
  struct Staged {
    Prepared* prepared = nullptr;
    Executable* executable = nullptr;
    PlanGuard::Action action = PlanGuard::Action::RunChosen;
  };
  Prepared& prepare(int n_tokens);
  // Stages the inputs of the next eval on the executable that is to run it (the guard
  // may pick serial's) and advances the position.
  Staged stage(const std::vector<int32_t>& tokens, bool guarded = true);
  Executable& run(const std::vector<int32_t>& tokens);
  Executable& serial_executable(Prepared& p);

  // The model the graphs read: model_, or its fused form.
  const Model& graph_model() const { return fused_ ? *fused_ : model_; }

  const Model& model_;
  std::unique_ptr<const Model> fused_;  // with options_.fuse
  Backend& backend_;
  RunnerOptions options_;
  AutoReport auto_report_;
  std::vector<GuardFallback> guard_fallbacks_;
  std::map<int, Prepared> prepared_;
  int position_ = 0;
  Executable* submitted_ = nullptr;  // the executable of the last submit()
  // The plan the guard just replaced: its last run may still be read; freed at the next stage().
  std::unique_ptr<Executable> retired_;
};

}  // namespace braid
