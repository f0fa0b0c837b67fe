#include "backend/cuda/cuda_executable.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <exception>

namespace braid::cuda {

namespace {

std::string describe(const Tensor& t) { return fmt::format("'{}' ({})", t.name, op_name(t.op)); }

}  // namespace

CudaExecutable::CudaExecutable(const Graph& graph, const Plan& plan, const ExecOptions& options,
                               ExecLayout layout, std::shared_ptr<ResidentStore> store, void* nccl_comm)
    : graph_(graph), steps_(plan.steps), options_(options), layout_(std::move(layout)), store_(std::move(store)) {
  allocate_buffers();
  resolve_addresses(plan);
  create_streams_and_handles(plan, nccl_comm);
  extras_.resize(steps_.size());
  if (options_.persistent && persistent_decode_graph(graph_)) {
    persistent_ = std::make_unique<PersistentProgram>(graph_, plan, addresses_);
    return;
  }
  if (options_.share_int8_x && shared_int8_enabled()) share_int8_activations();
  // With nothing to run there is nothing to capture (and an empty capture buys nothing).
  if (options_.cuda_graph && !options_.sync_each_node && !steps_.empty()) capture();
}

CudaExecutable::~CudaExecutable() {
  // The device may still be running the last run, which uses every buffer this object
  // frees. Errors are ignored: a destructor cannot report them.
  for (const Stream& s : streams_) (void)cudaStreamSynchronize(s.get());
}

void CudaExecutable::allocate_buffers() {
  arena_ = DeviceBuffer::allocate(layout_.arena_bytes, "arena");
  staging_device_ = DeviceBuffer::allocate(layout_.input_bytes, "input staging");
  staging_host_ = PinnedBuffer::allocate(layout_.input_bytes, "input staging");
  const size_t streams = layout_.stream_used.size();
  scratch_.resize(streams);
  cublas_workspace_.resize(streams);
  for (size_t s = 0; s < streams; ++s) {
    if (!layout_.stream_used[s]) continue;
    scratch_[s] = DeviceBuffer::allocate(layout_.scratch_bytes[s], "stream scratch");
    if (layout_.stream_cublas[s]) {
      cublas_workspace_[s] = DeviceBuffer::allocate(kCublasWorkspaceBytes, "cuBLAS workspace");
    }
  }
}

// Addresses of every tensor, in id order: a view's source always has a smaller id than
// the view, so a view (or KvWrite) finds its source's address already resolved.
void CudaExecutable::resolve_addresses(const Plan& plan) {
  const int n = graph_.tensor_count();
  addresses_.assign(static_cast<size_t>(n), nullptr);
  for (TensorId id = 0; id < n; ++id) {
    const Tensor& t = graph_[id];
    uint8_t* address = nullptr;
    if (t.view_source != kNoTensor) {
      BRAID_ASSERT(t.view_source < id);
      uint8_t* base = addresses_[static_cast<size_t>(t.view_source)];
      address = base ? base + t.view_offset : nullptr;
    } else if (t.has(kInput)) {
      const InputSlot* slot = layout_.find_input(id);
      BRAID_ASSERT(slot != nullptr);
      address = staging_device_.data() ? staging_device_.data() + slot->offset : nullptr;
    } else if (t.has(kWeight) || t.has(kState)) {
      address = store_->find(t);
    } else if (lives_in_arena(t) && plan.arena_offset[static_cast<size_t>(id)] >= 0) {
      address = arena_.data() + plan.arena_offset[static_cast<size_t>(id)];
    }
    addresses_[static_cast<size_t>(id)] = address;
  }
  // Every tensor a step writes or reads must have memory; a gap here is a bug in the
  // layout or the store, reported before any kernel could write through a null pointer.
  for (const PlanStep& step : steps_) {
    const Tensor& t = graph_[step.node];
    std::vector<TensorId> touched = t.src;
    touched.push_back(step.node);
    for (TensorId id : touched) {
      if (!addresses_[static_cast<size_t>(id)] && graph_[id].bytes() > 0) {
        throw Error(fmt::format("compile: node {} uses tensor {} which has no device memory",
                                describe(t), describe(graph_[id])));
      }
    }
  }
}

void CudaExecutable::create_streams_and_handles(const Plan& plan, void* nccl_comm) {
  const auto streams = static_cast<size_t>(plan.stream_count);
  for (size_t s = 0; s < streams; ++s) {
    streams_.push_back(Stream::create_non_blocking());
    join_.push_back(Event::create_for_sync());
  }
  for (int e = 0; e < plan.event_count; ++e) events_.push_back(Event::create_for_sync());
  fork_ = Event::create_for_sync();
  copy_done_ = Event::create_for_sync();

  cublas_.resize(streams);
  contexts_.resize(streams);
  for (size_t s = 0; s < streams; ++s) {
    StreamContext& ctx = contexts_[s];
    ctx.stream = streams_[s].get();
    ctx.nccl_comm = nccl_comm;
    if (!layout_.stream_used[s]) continue;
    ctx.scratch = scratch_[s].data();
    ctx.scratch_bytes = scratch_[s].bytes();
    if (!layout_.stream_cublas[s]) continue;  // no node of this stream calls cuBLAS
    cublas_[s] = CublasHandle::create();
    cublasHandle_t h = cublas_[s].get();
    check(cublasSetStream(h, ctx.stream), "cublasSetStream");
    // An explicit workspace keeps cuBLAS from allocating one itself (which it may not do
    // under stream capture) and makes every stream's choice of algorithm the same.
    check(cublasSetWorkspace(h, cublas_workspace_[s].data(), cublas_workspace_[s].bytes()), "cublasSetWorkspace");
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    ctx.cublas = h;
  }
}

// Note [Shared int8 activations] (shared_int8.h).
void CudaExecutable::share_int8_activations() {
  const SharedInt8Copies plan = plan_shared_int8(graph_, steps_, addresses_);
  if (plan.copies.empty()) return;
  shared_int8_buffer_ = DeviceBuffer::allocate(plan.bytes, "int8 activations");
  for (const SharedInt8Copies::Copy& copy : plan.copies) {
    shared_int8_.push_back({shared_int8_buffer_.data() + copy.offset, copy.k, copy.columns, copy.nibble_order});
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    const auto node = static_cast<size_t>(steps_[i].node);
    if (plan.written_by[node] >= 0) extras_[i].writes = &shared_int8_[static_cast<size_t>(plan.written_by[node])];
    if (plan.read_by[node] >= 0) extras_[i].reads = &shared_int8_[static_cast<size_t>(plan.read_by[node])];
  }
}

void CudaExecutable::capture() {
  cudaStream_t s0 = origin();
  check(cudaStreamBeginCapture(s0, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  cudaGraph_t raw = nullptr;
  try {
    issue_plan();
  } catch (...) {
    // End the capture (it is invalid now) so that the streams are usable again.
    if (cudaStreamEndCapture(s0, &raw) == cudaSuccess && raw) (void)cudaGraphDestroy(raw);
    (void)cudaGetLastError();
    throw;
  }
  check(cudaStreamEndCapture(s0, &raw), "cudaStreamEndCapture");
  const CudaGraph graph(raw);
  cudaGraphExec_t exec = nullptr;
  check(cudaGraphInstantiate(&exec, graph.get(), 0), "cudaGraphInstantiate");
  graph_exec_ = GraphExec(exec);
  // Moves the graph's setup to the device now instead of on the first launch.
  check(cudaGraphUpload(exec, s0), "cudaGraphUpload");
}

void CudaExecutable::copy_inputs() {
  if (layout_.input_bytes == 0) return;
  check(cudaMemcpyAsync(staging_device_.data(), staging_host_.data(), layout_.input_bytes,
                        cudaMemcpyHostToDevice, origin()),
        "cudaMemcpyAsync (inputs)");
  check(cudaEventRecord(copy_done_.get(), origin()), "cudaEventRecord (inputs copied)");
}

void CudaExecutable::fork_side_streams() {
  if (layout_.used_stream_count() - (layout_.stream_used[0] ? 1 : 0) == 0) return;
  check(cudaEventRecord(fork_.get(), origin()), "cudaEventRecord (fork)");
  for (size_t s = 1; s < streams_.size(); ++s) {
    if (layout_.stream_used[s]) check(cudaStreamWaitEvent(streams_[s].get(), fork_.get(), 0), "cudaStreamWaitEvent (fork)");
  }
}

void CudaExecutable::join_side_streams() {
  for (size_t s = 1; s < streams_.size(); ++s) {
    if (!layout_.stream_used[s]) continue;
    check(cudaEventRecord(join_[s].get(), streams_[s].get()), "cudaEventRecord (join)");
    check(cudaStreamWaitEvent(origin(), join_[s].get(), 0), "cudaStreamWaitEvent (join)");
  }
}

// After a failed step: still join, so that stream 0 orders after whatever was issued
// (and a capture can end cleanly). Errors are ignored: the first one is being reported.
void CudaExecutable::join_side_streams_after_failure() noexcept {
  for (size_t s = 1; s < streams_.size(); ++s) {
    if (!layout_.stream_used[s]) continue;
    if (cudaEventRecord(join_[s].get(), streams_[s].get()) == cudaSuccess) {
      (void)cudaStreamWaitEvent(origin(), join_[s].get(), 0);
    }
  }
}

void CudaExecutable::issue_plan() {
  fork_side_streams();
  try {
    for (size_t i = 0; i < steps_.size(); ++i) launch_step(i);
  } catch (...) {
    join_side_streams_after_failure();
    throw;
  }
  join_side_streams();
}

void CudaExecutable::launch_step(size_t index) {
  const PlanStep& step = steps_[index];
  const StreamContext& ctx = contexts_[static_cast<size_t>(step.stream)];
  try {
    for (int e : step.waits) {
      check(cudaStreamWaitEvent(ctx.stream, events_[static_cast<size_t>(e)].get(), 0), "cudaStreamWaitEvent");
    }
    if (tracing_) check(cudaEventRecord(trace_start_[index].get(), ctx.stream), "cudaEventRecord (trace)");
    launch(graph_, step.node, addresses_, ctx, extras_[index]);
    if (tracing_) check(cudaEventRecord(trace_end_[index].get(), ctx.stream), "cudaEventRecord (trace)");
    if (options_.sync_each_node) check(cudaStreamSynchronize(ctx.stream), "kernel execution");
    if (step.record >= 0) {
      check(cudaEventRecord(events_[static_cast<size_t>(step.record)].get(), ctx.stream), "cudaEventRecord");
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("node {} on stream {}: {}", describe(graph_[step.node]), step.stream, e.what()));
  }
}

void CudaExecutable::set_input(TensorId id, const void* data, size_t bytes) {
  const InputSlot* slot = layout_.find_input(id);
  if (!slot) {
    throw Error(fmt::format("set_input: tensor {} is not an input of this graph",
                            id >= 0 && id < graph_.tensor_count() ? describe(graph_[id]) : std::to_string(id)));
  }
  if (bytes != slot->bytes) {
    throw Error(fmt::format("set_input: input '{}' {} takes {} bytes, got {}", graph_[id].name,
                            graph_[id].shape_string(), slot->bytes, bytes));
  }
  // The previous run's copy reads the staging bytes asynchronously: let it finish before
  // overwriting them (an event never recorded counts as done).
  check(cudaEventSynchronize(copy_done_.get()), "set_input: waiting for the previous input copy");
  if (bytes > 0) std::memcpy(staging_host_.data() + slot->offset, data, bytes);
}

void CudaExecutable::run() {
  copy_inputs();
  if (persistent_) {
    persistent_->launch(origin());
    if (options_.sync_each_node) check(cudaStreamSynchronize(origin()), "persistent kernel execution");
  } else if (graph_exec_) {
    check(cudaGraphLaunch(graph_exec_.get(), origin()), "cudaGraphLaunch");
  } else {
    issue_plan();
  }
}

void CudaExecutable::synchronize() {
  // Stream 0 joins every side stream at the end of a run: when it is idle, the run is done.
  check(cudaStreamSynchronize(origin()), "synchronize (a kernel of the last run failed)");
}

std::span<const float> CudaExecutable::read_view(TensorId id, size_t count) {
  if (id < 0 || id >= graph_.tensor_count()) throw Error(fmt::format("read_view: no tensor {} in this graph", id));
  if (graph_[id].type != DType::F32) throw Error(fmt::format("read_view: tensor {} is not f32", describe(graph_[id])));
  const size_t bytes = count * sizeof(float);
  PinnedBuffer& view = view_host_[id];
  if (view.bytes() < bytes) view = PinnedBuffer::allocate(bytes, "read_view");
  read(id, view.data(), bytes);  // the same checks; a DMA straight into pinned memory
  return {reinterpret_cast<const float*>(view.data()), count};
}

void CudaExecutable::read(TensorId id, void* dst, size_t bytes) {
  if (id < 0 || id >= graph_.tensor_count()) throw Error(fmt::format("read: no tensor {} in this graph", id));
  const Tensor& t = graph_[id];
  if (!t.is_contiguous()) {
    throw Error(fmt::format("read: tensor {} {} is not contiguous; read a contiguous copy", describe(t),
                            t.shape_string()));
  }
  if (bytes != t.bytes()) {
    throw Error(fmt::format("read: tensor {} {} has {} bytes, asked for {}", describe(t), t.shape_string(),
                            t.bytes(), bytes));
  }
  const uint8_t* src = addresses_[static_cast<size_t>(id)];
  if (bytes == 0) return;
  if (!src) throw Error(fmt::format("read: tensor {} has no device memory in this plan", describe(t)));
  synchronize();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, origin()), "cudaMemcpyAsync (read)");
  check(cudaStreamSynchronize(origin()), "cudaStreamSynchronize (read)");
}

MemoryReport CudaExecutable::memory() const {
  MemoryReport report;
  report.arena_bytes = layout_.arena_bytes;
  report.workspace_bytes =
      layout_.workspace_bytes() + shared_int8_buffer_.bytes() + (persistent_ ? persistent_->device_bytes() : 0);
  report.inputs_bytes = layout_.input_bytes;
  report.weights_bytes = store_->weights_bytes();
  report.state_bytes = store_->state_bytes();
  return report;
}

// Back-to-back runs, each bracketed by timing events on stream 0 (which every run joins
// into): each pair measures one run on the device, including host issue gaps only when
// the host cannot keep the device busy, which is then a real cost of the plan.
double CudaExecutable::time_runs_ms(int runs) {
  if (runs < 1) throw Error(fmt::format("time_runs_ms: {} runs (at least 1)", runs));
  std::vector<Event> start, stop;
  for (int i = 0; i < runs; ++i) {
    start.push_back(Event::create_for_timing());
    stop.push_back(Event::create_for_timing());
  }
  synchronize();
  for (int i = 0; i < runs; ++i) {
    check(cudaEventRecord(start[static_cast<size_t>(i)].get(), origin()), "cudaEventRecord (timing)");
    run();
    check(cudaEventRecord(stop[static_cast<size_t>(i)].get(), origin()), "cudaEventRecord (timing)");
  }
  check(cudaEventSynchronize(stop.back().get()), "time_runs_ms (a kernel failed)");
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start[static_cast<size_t>(i)].get(), stop[static_cast<size_t>(i)].get()),
          "cudaEventElapsedTime");
    times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  const size_t mid = times.size() / 2;
  return times.size() % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
}

