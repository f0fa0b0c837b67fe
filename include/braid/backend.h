// The backend interface. The core never sees CUDA: the CUDA backend lives behind this
// interface in src/backend/cuda and is created through make_backend("cuda").
//
// A Backend owns persistent memory: weights (uploaded once, found by tensor name) and
// state tensors (KV caches, zeroed once, found by name). Graphs of one model built for
// different batch sizes therefore share weights and cache. compile() binds a graph and a
// plan to the backend; the Executable runs it as many times as wanted.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "braid/graph.h"
#include "braid/plan.h"

namespace braid {

struct MemoryReport {
  size_t arena_bytes = 0;      // activations of this plan
  size_t workspace_bytes = 0;  // per-stream scratch (cuBLAS workspaces, split buffers)
  size_t inputs_bytes = 0;     // the input staging buffer
  size_t weights_bytes = 0;    // shared by every executable of the backend
  size_t state_bytes = 0;      // KV caches, shared likewise
  size_t total() const {
    return arena_bytes + workspace_bytes + inputs_bytes + weights_bytes + state_bytes;
  }
};

struct ExecOptions {
  bool cuda_graph = true;  // CUDA: capture the plan into one CUDA graph and replay it
  bool threads = true;     // CPU: one worker thread per plan stream (false: run steps in order)
  // CPU: the reference kernels (double accumulation, one thread per stream) instead of the
  // fast ones (int8 dot products, rows split over a thread pool). BRAID_CPU_REFERENCE=1 in
  // the environment forces the reference for every executable.
  bool cpu_reference = false;
  // CPU fast kernels, quantized weights: activations rounded to int8 blocks and integer
  // dot products (ggml's scheme: faster, but logits move by about 1e-3 nmse, enough to
  // change greedy text) instead of f32 activations. BRAID_CPU_INT8=1 forces it.
  bool cpu_int8_activations = false;
  // CUDA, for debugging: issue the plan without a CUDA graph and synchronize after every
  // node, so that an asynchronous kernel fault is reported with the node that caused it.
  bool sync_each_node = false;
  // CUDA, decode-sized graphs (one column a product; prompts and batches stay on the
  // CUDA-graph executor): run the whole plan as ONE persistent kernel whose resident blocks
  // take the plan's tiles in ticket order and wait on per-step completion counters instead
  // of kernel boundaries (src/backend/cuda/persistent, Note [Persistent protocol]). compile()
  // throws braid::Unsupported naming the first node it cannot run (quantized weights, MoE
  // routing, heads over 128). cuda_graph does not apply to it; sync_each_node waits for the
  // kernel after each run. The CPU ignores it.
  bool persistent = false;
  // CUDA: the int8 products read one int8 copy of their x, written by its producer (in
  // its own kernel for rms_norm, swiglu and attention), instead of each quantizing x in a
  // kernel of its own (Note [Shared int8 activations], src/backend/cuda/shared_int8.h).
  // Same bits either way; false is for comparing the two. The CPU ignores it.
  bool share_int8_x = true;
};

// When one plan step ran, for traces: microseconds from the start of the traced run.
struct StepTiming {
  int step = 0;
  TensorId node = kNoTensor;
  int stream = 0;
  double start_us = 0;
  double end_us = 0;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // Stages an input tensor's bytes; all staged inputs reach the device in one copy at
  // the start of the next run. bytes must equal the tensor's size.
  virtual void set_input(TensorId id, const void* data, size_t bytes) = 0;
  // Runs the plan once (asynchronously on devices that allow it).
  virtual void run() = 0;
  // Waits for the last run and copies a tensor's bytes out.
  virtual void read(TensorId id, void* dst, size_t bytes) = 0;
  // Waits for the last run and shows an f32 tensor's `count` values (all of them) without
  // copying them into the caller's memory: valid until the next run, or the next read_view
  // of the same tensor. The CPU
  // shows the tensor's own memory; CUDA copies into a pinned host buffer (one direct DMA,
  // where a read into pageable memory is staged by the driver). For per-step logits.
  virtual std::span<const float> read_view(TensorId id, size_t count);
  virtual void synchronize() = 0;
  virtual MemoryReport memory() const = 0;
  // Runs the plan once, eagerly (no CUDA graph), timing every step on its stream; for
  // `braid trace`. Timing adds overhead: compare steps within a trace, not with bench.
  virtual std::vector<StepTiming> trace_run() = 0;
  // Runs the plan `runs` times with the staged inputs and returns the median time of one
  // run in milliseconds. The default measures each run on the host (run + synchronize);
  // the CUDA backend times back-to-back runs on the device with events.
  virtual double time_runs_ms(int runs);
  // Runs the plan once with the staged inputs, waits for it and returns its time in
  // milliseconds: a real step that is also a measurement (the auto policy's guard). The
  // default uses the host clock (run + synchronize); CUDA times it with events.
  virtual double run_timed_ms();

 private:
  std::map<TensorId, std::vector<float>> views_;  // read_view's default: a copy through read()
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;         // "cpu", "cuda"
  virtual std::string device_name() const = 0;  // e.g. "NVIDIA H100 80GB HBM3"
  // Driver and runtime versions, where they matter to performance ("" otherwise): part of
  // the key under which the auto policy remembers its choice.
  virtual std::string driver_version() const { return {}; }
  virtual std::unique_ptr<Executable> compile(const Graph& graph, const Plan& plan,
                                              const ExecOptions& options = {}) = 0;
  virtual void reset_state() = 0;  // zeroes every state tensor (a new sequence)
  virtual size_t weights_bytes() const = 0;
  virtual size_t state_bytes() const = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
class HostCommunicator;
// A CPU backend that is rank `rank` of `communicator`'s group: its all_reduce nodes sum
// over the group (simulated tensor parallelism, see ParallelRunner). The communicator
// must outlive the backend.
std::unique_ptr<Backend> make_cpu_backend(HostCommunicator& communicator, int rank);
bool cuda_available();  // built with CUDA and a device is present
// Bytes in use on the current CUDA device (total minus free, as cudaMemGetInfo reports
// them: every allocation on the device, the driver's and other processes' included);
// 0 without CUDA or a device. For leak checks: compare before and after.
size_t device_memory_used();
// "cpu" or "cuda"; throws braid::Error when the backend is not available.
std::unique_ptr<Backend> make_backend(const std::string& name);

// The median of `values` (the mean of the middle two for an even count), the statistic
// every timing in braid reports. `values` must not be empty.
double median(std::vector<double> values);

}  // namespace braid
