// The CPU backend: the kernels of cpu_ops.h driven by a plan. Each plan stream is a worker
// thread and each plan event a HostEvent, so a plan that misses a wait or reuses memory
// too early shows up here as a wrong result or a ThreadSanitizer report, not only on a
// GPU. The fast kernels (the default) split a node's rows over the shared ThreadPool, to
// which every stream thread submits; ExecOptions::cpu_reference selects the reference.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/host_event.h"
#include "backend/cpu/thread_pool.h"
#include "braid/backend.h"
#include "braid/host_communicator.h"

namespace braid {
namespace {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using HostBuffer = std::unique_ptr<uint8_t[], AlignedFree>;

HostBuffer allocate(size_t bytes, bool zero) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kArenaAlignment, rounded));
  if (!p) throw Error(fmt::format("out of host memory: needed {} bytes", rounded));
  if (zero) std::memset(p, 0, rounded);
  return HostBuffer(p);
}

class CpuBackend;

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(CpuBackend& backend, const Graph& graph, const Plan& plan, const ExecOptions& options);
  void set_input(TensorId id, const void* data, size_t bytes) override;
  void run() override;
  void read(TensorId id, void* dst, size_t bytes) override;
  std::span<const float> read_view(TensorId id, size_t count) override;
  void synchronize() override {}
  MemoryReport memory() const override;
  std::vector<StepTiming> trace_run() override;

 private:
  void run_all();
  void run_stream(int stream);
  void compute(TensorId node);
  void compute_kernel(TensorId node) {
    if (fast_) return cpu::compute_fast(graph_, node, memory_, cpu::ThreadPool::shared(), fast_options_);
    cpu::compute(graph_, node, memory_);
  }
  const Tensor& checked(TensorId id, size_t bytes, TensorFlag flag, const char* what) const;

  CpuBackend& backend_;
  Graph graph_;
  Plan plan_;
  ExecOptions options_;
  bool fast_;
  cpu::FastKernelOptions fast_options_;
  HostBuffer arena_;
  std::map<TensorId, HostBuffer> inputs_;
  size_t inputs_bytes_ = 0;
  cpu::Addresses memory_;
  std::vector<std::vector<int>> stream_steps_;  // per stream: indices into plan_.steps
  std::vector<std::unique_ptr<cpu::HostEvent>> events_;
  std::vector<StepTiming>* timings_ = nullptr;  // set while tracing: one entry per step
  std::chrono::steady_clock::time_point trace_start_;
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend() = default;
  CpuBackend(HostCommunicator& communicator, int rank) : communicator_(&communicator), rank_(rank) {
    if (rank < 0 || rank >= communicator.ranks()) {
      throw Error(fmt::format("cpu backend: rank {} of a group of {}", rank, communicator.ranks()));
    }
  }
  // The group this backend's all_reduce nodes sum over; null outside tensor parallelism.
  HostCommunicator* communicator() const { return communicator_; }
  int rank() const { return rank_; }

  std::string name() const override { return "cpu"; }
  std::string device_name() const override {
    const int threads = cpu::ThreadPool::shared().threads();  // BRAID_CPU_THREADS, else the hardware's
    return fmt::format("CPU ({} thread{})", threads, threads == 1 ? "" : "s");
  }
  std::unique_ptr<Executable> compile(const Graph& graph, const Plan& plan, const ExecOptions& options) override {
    return std::make_unique<CpuExecutable>(*this, graph, plan, options);
  }
  void reset_state() override {
    for (auto& [name, state] : states_) std::memset(state.buffer.get(), 0, state.bytes);
  }
  size_t weights_bytes() const override { return weights_bytes_; }
  size_t state_bytes() const override {
    size_t total = 0;
    for (const auto& [name, state] : states_) total += state.bytes;
    return total;
  }

  // Weights are used in place from host memory; their size is counted once per name.
  uint8_t* weight(const Tensor& t) {
    if (!t.host_data) throw Error(fmt::format("weight {} has no data (graph built from shapes only)", t.name));
    if (weight_names_.emplace(t.name, t.bytes()).second) weights_bytes_ += t.bytes();
    return const_cast<uint8_t*>(static_cast<const uint8_t*>(t.host_data));
  }
  // State tensors are allocated zeroed on first use and shared by name across graphs.
  uint8_t* state(const Tensor& t) {
    auto it = states_.find(t.name);
    if (it == states_.end()) {
      it = states_.emplace(t.name, State{allocate(t.bytes(), true), t.bytes()}).first;
    } else if (it->second.bytes != t.bytes()) {
      throw Error(fmt::format("state {} is {} bytes here but {} bytes in an earlier graph", t.name,
                              t.bytes(), it->second.bytes));
    }
    return it->second.buffer.get();
  }

 private:
  struct State {
    HostBuffer buffer;
    size_t bytes;
  };
  HostCommunicator* communicator_ = nullptr;
  int rank_ = 0;
  std::map<std::string, State> states_;
  std::map<std::string, size_t> weight_names_;
  size_t weights_bytes_ = 0;
};

