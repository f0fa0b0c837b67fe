#include "backend/cuda/nccl_group.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#ifdef BRAID_HAVE_NCCL
#include <nccl.h>
#endif

#include <atomic>
#include <mutex>
#include <numeric>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_ops.h"

namespace braid::cuda {

#ifdef BRAID_HAVE_NCCL
namespace {

void check_nccl(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) throw Error(fmt::format("{}: {}", what, ncclGetErrorString(result)));
}

class NcclGroup final : public RankGroup {
 public:
  explicit NcclGroup(int ranks) : comms_(static_cast<size_t>(ranks), nullptr) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess) {
      (void)cudaGetLastError();
      devices = 0;
    }
    if (devices < ranks) {
      throw Error(fmt::format("tensor parallelism over {} GPUs: {} CUDA devices present", ranks, devices));
    }
    std::vector<int> list(static_cast<size_t>(ranks));
    std::iota(list.begin(), list.end(), 0);
    check_nccl(ncclCommInitAll(comms_.data(), ranks, list.data()), "ncclCommInitAll");
  }

  ~NcclGroup() override {
    std::lock_guard lock(mutex_);
    if (aborted_) return;  // (abort freed them)
    for (ncclComm_t comm : comms_) (void)ncclCommDestroy(comm);
  }

  int ranks() const override { return static_cast<int>(comms_.size()); }

  std::unique_ptr<Backend> make_backend(int rank) override {
    return cuda::make_backend(rank, comms_.at(static_cast<size_t>(rank)));
  }

  void enter(int rank) override { check(cudaSetDevice(rank), "cudaSetDevice (rank)"); }

  // ncclCommAbort makes the collectives in flight on the other GPUs return, so their
  // threads' synchronizations end (with an error) instead of waiting forever.
  void abort() override {
    std::lock_guard lock(mutex_);
    if (aborted_) return;
    aborted_ = true;
    for (ncclComm_t comm : comms_) (void)ncclCommAbort(comm);
  }

  bool aborted() const override {
    std::lock_guard lock(mutex_);
    return aborted_;
  }

 private:
  std::vector<ncclComm_t> comms_;
  mutable std::mutex mutex_;
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<RankGroup> make_nccl_group(int ranks) { return std::make_unique<NcclGroup>(ranks); }

#else

std::unique_ptr<RankGroup> make_nccl_group(int ranks) {
  throw Error(fmt::format("tensor parallelism over {} GPUs needs NCCL, not found when this braid was built "
                          "(--backend cpu simulates the ranks)",
                          ranks));
}

#endif

}  // namespace braid::cuda
