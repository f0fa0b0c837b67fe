// The engine of `braid serve`: one thread that runs the scheduler's step plans.
//
// Every step is one run of a batched graph (BatchedRunner): the decode tokens of every
// running sequence and the prompt chunks the scheduler chose, each sequence in its own
// region of one KV cache, on one backend with one copy of the weights. Sequences join and
// leave between steps as the scheduler decides. The batch sizes the runner meets are
// bounded by the scheduler's step budget; each is prepared at start-up (see Note [Prompt
// chunks are a function of the prompt alone] in scheduler.h), which the auto policy
// needs: it tunes a batch size before any sequence starts or not at all.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "braid/backend.h"
#include "braid/batched_runner.h"
#include "braid/runner.h"
#include "braid/sampling.h"
#include "braid/tokenizer.h"
#include "serve/metrics.h"
#include "serve/request_handle.h"
#include "serve/scheduler.h"
#include "serve/text_stream.h"
#include "serve/waker.h"

namespace braid::serve {

struct EngineOptions {
  SchedulerOptions scheduler;
  RunnerOptions runner;
  std::string backend = "cpu";  // "cpu" or "cuda"
};

// A request ready to run: its prompt in tokens and how to sample and stop.
struct Job {
  std::vector<int32_t> prompt;
  int max_tokens = 1;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // the end-of-generation tokens do not end it (Request::ignore_eos)
};

class Engine {
 public:
  // The model and tokenizer must outlive the engine. Makes the backend and the batched
  // runner and prepares it (braid::Error, naming what to lower, when that fails).
  Engine(const Model& model, const Tokenizer& tokenizer, EngineOptions options, Metrics* metrics = nullptr);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; null when the queue is full. The prompt must fit the context with
  // room for one token (the caller checks: check_prompt_length).
  std::shared_ptr<RequestHandle> submit(Job job);
  // Frees the request's slot at the next step (its client went away); its handle gets
  // FinishReason::Cancelled.
  void cancel(RequestId id);
  // Ends every request (FinishReason::Error, "the server is stopping") and the thread.
  void stop();

  int slots() const { return options_.scheduler.slots; }
  int n_ctx() const { return model_.config.n_ctx; }

 private:
  struct Active;
  void loop();
  void run_step(const StepPlan& plan);
  // Hands a sampled token to its request: text appended to the handle, the request ended
  // where it should. True when the handler has text it was not woken for (waker_'s job).
  bool next_token(Active& a, int32_t token, int position);
  void end(Active& a, FinishReason reason, std::string error = {});

  const Model& model_;
  const Tokenizer& tokenizer_;
  EngineOptions options_;
  Metrics* metrics_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<BatchedRunner> runner_;

  std::mutex mutex_;  // guards scheduler_, arrived_, stopping_, next_id_
  std::condition_variable wake_;
  Scheduler scheduler_;
  std::map<RequestId, std::unique_ptr<Active>> arrived_;  // submitted, not yet seen by the loop
  RequestId next_id_ = 1;
  bool stopping_ = false;

  std::map<RequestId, std::unique_ptr<Active>> active_;  // the loop's own
  Waker waker_;  // (declared before thread_: the loop uses it until stop() joins)
  std::thread thread_;
};

}  // namespace braid::serve