CpuExecutable::CpuExecutable(CpuBackend& backend, const Graph& graph, const Plan& plan,
                             const ExecOptions& options)
    : backend_(backend),
      graph_(graph),
      plan_(plan),
      options_(options),
      fast_(!options.cpu_reference && !cpu::reference_forced_by_environment()) {
  fast_options_.int8_activations = options.cpu_int8_activations || cpu::int8_forced_by_environment();
  BRAID_ASSERT(graph_.finalized());
  BRAID_ASSERT(static_cast<int>(plan_.arena_offset.size()) == graph_.tensor_count());
  arena_ = allocate(plan_.arena_bytes, false);
  memory_.assign(static_cast<size_t>(graph_.tensor_count()), nullptr);
  // Ids point backwards, so a view's source has its address before the view does.
  for (const Tensor& t : graph_.tensors()) {
    uint8_t*& address = memory_[static_cast<size_t>(t.id)];
    if (t.view_source != kNoTensor) {
      uint8_t* base = memory_[static_cast<size_t>(t.view_source)];
      address = base ? base + t.view_offset : nullptr;
    } else if (t.has(kWeight)) {
      address = backend_.weight(t);
    } else if (t.has(kState)) {
      address = backend_.state(t);
    } else if (t.has(kInput)) {
      auto& buffer = inputs_[t.id] = allocate(t.bytes(), true);
      inputs_bytes_ += t.bytes();
      address = buffer.get();
    } else if (plan_.arena_offset[static_cast<size_t>(t.id)] >= 0) {
      address = arena_.get() + plan_.arena_offset[static_cast<size_t>(t.id)];
    }
  }
  for (TensorId id : graph_.compute_nodes()) {
    if (!memory_[static_cast<size_t>(id)]) {
      throw Error(fmt::format("plan {} gives node {} no memory", plan_.policy, graph_[id].name));
    }
  }
  stream_steps_.resize(static_cast<size_t>(plan_.stream_count));
  for (size_t i = 0; i < plan_.steps.size(); ++i) {
    stream_steps_.at(static_cast<size_t>(plan_.steps[i].stream)).push_back(static_cast<int>(i));
  }
  for (int e = 0; e < plan_.event_count; ++e) events_.push_back(std::make_unique<cpu::HostEvent>());
}

void CpuExecutable::compute(TensorId node) {
  if (graph_[node].op == Op::AllReduce && backend_.communicator() != nullptr) {
    return cpu::all_reduce_with(graph_, node, memory_, *backend_.communicator(), backend_.rank());
  }
  compute_kernel(node);
}

const Tensor& CpuExecutable::checked(TensorId id, size_t bytes, TensorFlag flag, const char* what) const {
  if (id < 0 || id >= graph_.tensor_count()) throw Error(fmt::format("{}: no tensor {}", what, id));
  const Tensor& t = graph_[id];
  if (flag && !t.has(flag)) throw Error(fmt::format("{}: {} is not an input", what, t.name));
  if (bytes != t.bytes() || !t.is_contiguous()) {
    throw Error(fmt::format("{}: {} holds {} bytes, not {}", what, t.name, t.bytes(), bytes));
  }
  return t;
}

void CpuExecutable::set_input(TensorId id, const void* data, size_t bytes) {
  checked(id, bytes, kInput, "set_input");
  std::memcpy(inputs_.at(id).get(), data, bytes);
}

void CpuExecutable::run_stream(int stream) {
  try {
    for (int index : stream_steps_[static_cast<size_t>(stream)]) {
      const PlanStep& step = plan_.steps[static_cast<size_t>(index)];
      for (int e : step.waits) events_[static_cast<size_t>(e)]->wait();
      if (failed_) return;
      const auto start = std::chrono::steady_clock::now();
      compute(step.node);
      if (timings_) {
        auto us = [&](auto t) { return std::chrono::duration<double, std::micro>(t - trace_start_).count(); };
        (*timings_)[static_cast<size_t>(index)] =
            StepTiming{index, step.node, step.stream, us(start), us(std::chrono::steady_clock::now())};
      }
      if (step.record >= 0) events_[static_cast<size_t>(step.record)]->record();
    }
  } catch (...) {
    {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    failed_ = true;
    for (auto& event : events_) event->record();  // release every waiter
  }
}

void CpuExecutable::run() {
  if (!options_.threads || plan_.stream_count == 1) {
    for (const PlanStep& step : plan_.steps) compute(step.node);
    return;
  }
  run_all();
}

// Every stream on its own thread; stream 0 on the caller's.
void CpuExecutable::run_all() {
  failed_ = false;
  error_ = nullptr;
  for (auto& event : events_) event->reset();
  std::vector<std::thread> workers;
  for (int s = 1; s < plan_.stream_count; ++s) workers.emplace_back(&CpuExecutable::run_stream, this, s);
  run_stream(0);
  for (auto& w : workers) w.join();
  if (error_) std::rethrow_exception(error_);
}

std::vector<StepTiming> CpuExecutable::trace_run() {
  std::vector<StepTiming> timings(plan_.steps.size());
  timings_ = &timings;
  trace_start_ = std::chrono::steady_clock::now();
  try {
    run_all();
  } catch (...) {
    timings_ = nullptr;
    throw;
  }
  timings_ = nullptr;
  return timings;
}

void CpuExecutable::read(TensorId id, void* dst, size_t bytes) {
  checked(id, bytes, TensorFlag{}, "read");
  std::memcpy(dst, memory_[static_cast<size_t>(id)], bytes);
}

std::span<const float> CpuExecutable::read_view(TensorId id, size_t count) {
  const Tensor& t = checked(id, count * sizeof(float), TensorFlag{}, "read_view");
  if (t.type != DType::F32) throw Error(fmt::format("read_view: tensor {} is not f32", t.name));
  return {reinterpret_cast<const float*>(memory_[static_cast<size_t>(id)]), count};
}

MemoryReport CpuExecutable::memory() const {
  MemoryReport report;
  report.arena_bytes = plan_.arena_bytes;
  report.inputs_bytes = inputs_bytes_;
  report.weights_bytes = backend_.weights_bytes();
  report.state_bytes = backend_.state_bytes();
  return report;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

std::unique_ptr<Backend> make_cpu_backend(HostCommunicator& communicator, int rank) {
  return std::make_unique<CpuBackend>(communicator, rank);
}

}  // namespace braid
