// One graph and plan bound to the CUDA device: the executor.
//
// Note [Issue sequence]
// Every run issues the same sequence on the plan's streams (stream 0 is the origin):
//   1. stream 0: one host-to-device copy of the input staging buffer (all inputs);
//   2. fork: stream 0 records `fork`, every other used stream waits on it;
//   3. the plan's steps in order: wait on the step's events, launch the node on its
//      stream, record its event;
//   4. join: every other used stream records its `join` event, stream 0 waits on each.
// The fork keeps a side stream from reading inputs before the copy lands, or from
// overwriting arena bytes that the previous run still reads; the join makes "stream 0 is
// idle" mean "the run is done", which read() and the next run's copy rely on. Both are
// also what stream capture requires: a side stream joins a capture only by waiting on an
// event recorded in it, and must be joined back before the capture ends (else error 904).
//
// Graph mode captures steps 2-4 once (thread-local capture mode, so CUDA calls of other
// threads cannot invalidate it), instantiates the graph, and each run is the copy plus
// one cudaGraphLaunch on stream 0. Eager mode issues steps 2-4 every run. Addresses are
// fixed at construction: the arena, staging buffer, scratch, workspaces and the
// backend's weights never move while the executable lives.
//
// Persistent mode (ExecOptions::persistent, decode-sized graphs): the same buffers and
// addresses, but each run is the copy plus one launch of the persistent kernel on stream 0
// (persistent/persistent_program.h), which runs every step; nothing is captured.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_raii.h"
#include "backend/cuda/exec_layout.h"
#include "backend/cuda/persistent/persistent_program.h"
#include "backend/cuda/resident_store.h"
#include "backend/cuda/shared_int8.h"
#include "braid/backend.h"

namespace braid::cuda {

class CudaExecutable final : public Executable {
 public:
  // `layout` comes from lay_out(graph, plan); the store already holds the graph's
  // weights and state (ResidentStore::make_resident). `nccl_comm`: the rank's communicator
  // for all_reduce nodes over several GPUs (StreamContext::nccl_comm), or null.
  CudaExecutable(const Graph& graph, const Plan& plan, const ExecOptions& options, ExecLayout layout,
                 std::shared_ptr<ResidentStore> store, void* nccl_comm = nullptr);
  ~CudaExecutable() override;

  void set_input(TensorId id, const void* data, size_t bytes) override;
  void run() override;
  void read(TensorId id, void* dst, size_t bytes) override;
  std::span<const float> read_view(TensorId id, size_t count) override;
  void synchronize() override;
  MemoryReport memory() const override;
  double time_runs_ms(int runs) override;
  double run_timed_ms() override;
  // One eager run with a timing event before and after every step on its stream.
  std::vector<StepTiming> trace_run() override;

  bool uses_cuda_graph() const { return static_cast<bool>(graph_exec_); }
  bool uses_persistent_kernel() const { return static_cast<bool>(persistent_); }

 private:
  void allocate_buffers();
  void resolve_addresses(const Plan& plan);
  void create_streams_and_handles(const Plan& plan, void* nccl_comm);
  void share_int8_activations();
  void capture();
  void copy_inputs();
  void issue_plan();
  void launch_step(size_t index);
  void fork_side_streams();
  void join_side_streams();
  void join_side_streams_after_failure() noexcept;
  cudaStream_t origin() const { return streams_[0].get(); }

  Graph graph_;
  std::vector<PlanStep> steps_;
  ExecOptions options_;
  ExecLayout layout_;
  std::shared_ptr<ResidentStore> store_;

  // Memory, declared first so that it is freed last.
  DeviceBuffer arena_;
  DeviceBuffer staging_device_;
  PinnedBuffer staging_host_;
  std::map<TensorId, PinnedBuffer> view_host_;  // read_view's copies, one a tensor shown
  std::vector<DeviceBuffer> scratch_;           // per plan stream (empty when unused)
  std::vector<DeviceBuffer> cublas_workspace_;  // per plan stream (empty when unused)
  DeviceBuffer shared_int8_buffer_;             // the activations' int8 copies
  DeviceAddresses addresses_;

  std::vector<Stream> streams_;  // per plan stream
  std::vector<Event> events_;    // the plan's events
  Event fork_;
  std::vector<Event> join_;  // per plan stream (unused for stream 0)
  Event copy_done_;          // the staging buffer may be rewritten once it has fired
  std::vector<CublasHandle> cublas_;  // per plan stream (empty when unused)
  std::vector<StreamContext> contexts_;
  std::vector<SharedInt8> shared_int8_;  // per copy of shared_int8_buffer_
  std::vector<LaunchExtras> extras_;     // per step: the copy it writes or reads
  // Timing events of trace_run, created on its first call; `tracing_` is set during it.
  Event trace_origin_;
  std::vector<Event> trace_start_, trace_end_;  // per step
  bool tracing_ = false;
  Event guard_start_, guard_stop_;  // run_timed_ms, created on its first call
  std::unique_ptr<PersistentProgram> persistent_;  // persistent mode only
  GraphExec graph_exec_;  // declared last: destroyed before everything it refers to
};

}  // namespace braid::cuda
