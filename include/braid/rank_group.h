// RankGroup: the ranks of tensor parallelism and the collective they share, for
// ParallelRunner. On the CPU, simulated ranks (threads) over one HostCommunicator; on CUDA,
// one GPU per rank over NCCL (communicators made together by ncclCommInitAll: one process
// drives every GPU of the host, a thread per rank).
#pragma once

#include <memory>
#include <string>

#include "braid/backend.h"

namespace braid {

class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int ranks() const = 0;
  // Rank `rank`'s backend: its all_reduce nodes sum over the group. The group must outlive it.
  virtual std::unique_ptr<Backend> make_backend(int rank) = 0;
  // Called on the thread that is about to run rank `rank`'s work (CUDA: makes the rank's
  // GPU the thread's current device).
  virtual void enter(int rank) { (void)rank; }
  // A rank failed: the others, waiting on it in a collective, stop waiting (they fail), and
  // the group refuses further work. A group stays aborted.
  virtual void abort() = 0;
  virtual bool aborted() const = 0;
};

// "cpu": `ranks` simulated ranks; "cuda": GPUs 0 .. ranks - 1 over NCCL. Throws braid::Error
// when the backend cannot (built without CUDA or NCCL, fewer GPUs than ranks).
std::unique_ptr<RankGroup> make_rank_group(const std::string& backend, int ranks);

}  // namespace braid
