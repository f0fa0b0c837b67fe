// The scheduler of `braid serve`: plain data, no model, no device (vLLM's style). It owns
// the waiting queue, the slots and the phase of every request, and each iteration of the
// engine's loop asks it for a StepPlan:
//
//   1. retire: finished and cancelled requests leave their slots (a cancelled waiting
//      request leaves the queue);
//   2. admit: waiting requests take free slots, first come first served;
//   3. step: one decode token for every running sequence past its prompt, then prompt
//      chunks of sequences still in prefill, oldest first, while they fit the step's token
//      budget -- so a long prompt is spread over steps and never stalls the running
//      sequences for more than one chunk.
//
// The engine runs the plan, then reports back: completed() after the step ran, finish()
// when a sequence ends (end of sequence, stop string, token limit), cancel() from any
// thread that holds the lock the engine gives it.
//
// Note [Prompt chunks are a function of the prompt alone]
// A prompt of n tokens is cut into chunks by prompt_chunks(n, chunk_size) -- powers of
// two, largest first -- whatever else runs: the budget only decides in which step a chunk
// runs, never how big it is. A sequence's arithmetic (batch sizes, positions) is then the
// same alone or beside fifteen others, which is why batching never changes a greedy answer.
// With the step's token budget it also bounds the batch a step evaluates, so the batched
// runner prepares every batch size once at start-up (the auto policy must tune before a
// sequence starts).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

namespace braid::serve {

using RequestId = uint64_t;

struct SchedulerOptions {
  int slots = 1;        // sequences that run at once
  int max_waiting = 64; // requests that may wait beyond the free slots
  int chunk_size = 32;  // largest prompt chunk; a power of two
  // Tokens a step may evaluate (decode tokens plus prompt chunks); 0: slots + chunk_size,
  // the least that always lets one full chunk run beside every decode.
  int step_token_budget = 0;
};

enum class Phase { Waiting, Prefill, Decode };

// One slot's work in a step: a prompt chunk, or one decode token.
struct SlotWork {
  RequestId id = 0;
  int slot = -1;
  bool decode = false;
  int begin = 0;  // prefill: the chunk is prompt tokens [begin, begin + count)
  int count = 1;
  bool last_chunk = false;  // prefill: the prompt ends with this chunk
};

struct Retired {
  RequestId id = 0;
  int slot = -1;  // -1: it never left the queue
  bool cancelled = false;
};

struct StepPlan {
  std::vector<Retired> retired;
  std::vector<std::pair<RequestId, int>> admitted;  // request, slot
  std::vector<SlotWork> work;                       // at most one entry per slot
  int tokens() const;                               // tokens the step evaluates
};

// The chunk sizes of a prompt of n tokens (see the Note above).
std::vector<int> prompt_chunks(int n, int chunk_size);

class Scheduler {
 public:
  // Throws braid::Error for options that cannot work (no slots, a chunk size that is no
  // power of two, a budget below slots + chunk_size).
  explicit Scheduler(SchedulerOptions options);

  // Queues a request with a prompt of `prompt_tokens` (> 0). False when the queue is full
  // (every free slot is spoken for and max_waiting requests wait): the caller answers 503.
  bool enqueue(RequestId id, int prompt_tokens);
  // Ends a request at the next schedule(), whatever its phase; unknown ids are ignored.
  void cancel(RequestId id);
  // The engine's word that a running sequence is done; it leaves at the next schedule().
  void finish(RequestId id);

  StepPlan schedule();
  // The plan ran: prompt chunks advance their sequences, a last chunk starts decoding.
  void completed(const StepPlan& plan);

  int waiting() const { return static_cast<int>(waiting_.size()); }
  int running() const { return static_cast<int>(running_.size()); }
  int free_slots() const { return static_cast<int>(free_slots_.size()); }
  bool idle() const { return waiting_.empty() && running_.empty(); }
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Sequence {
    RequestId id = 0;
    int prompt_tokens = 0;
    int prefilled = 0;
    int slot = -1;
    Phase phase = Phase::Waiting;
    bool cancelled = false;
    bool finished = false;
    uint64_t order = 0;  // arrival, for first come first served
  };
  SchedulerOptions options_;
  std::deque<Sequence> waiting_;
  std::map<RequestId, Sequence> running_;
  std::vector<int> free_slots_;  // lowest number last (taken first)
  uint64_t arrivals_ = 0;
};

}  // namespace braid::serve
