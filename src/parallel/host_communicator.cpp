#include "braid/host_communicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "braid/graph.h"

namespace braid {

HostCommunicator::HostCommunicator(int ranks) : ranks_(ranks) {
  if (ranks < 1) throw Error(fmt::format("host communicator: {} ranks", ranks));
  buffers_.assign(static_cast<size_t>(ranks), nullptr);
  counts_.assign(static_cast<size_t>(ranks), 0);
}

void HostCommunicator::arrive_and_wait() {
  std::unique_lock lock(mutex_);
  if (aborted_) throw Error("all_reduce: aborted (another rank failed)");
  const uint64_t generation = generation_;
  if (++arrived_ == ranks_) {
    arrived_ = 0;
    ++generation_;
    all_arrived_.notify_all();
    return;
  }
  all_arrived_.wait(lock, [&] { return generation_ != generation || aborted_; });
  if (generation_ == generation) throw Error("all_reduce: aborted (another rank failed)");
}

// Three phases between two barriers: publish the buffer; sum this rank's chunk of every
// element in rank order into sum_; copy the whole sum out. The second barrier keeps a
// rank from reading sum_ before every chunk is in; the next collective's first barrier
// keeps anyone from writing sum_ (or republishing a buffer) before all have copied out.
void HostCommunicator::all_reduce(int rank, float* data, size_t count) {
  if (rank < 0 || rank >= ranks_) throw Error(fmt::format("all_reduce: rank {} of {}", rank, ranks_));
  if (ranks_ == 1) return;
  {
    std::lock_guard lock(mutex_);
    buffers_[static_cast<size_t>(rank)] = data;
    counts_[static_cast<size_t>(rank)] = count;
  }
  arrive_and_wait();
  // After the barrier the published buffers and counts are stable until the next collective.
  if (std::any_of(counts_.begin(), counts_.end(), [&](size_t c) { return c != count; })) {
    abort();
    throw Error(fmt::format("all_reduce: rank {} sums {} floats but another rank a different count", rank, count));
  }
  if (rank == 0) {
    std::lock_guard lock(mutex_);
    if (sum_.size() < count) sum_.resize(count);
  }
  arrive_and_wait();  // sum_ is sized
  const size_t first = count * static_cast<size_t>(rank) / static_cast<size_t>(ranks_);
  const size_t last = count * static_cast<size_t>(rank + 1) / static_cast<size_t>(ranks_);
  for (size_t i = first; i < last; ++i) {
    float s = buffers_[0][i];
    for (int r = 1; r < ranks_; ++r) s += buffers_[static_cast<size_t>(r)][i];
    sum_[i] = s;
  }
  arrive_and_wait();
  std::memcpy(data, sum_.data(), count * sizeof(float));
}

void HostCommunicator::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  all_arrived_.notify_all();
}

bool HostCommunicator::aborted() const {
  std::lock_guard lock(mutex_);
  return aborted_;
}

}  // namespace braid
