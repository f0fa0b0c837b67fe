// ParallelRunner: a model split over N ranks (tensor parallelism): simulated ranks on the
// CPU, or one GPU per rank over NCCL (braid/rank_group.h).
//
// Each rank is a backend of one RankGroup running its shard of the model (shard_model)
// through its own ModelRunner, on its own thread; the shards' graphs sum their partial
// products with all_reduce nodes. On the CPU what runs is what N GPUs would run, so the
// partitioning and the plans are tested on any machine. One rank is exactly a ModelRunner.
#pragma once

#include <memory>
#include <vector>

#include "braid/rank_group.h"
#include "braid/runner.h"

namespace braid {

class ParallelRunner {
 public:
  // Throws braid::Error when the model does not split over `ranks` (shard_model), when the
  // backend ("cpu" or "cuda") cannot make the group (make_rank_group), or for the auto
  // policy (each rank would time its own plans, and the ranks' choices and timing runs
  // would disagree).
  ParallelRunner(const Model& model, int ranks, RunnerOptions options = {}, const std::string& backend = "cpu");
  ~ParallelRunner();

  // As ModelRunner::eval: logits of the last token (every rank computes the same).
  std::vector<float> eval(const std::vector<int32_t>& tokens);
  // Every rank's logits of one eval, in rank order (for tests: they must be equal).
  std::vector<std::vector<float>> eval_all_ranks(const std::vector<int32_t>& tokens);
  // As eval (no policy here needs batch sizes prepared ahead: auto is refused).
  std::vector<float> eval_continuing(const std::vector<int32_t>& tokens) { return eval(tokens); }
  void eval_no_logits(const std::vector<int32_t>& tokens);
  void prepare(const std::vector<int>& batch_sizes);
  // ModelRunner's timing pair, for bench: submit runs the step on every rank and returns
  // when all are done (the ranks' threads join), so wait has nothing left to wait for.
  void submit(const std::vector<int32_t>& tokens) { eval_no_logits(tokens); }
  void wait() {}
  const Model& model() const { return model_; }  // the whole model, as given
  void reset();
  int position() const;
  int ranks() const { return static_cast<int>(ranks_.size()); }
  ModelRunner& rank_runner(int rank) { return *ranks_.at(static_cast<size_t>(rank))->runner; }
  const Model& shard(int rank) const { return ranks_.at(static_cast<size_t>(rank))->shard; }

 private:
  struct Rank {
    Model shard;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<ModelRunner> runner;
  };
  // Runs fn(rank) on every rank at once (rank 0 on the calling thread); on a failure
  // aborts the group (the others would wait for the failed rank forever) and
  // rethrows the first error. After one, the ranks may disagree: the runner is unusable.
  template <typename Fn>
  void on_every_rank(Fn&& fn);
  void check_tokens(const std::vector<int32_t>& tokens) const;

  const Model& model_;
  std::unique_ptr<RankGroup> group_;
  std::vector<std::unique_ptr<Rank>> ranks_;  // (runners keep references to their shard)
};

}  // namespace braid
