// Entry points of the CUDA backend for the core. This header includes no CUDA headers.
#pragma once

#include <memory>

#include "braid/backend.h"

namespace braid::cuda {

bool device_present();  // a CUDA device can be opened
std::unique_ptr<Backend> make_backend(int device);
size_t device_memory_used();  // of the current device; see braid::device_memory_used

}  // namespace braid::cuda
