// Backend selection by name (the CUDA backend is linked only when built, BRAID_HAVE_CUDA),
// and the host-timed default of Executable::time_runs_ms.
#include "braid/backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#ifdef BRAID_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace braid {

double Executable::time_runs_ms(int runs) {
  if (runs < 1) throw Error(fmt::format("time_runs_ms: {} runs (at least 1)", runs));
  std::vector<double> times;
  times.reserve(static_cast<size_t>(runs));
  synchronize();
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    synchronize();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return median(std::move(times));
}

std::span<const float> Executable::read_view(TensorId id, size_t count) {
  std::vector<float>& view = views_[id];
  view.resize(count);
  read(id, view.data(), count * sizeof(float));
  return view;
}

double Executable::run_timed_ms() {
  synchronize();
  const auto start = std::chrono::steady_clock::now();
  run();
  synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  BRAID_ASSERT(!values.empty());
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

bool cuda_available() {
#ifdef BRAID_HAVE_CUDA
  return cuda::device_present();
#else
  return false;
#endif
}

size_t device_memory_used() {
#ifdef BRAID_HAVE_CUDA
  return cuda::device_present() ? cuda::device_memory_used() : 0;
#else
  return 0;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "cuda") {
#ifdef BRAID_HAVE_CUDA
    if (!cuda::device_present()) throw Error("backend cuda: no CUDA device is present");
    return cuda::make_backend(0);
#else
    throw Error("backend cuda: this braid was built without CUDA (configure with -DBRAID_CUDA=ON)");
#endif
  }
  throw Error(fmt::format("unknown backend '{}' (expected cpu or cuda)", name));
}

}  // namespace braid
