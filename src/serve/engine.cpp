// Engine: see engine.h.
#include "serve/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <span>

#include "backend/cpu/thread_pool.h"
#include "braid/graph.h"

namespace braid::serve {

using Clock = std::chrono::steady_clock;

struct Engine::Active {
  Active(RequestId id, Job j)
      : handle(std::make_shared<RequestHandle>(id)), job(std::move(j)), sampler(job.sampling), text(job.stop) {
    for (int32_t t : job.prompt) sampler.accept(t);  // (as generate_tokens does, for the repetition penalty)
  }
  std::shared_ptr<RequestHandle> handle;
  Job job;
  Sampler sampler;
  TextStream text;
  int slot = -1;
  int32_t next = -1;  // the token sampled last, which the next decode step evaluates
  int generated = 0;
  std::vector<int32_t> tokens;  // generated
  bool ended = false;
  Clock::time_point arrived = Clock::now();
};

Engine::Engine(const Model& model, const Tokenizer& tokenizer, EngineOptions options, Metrics* metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics), scheduler_(options.scheduler) {
  if (tokenizer_.vocabulary().size() > model_.config.n_vocab) {
    throw Error(fmt::format("the tokenizer has {} tokens but the model only {}", tokenizer_.vocabulary().size(),
                            model_.config.n_vocab));
  }
  const SchedulerOptions& o = scheduler_.options();  // (with the step budget resolved)
  const int max_step_tokens = o.step_token_budget;
  // Each step finds the best logits of every row where they are and reads back only those,
  // unless a request's sampler needs whole rows (Sampler::needs_whole_row): on CUDA the
  // rows of a 64-sequence step at 128k tokens are 33 MB, copied while the GPU waits.
  // Only pieces can be chosen (a model may have more logits: a padded embedding).
  options_.runner.best_logits = {kSamplingBestLogits, tokenizer_.vocabulary().size()};
  try {
    backend_ = make_backend(options_.backend);
    runner_ = std::make_unique<BatchedRunner>(model_, *backend_, o.slots, max_step_tokens, options_.runner);
  } catch (const std::exception& e) {
    // Out of device or host memory, most likely: say what to lower.
    throw Error(fmt::format("serve: {} slots of {} positions could not be made on {} ({}): lower --parallel or --ctx",
                            o.slots, model_.config.n_ctx, options_.backend, e.what()));
  }
  if (metrics_) metrics_->set_scheduler(0, 0, slots());
  thread_ = std::thread(&Engine::loop, this);
}

Engine::~Engine() { stop(); }

std::shared_ptr<RequestHandle> Engine::submit(Job job) {
  std::shared_ptr<RequestHandle> handle;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return nullptr;
    const RequestId id = next_id_;
    if (!scheduler_.enqueue(id, static_cast<int>(job.prompt.size()))) return nullptr;
    ++next_id_;
    auto active = std::make_unique<Active>(id, std::move(job));
    handle = active->handle;
    arrived_.emplace(id, std::move(active));
    if (metrics_) metrics_->set_scheduler(scheduler_.waiting(), scheduler_.running(), slots());
  }
  wake_.notify_all();
  return handle;
}

void Engine::cancel(RequestId id) {
  {
    std::lock_guard lock(mutex_);
    scheduler_.cancel(id);
  }
  wake_.notify_all();
}

void Engine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (auto* requests : {&active_, &arrived_}) {
    for (auto& [id, a] : *requests) a->handle->finish(FinishReason::Error, {}, "the server is stopping");
    requests->clear();
  }
}

void Engine::loop() {
  while (true) {
    StepPlan plan;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !scheduler_.idle(); });
      if (stopping_) return;
      for (auto& [id, a] : arrived_) active_.emplace(id, std::move(a));
      arrived_.clear();
      plan = scheduler_.schedule();
      if (metrics_) metrics_->set_scheduler(scheduler_.waiting(), scheduler_.running(), slots());
    }
    run_step(plan);
    std::lock_guard lock(mutex_);
    scheduler_.completed(plan);
    for (const SlotWork& w : plan.work) {
      if (active_.at(w.id)->ended) scheduler_.finish(w.id);
    }
  }
}

