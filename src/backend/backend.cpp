// Backend selection by name. The CUDA backend is linked only when built (BRAID_HAVE_CUDA).
#include "braid/backend.h"

#include <fmt/format.h>

#ifdef BRAID_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace braid {

bool cuda_available() {
#ifdef BRAID_HAVE_CUDA
  return cuda::device_present();
#else
  return false;
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
