// Entry points of the CUDA backend for the core. This header includes no CUDA headers.
#pragma once

#include <memory>

#include "braid/backend.h"

namespace braid::cuda {

bool device_present();  // a CUDA device can be opened
// The backend of `device`; with `nccl_comm` (an ncclComm_t) its all_reduce nodes sum over
// that communicator's ranks (nccl_group.h), which must outlive the backend.
std::unique_ptr<Backend> make_backend(int device, void* nccl_comm = nullptr);
size_t device_memory_used();  // of the current device; see braid::device_memory_used

}  // namespace braid::cuda
