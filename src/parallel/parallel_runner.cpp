#include "braid/parallel_runner.h"

#include <fmt/format.h>

#include <exception>
#include <mutex>
#include <thread>

namespace braid {

ParallelRunner::ParallelRunner(const Model& model, int ranks, RunnerOptions options, const std::string& backend)
    : model_(model) {
  if (ranks < 1) throw Error(fmt::format("parallel runner: {} ranks", ranks));
  if (options.policy == Policy::Auto && ranks > 1) {
    throw Error("parallel runner: the auto policy is not supported over several ranks (each rank would time its "
                "own candidates); choose a policy");
  }
  group_ = make_rank_group(backend, ranks);
  for (int r = 0; r < ranks; ++r) {
    auto rank = std::make_unique<Rank>();
    rank->shard = shard_model(model, ranks, r);
    rank->backend = group_->make_backend(r);
    rank->runner = std::make_unique<ModelRunner>(rank->shard, *rank->backend, options);
    ranks_.push_back(std::move(rank));
  }
}

ParallelRunner::~ParallelRunner() = default;

template <typename Fn>
void ParallelRunner::on_every_rank(Fn&& fn) {
  if (group_->aborted()) throw Error("parallel runner: a rank failed in an earlier run");
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int r) {
    try {
      group_->enter(r);
      fn(r);
    } catch (...) {
      {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      group_->abort();
    }
  };
  std::vector<std::thread> threads;
  for (int r = 1; r < ranks(); ++r) threads.emplace_back(run, r);
  run(0);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// ModelRunner's own checks, made once before the ranks start: a bad request is an error
// for the caller, not a failed rank that leaves the group aborted.
void ParallelRunner::check_tokens(const std::vector<int32_t>& tokens) const {
  const ModelConfig& c = ranks_.front()->shard.config;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) throw Error("eval: no tokens");
  if (position() + n > c.n_ctx) {
    throw Error(fmt::format("context full: {} tokens at position {} exceed the context of {}", n, position(),
                            c.n_ctx));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.n_vocab) throw Error(fmt::format("token id {} outside the vocabulary of {}", t, c.n_vocab));
  }
}

std::vector<std::vector<float>> ParallelRunner::eval_all_ranks(const std::vector<int32_t>& tokens) {
  check_tokens(tokens);
  std::vector<std::vector<float>> logits(ranks_.size());
  on_every_rank([&](int r) { logits[static_cast<size_t>(r)] = rank_runner(r).eval(tokens); });
  return logits;
}

std::vector<float> ParallelRunner::eval(const std::vector<int32_t>& tokens) {
  return std::move(eval_all_ranks(tokens).front());
}

void ParallelRunner::eval_no_logits(const std::vector<int32_t>& tokens) {
  check_tokens(tokens);
  on_every_rank([&](int r) { rank_runner(r).eval_no_logits(tokens); });
}

void ParallelRunner::prepare(const std::vector<int>& batch_sizes) {
  for (auto& rank : ranks_) rank->runner->prepare(batch_sizes);  // (builds and compiles; runs nothing)
}

void ParallelRunner::reset() {
  for (auto& rank : ranks_) rank->runner->reset();
}

int ParallelRunner::position() const { return ranks_.front()->runner->position(); }

}  // namespace braid