double CudaExecutable::run_timed_ms() {
  if (!guard_start_) {
    guard_start_ = Event::create_for_timing();
    guard_stop_ = Event::create_for_timing();
  }
  check(cudaEventRecord(guard_start_.get(), origin()), "cudaEventRecord (timing)");
  run();
  check(cudaEventRecord(guard_stop_.get(), origin()), "cudaEventRecord (timing)");
  check(cudaEventSynchronize(guard_stop_.get()), "run_timed_ms (a kernel failed)");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, guard_start_.get(), guard_stop_.get()), "cudaEventElapsedTime");
  return ms;
}

std::vector<StepTiming> CudaExecutable::trace_run() {
  if (persistent_) {
    throw Error("trace: the persistent executor runs a step as one kernel, with no per-node timing; trace the graph "
                "executor");
  }
  if (!trace_origin_) {
    trace_origin_ = Event::create_for_timing();
    for (size_t i = 0; i < steps_.size(); ++i) {
      trace_start_.push_back(Event::create_for_timing());
      trace_end_.push_back(Event::create_for_timing());
    }
  }
  copy_inputs();
  check(cudaEventRecord(trace_origin_.get(), origin()), "cudaEventRecord (trace)");
  // The origin event precedes the fork, so every step's events come after it on the
  // device clock; times across streams are comparable (one device clock).
  tracing_ = true;
  try {
    issue_plan();
  } catch (...) {
    tracing_ = false;
    throw;
  }
  tracing_ = false;
  synchronize();
  std::vector<StepTiming> timings(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) {
    float start_ms = 0, end_ms = 0;
    check(cudaEventElapsedTime(&start_ms, trace_origin_.get(), trace_start_[i].get()), "cudaEventElapsedTime");
    check(cudaEventElapsedTime(&end_ms, trace_origin_.get(), trace_end_[i].get()), "cudaEventElapsedTime");
    timings[i] = StepTiming{static_cast<int>(i), steps_[i].node, steps_[i].stream, start_ms * 1e3, end_ms * 1e3};
  }
  return timings;
}

}  // namespace braid::cuda
