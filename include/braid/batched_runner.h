// BatchedRunner: several sequences of one model evaluated together, one graph per step
// (continuous batching, as `braid serve` and `braid bench --parallel` run them).
//
// Each step takes, for any subset of the sequences, a few tokens to append (a decode
// token, or a chunk of a prompt) and evaluates them all in one run of a batched graph
// (GraphOptions::sequences): every weight is read once for the whole batch, each token
// attends to its own sequence's region of the shared KV caches, and the step returns the
// logits of each entry's last token. Sequences join (reset) and leave between steps.
//
// The batch sizes are buckets -- 1, 2, 4, ... up to the largest step -- each built,
// planned (auto tunes each one) and compiled at construction, so a step replays a
// prepared executable (on CUDA, one captured graph); the tokens beyond a step's count
// are padding, which the graph keeps in a scratch region of the caches.
//
// Note [A token's arithmetic does not depend on its batch]
// On the CPU every product, norm and attention row is computed row by row with the same
// kernels whatever the batch, so a sequence's tokens come out bit for bit as they would
// alone (tests/batched_runner_test.cpp checks it); a greedy answer never changes with the
// company it keeps. On CUDA the product kernels differ between one token and many
// (matrix-vector vs tiled GEMM), so there the logits agree within rounding only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "braid/backend.h"
#include "braid/model.h"
#include "braid/runner.h"
#include "braid/sampling.h"

namespace braid {

// One sequence's share of a step: tokens appended at the sequence's position.
struct BatchEntry {
  int sequence = 0;
  std::vector<int32_t> tokens;
};

class BatchedRunner {
 public:
  // Up to `sequences` sequences, at most `max_step_tokens` tokens a step (every bucket up
  // to it is prepared and run once now; with the auto policy that times each one's
  // candidate plans).
  // The guard of RunnerOptions is not applied to batched graphs.
  BatchedRunner(const Model& model, Backend& backend, int sequences, int max_step_tokens, RunnerOptions options = {});

  // Evaluates one step: each entry's tokens at its sequence's position (which advances).
  // Returns the logits of each entry's last token, in the entries' order, as views
  // (Executable::read_view): valid until the next step. Throws
  // braid::Error (and changes nothing) for an empty step, a sequence out of range or
  // named twice, a bad token id, more tokens than max_step_tokens, or a full context.
  std::vector<std::span<const float>> step(const std::vector<BatchEntry>& entries);
  // step(), reading back each entry's best logits (RunnerOptions::best_logits; empty
  // without) and its whole row only when `rows` is set: on CUDA a 64-sequence step of a
  // 128k vocabulary copies 32 KB instead of 33 MB. Views, valid until the next step.
  struct Logits {
    std::vector<BestLogits> best;
    std::vector<std::span<const float>> rows;
  };
  Logits step(const std::vector<BatchEntry>& entries, bool rows);
  // step(), timing every plan step instead of returning logits (Executable::trace_run).
  std::vector<StepTiming> trace(const std::vector<BatchEntry>& entries);
  // The sequence starts again at position 0 (its old cache rows are never read again).
  void reset(int sequence);
  int position(int sequence) const { return positions_.at(static_cast<size_t>(sequence)); }

  const Model& model() const { return model_; }  // as given
  int sequences() const { return sequences_; }
  int max_step_tokens() const { return max_step_tokens_; }
  const std::vector<int>& buckets() const { return buckets_; }
  int bucket_for(int tokens) const;  // the batch size a step of this many tokens runs at
  const Plan& plan(int bucket) const { return prepared_.at(bucket).plan; }
  const Graph& graph(int bucket) const { return prepared_.at(bucket).graph.graph; }
  MemoryReport memory(int bucket) const { return prepared_.at(bucket).executable->memory(); }
  // Auto's report for each bucket (empty without the auto policy).
  const std::map<int, AutoReport>& auto_reports() const { return auto_reports_; }

 private:
  struct Prepared {
    ModelGraph graph;
    Plan plan;
    std::unique_ptr<Executable> executable;
  };
  // The inputs of a step of `count` tokens run at batch size `bucket`, padding included.
  struct Inputs {
    std::vector<int32_t> tokens, positions, cache_rows, logit_rows;
    void set(Executable& x, const ModelGraph& g) const;  // stages all four
  };
  void prepare(int bucket);
  void warm_up();  // runs every bucket once on padding alone
  // What p's last run left for each of `entries` entries.
  Logits read_logits(Prepared& p, size_t entries, bool rows);
  // Checks the step, stages its inputs on its bucket's executable and advances the positions.
  Prepared& stage(const std::vector<BatchEntry>& entries);
  Inputs inputs_for(const std::vector<BatchEntry>& entries, int bucket) const;
  int check(const std::vector<BatchEntry>& entries) const;  // the step's token count

  const Model& model_;
  std::unique_ptr<const Model> fused_;  // with options_.fuse
  Backend& backend_;
  RunnerOptions options_;
  int sequences_;
  int max_step_tokens_;
  std::vector<int> buckets_;
  std::map<int, Prepared> prepared_;
  std::map<int, AutoReport> auto_reports_;
  std::vector<int> positions_;  // per sequence
};

}  // namespace braid
