// A few persistent threads that run one step's independent pieces of work (each slot's
// evaluation) at once. The caller's thread takes part, so a pool of 1 runs everything in
// order on the caller. Threads are started once: a step is far too short to start them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace braid::serve {

class StepPool {
 public:
  explicit StepPool(int threads);  // threads >= 1, the caller's included
  ~StepPool();
  StepPool(const StepPool&) = delete;
  StepPool& operator=(const StepPool&) = delete;

  // Calls work(i) for every i in [0, count) and returns when all are done. work must not
  // throw (catch inside).
  void run(int count, const std::function<void(int)>& work);

 private:
  void worker();
  void take_items();
  std::mutex mutex_;
  std::condition_variable start_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* work_ = nullptr;
  int count_ = 0;
  int next_ = 0;       // the next item to take
  int finished_ = 0;   // items done
  uint64_t round_ = 0; // bumped per run(), so a worker takes part once per round
  bool quit_ = false;
};

}  // namespace braid::serve