void Engine::run_step(const StepPlan& plan) {
  for (const Retired& r : plan.retired) {
    auto it = active_.find(r.id);
    if (it == active_.end()) continue;
    if (r.cancelled) {
      end(*it->second, FinishReason::Cancelled);
      if (metrics_) metrics_->count_cancelled();
    }
    active_.erase(it);
  }
  for (const auto& [id, slot] : plan.admitted) {
    active_.at(id)->slot = slot;
    runner_->reset(slot);
  }
  if (plan.work.empty()) return;

  std::vector<BatchEntry> entries;
  for (const SlotWork& w : plan.work) {
    const Active& a = *active_.at(w.id);
    if (w.decode) {
      entries.push_back({w.slot, {a.next}});
    } else {
      const auto begin = a.job.prompt.begin() + w.begin;
      entries.push_back({w.slot, std::vector<int32_t>(begin, begin + w.count)});
    }
  }
  // The requests that get a token this step (the decoded and those whose prompt ends).
  std::vector<Active*> sampling(plan.work.size(), nullptr);
  const int64_t pieces = tokenizer_.vocabulary().size();
  const int64_t best = std::min<int64_t>(kSamplingBestLogits, pieces);
  bool rows = false;
  for (size_t i = 0; i < plan.work.size(); ++i) {
    const SlotWork& w = plan.work[i];
    if (!w.decode && metrics_) metrics_->add_prompt_tokens(w.count);
    if (!w.decode && !w.last_chunk) continue;
    sampling[i] = active_.at(w.id).get();
    rows |= sampling[i]->sampler.needs_whole_row(best, pieces);
  }
  BatchedRunner::Logits logits;
  const auto started = Clock::now();
  try {
    logits = runner_->step(entries, rows);
  } catch (const std::exception& e) {
    // (The checks before a request is queued make this a fault of the backend.)
    for (const SlotWork& w : plan.work) end(*active_.at(w.id), FinishReason::Error, e.what());
    return;
  }
  const auto evaluated = Clock::now();

  // Each sequence's next token, sampled and passed on side by side: each request has its own
  // sampler, text stream and handle, so nothing is shared but the (thread-safe) metrics.
  // On the pool the CPU backend uses for its nodes, idle between steps (a sample from a
  // whole row scans the vocabulary). The handlers that got text are woken by waker_, off
  // this thread.
  std::vector<std::shared_ptr<RequestHandle>> woken(plan.work.size());
  cpu::ThreadPool::shared().parallel_for(static_cast<int64_t>(plan.work.size()), [&](int64_t i) {
    Active* a = sampling[i];
    if (!a) return;
    int32_t token = -1;
    try {
      const auto row = static_cast<size_t>(i);
      token = logits.rows.empty() ? a->sampler.sample(logits.best[row])
                                  : a->sampler.sample(logits.rows[row].first(static_cast<size_t>(pieces)));
    } catch (const std::exception& e) {  // (not expected)
      end(*a, FinishReason::Error, e.what());
      return;
    }
    if (next_token(*a, token, runner_->position(plan.work[i].slot))) woken[i] = a->handle;
  });
  std::erase(woken, nullptr);
  waker_.wake_later(std::move(woken));
  if (metrics_) {
    metrics_->count_step(plan.tokens(), runner_->bucket_for(plan.tokens()),
                         std::chrono::duration<double>(evaluated - started).count(),
                         std::chrono::duration<double>(Clock::now() - evaluated).count(), rows);
  }
}

// The steps of generate_tokens after the sample, one token at a time. True when the
// request got text that its handler has not been woken for (the caller wakes it).
bool Engine::next_token(Active& a, int32_t token, int position) {
  if (!a.job.ignore_eos && tokenizer_.is_end_of_generation(token)) {
    end(a, FinishReason::Stop);
    return false;
  }
  a.sampler.accept(token);
  ++a.generated;
  a.tokens.push_back(token);
  if (metrics_) {
    metrics_->add_generated_tokens(1);
    if (a.generated == 1) {
      metrics_->observe_time_to_first_token(std::chrono::duration<double>(Clock::now() - a.arrived).count());
    }
  }
  const bool appended = a.handle->append_text(a.text.push(tokenizer_.token_to_piece(token)));
  if (a.text.stopped()) {
    end(a, FinishReason::Stop);  // (which wakes the handler)
    return false;
  }
  if (a.generated >= a.job.max_tokens || position >= model_.config.n_ctx) {
    end(a, FinishReason::Length);  // (no decode step for a token nobody will read)
    return false;
  }
  a.next = token;
  return appended;
}

void Engine::end(Active& a, FinishReason reason, std::string error) {
  if (a.ended) return;
  a.ended = true;
  if (reason == FinishReason::Stop || reason == FinishReason::Length) a.handle->push_text(a.text.finish());
  a.handle->finish(reason, {static_cast<int>(a.job.prompt.size()), a.generated}, std::move(error), std::move(a.tokens));
}

}  // namespace braid::serve
