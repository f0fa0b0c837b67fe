// HostCommunicator: the all-reduce of N simulated ranks (threads of one process), for
// testing tensor parallelism on the CPU. It plays NCCL's part: every rank calls
// all_reduce with its own buffer, in the same order of collectives, and each returns
// when every buffer holds the sum.
//
// The sum is added in rank order (buffer 0 + buffer 1 + ... + buffer N-1, element by
// element, in f32) whatever the threads' timing, so a run is deterministic and every
// rank gets the same bits -- which keeps the replicated parts of each rank's graph
// (norms, router, output head) bitwise identical across ranks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace braid {

class HostCommunicator {
 public:
  explicit HostCommunicator(int ranks);
  int ranks() const { return ranks_; }

  // Sums `count` floats over the ranks, in place. Every rank must pass the same count.
  // Throws braid::Error when aborted (before or while waiting) or on a count mismatch.
  void all_reduce(int rank, float* data, size_t count);
  // A rank failed: every rank waiting now, and every later call, throws instead of
  // waiting forever for it. A communicator stays aborted.
  void abort();
  bool aborted() const;

 private:
  // Blocks until all ranks arrived (a reusable barrier); throws when aborted.
  void arrive_and_wait();

  const int ranks_;
  mutable std::mutex mutex_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<float*> buffers_;  // per rank, published for the current collective
  std::vector<size_t> counts_;
  std::vector<float> sum_;       // the current collective's result, each rank writes its chunk
};

}  // namespace braid
