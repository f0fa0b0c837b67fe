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

namespace braid {

struct RunnerOptions {
  Policy policy = Policy::Serial;
  PlanOptions plan;
  ExecOptions exec;
  AutoOptions autotune;  // for Policy::Auto (its exec options are taken from `exec`)
  // Fused projections (GraphOptions::fuse_projections). The runner fuses the model's
  // weights once, at construction; pass a model from fuse_projections to share that
  // work between runners (fusing it again copies nothing).
  bool fuse = false;
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

 private:
  struct Prepared {
    ModelGraph graph;
    Plan plan;
    std::unique_ptr<Executable> executable;
  };
  Prepared& prepare(int n_tokens);
  // Stages the inputs of the next eval and advances the position; returns the
  // prepared graph whose executable is to run.
  Prepared& stage(const std::vector<int32_t>& tokens);
  Prepared& run(const std::vector<int32_t>& tokens);

  // The model the graphs read: model_, or its fused form.
  const Model& graph_model() const { return fused_ ? *fused_ : model_; }

  const Model& model_;
  std::unique_ptr<const Model> fused_;  // with options_.fuse
  Backend& backend_;
  RunnerOptions options_;
  AutoReport auto_report_;
  std::map<int, Prepared> prepared_;
  int position_ = 0;
  Executable* submitted_ = nullptr;  // the executable of the last submit()
};

}  // namespace braid
