// The CUDA backend: one device, the weights and state resident on it, and executables
// that run plans on its streams (cuda_executable.h).
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include "backend/cuda/cuda_executable.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/exec_layout.h"
#include "backend/cuda/resident_store.h"

namespace braid::cuda {

namespace {

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, void* nccl_comm)
      : device_(device), nccl_comm_(nccl_comm), store_(std::make_shared<ResidentStore>()) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    cudaDeviceProp props{};
    check(cudaGetDeviceProperties(&props, device_), "cudaGetDeviceProperties");
    device_name_ = props.name;
    int driver = 0, runtime = 0;
    check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
    check(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
    driver_version_ = fmt::format("driver {} runtime {} sm_{}{}", driver, runtime, props.major, props.minor);
  }

  std::string name() const override { return "cuda"; }
  std::string device_name() const override { return device_name_; }
  std::string driver_version() const override { return driver_version_; }

  std::unique_ptr<Executable> compile(const Graph& graph, const Plan& plan, const ExecOptions& options) override {
    check(cudaSetDevice(device_), "cudaSetDevice");
    ExecLayout layout = lay_out(graph, plan);
    // One check of free memory for new weights, new state and the executable together,
    // before anything is allocated.
    store_->make_resident(graph, layout.device_bytes());
    return std::make_unique<CudaExecutable>(graph, plan, options, std::move(layout), store_, nccl_comm_);
  }

  void reset_state() override {
    check(cudaSetDevice(device_), "cudaSetDevice");
    store_->zero_state();
  }

  size_t weights_bytes() const override { return store_->weights_bytes(); }
  size_t state_bytes() const override { return store_->state_bytes(); }

 private:
  int device_;
  void* nccl_comm_;  // this rank's, or null (one GPU)
  std::string device_name_;
  std::string driver_version_;
  std::shared_ptr<ResidentStore> store_;
};

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not an error for the caller
    return 0;
  }
  return count;
}

}  // namespace

bool device_present() {
  static const bool present = device_count() > 0;
  return present;
}

size_t device_memory_used() {
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return total_bytes - free_bytes;
}

std::unique_ptr<Backend> make_backend(int device, void* nccl_comm) {
  const int count = device_count();
  if (device < 0 || device >= count) {
    throw Error(fmt::format("backend cuda: device {} does not exist ({} CUDA devices present)", device, count));
  }
  return std::make_unique<CudaBackend>(device, nccl_comm);
}

}  // namespace braid::cuda
