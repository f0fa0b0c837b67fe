// make_rank_group: simulated CPU ranks here; the CUDA group lives with the CUDA backend
// (backend/cuda/nccl_group.h), linked only when built (BRAID_HAVE_CUDA).
#include "braid/rank_group.h"

#include <fmt/format.h>

#include "braid/host_communicator.h"

#ifdef BRAID_HAVE_CUDA
#include "backend/cuda/nccl_group.h"
#endif

namespace braid {
namespace {

class HostGroup final : public RankGroup {
 public:
  explicit HostGroup(int ranks) : communicator_(ranks) {}
  int ranks() const override { return communicator_.ranks(); }
  std::unique_ptr<Backend> make_backend(int rank) override { return make_cpu_backend(communicator_, rank); }
  void abort() override { communicator_.abort(); }
  bool aborted() const override { return communicator_.aborted(); }

 private:
  HostCommunicator communicator_;
};

}  // namespace

std::unique_ptr<RankGroup> make_rank_group(const std::string& backend, int ranks) {
  if (ranks < 1) throw Error(fmt::format("tensor parallelism: {} ranks", ranks));
  if (backend == "cpu") return std::make_unique<HostGroup>(ranks);
  if (backend == "cuda") {
#ifdef BRAID_HAVE_CUDA
    return cuda::make_nccl_group(ranks);
#else
    throw Error("backend cuda: this braid was built without CUDA (configure with -DBRAID_CUDA=ON)");
#endif
  }
  throw Error(fmt::format("unknown backend '{}' (expected cpu or cuda)", backend));
}

}  // namespace braid
