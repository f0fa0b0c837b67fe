// Encoding a decode plan for the persistent kernel (persistent_program.h).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/persistent/persistent_kernel.cuh"
#include "backend/cuda/persistent/persistent_program.h"

namespace braid::cuda {
namespace {

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

size_t align_up(size_t bytes) { return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Bytes of partial results a split attention node needs (its own region of the scratch:
// tasks of different attention steps may run at once on a multi-stream plan).
size_t attention_partial_bytes(const Graph& graph, TensorId node) {
  return graph[node].op == Op::Attention ? align_up(attention_scratch_bytes(graph, node)) : 0;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The device descriptor of one step. `partial` is the node's scratch (split attention).
PersistentStep encode(const Graph& graph, TensorId node, const DeviceAddresses& memory, float* partial) {
  const Tensor& t = graph[node];
  const StreamContext no_stream{};
  const NodeLaunch launch{graph, t, memory, no_stream};
  PersistentStep step;
  auto* out = reinterpret_cast<float*>(launch.out_data());
  switch (t.op) {
    case Op::GetRows: {
      step.kind = TaskKind::GetRows;
      GetRowsTask& task = step.task.get_rows;
      task.table = strided(launch.src(0), launch.src_data(0));
      task.type = launch.src(0).type;
      task.ids = reinterpret_cast<const int32_t*>(launch.src_data(1));
      task.out = out;
      step.units = launch.src(1).ne[0] * task.table.ne[0];
      break;
    }
    case Op::RmsNorm: {
      step.kind = TaskKind::RmsNorm;
      RmsNormTask& task = step.task.norm;
      task.x = strided(launch.src(0), launch.src_data(0));
      task.weight = t.src.size() > 1 ? reinterpret_cast<const float*>(launch.src_data(1)) : nullptr;
      task.eps = t.params.f[0];
      task.lanes = rms_norm_lanes(task.x.ne[0]);
      task.out = out;
      step.units = task.x.ne[0] == 0 ? 0 : task.x.rows();
      break;
    }
    case Op::MulMat: {
      step.kind = TaskKind::Matvec;
      MatvecTask& task = step.task.matvec;
      const Tensor& w = launch.src(0);
      const Tensor& x = launch.src(1);
      task.args = MatvecArgs{};
      task.args.w = launch.src_data(0);
      task.args.w_row_stride = static_cast<int64_t>(w.nb[1]);
      task.args.x = reinterpret_cast<const float*>(launch.src_data(1));
      task.args.x_col_stride = static_cast<int64_t>(x.nb[1] / 4);
      task.args.out = out;
      task.args.k = w.ne[0];
      task.args.m = w.ne[1];
      task.args.n = static_cast<int>(x.ne[1]);
      task.args.plus = t.src.size() > 2 ? reinterpret_cast<const float*>(launch.src_data(2)) : nullptr;
      task.type = w.type;
      task.shape = matvec_shape(w.type, task.args);
      step.units = task.args.n == 0 ? 0 : task.args.m;
      break;
    }
    case Op::Rope:
    case Op::KvWrite: {
      const bool rope = t.op == Op::Rope;
      step.kind = rope ? TaskKind::Rope : TaskKind::KvWrite;
      RopeTask& task = step.task.rope;
      const size_t x_src = rope ? 0 : 1;
      task.x = strided(launch.src(x_src), launch.src_data(x_src));
      task.positions = reinterpret_cast<const int32_t*>(launch.src_data(x_src + 1));
      task.rope = rope_params(launch, rope ? 2 : 3);
      // kv_write aliases its cache: it writes through the cache operand's address.
      task.out = rope ? static_cast<void*>(out) : static_cast<void*>(memory[static_cast<size_t>(t.src[0])]);
      task.type = rope ? DType::F32 : launch.src(0).type;
      task.slots = rope ? 0 : launch.src(0).ne[2];
      task.groups = static_cast<int>(ceil_div(task.x.ne[1], kRopeHeadsPerBlock));
      step.units = task.x.ne[0] == 0 ? 0 : task.groups * task.x.ne[2];
      break;
    }
    case Op::Attention: {
      step.kind = TaskKind::Attention;
      AttentionTask& task = step.task.attention;
      task.args = AttentionArgs{attention_operands(launch)};
      const Split split = split_for(attended_span(t, launch.src(1)), launch.src(0).ne[2], launch.src(0).ne[0]);
      task.args.chunk = split.chunk;
      task.args.chunks = split.chunks;
      task.args.partial = split.chunks > 1 ? partial : nullptr;
      task.type = launch.src(1).type;
      step.units = task.args.head_dim == 0 ? 0 : static_cast<int64_t>(task.args.heads) * task.args.n;
      break;
    }
    case Op::Add:
    case Op::Mul:
    case Op::Swiglu:
    case Op::Scale:
    case Op::Silu: {
      const bool binary = t.op == Op::Add || t.op == Op::Mul || t.op == Op::Swiglu;
      step.kind = binary ? TaskKind::Binary : TaskKind::Unary;
      ElementwiseTask& task = step.task.elementwise;
      task.a = strided(launch.src(0), launch.src_data(0));
      task.b = binary ? strided(launch.src(1), launch.src_data(1)) : task.a;
      task.out = out;
      task.factor = t.op == Op::Scale ? t.params.f[0] : 0.0f;
      switch (t.op) {
        case Op::Add: task.op = static_cast<int>(Binary::Add); break;
        case Op::Mul: task.op = static_cast<int>(Binary::Mul); break;
        case Op::Swiglu: task.op = static_cast<int>(Binary::Swiglu); break;
        case Op::Scale: task.op = static_cast<int>(Unary::Scale); break;
        default: task.op = static_cast<int>(Unary::Silu); break;
      }
      step.units = task.a.rows() * task.a.ne[0];
      break;
    }
    default: throw Error(std::string("persistent executor: ") + op_name(t.op) + " '" + t.name + "' has no tile function");
  }
  return step;
}

template <typename T>
DeviceBuffer upload(const std::vector<T>& values, const char* what) {
  DeviceBuffer buffer = DeviceBuffer::allocate(std::max<size_t>(values.size(), 1) * sizeof(T), what);
  if (!values.empty()) {
    check(cudaMemcpy(buffer.data(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice), what);
  }
  return buffer;
}

}  // namespace

std::string persistent_kernel_report() {
  const PersistentKernelInfo info = persistent_kernel_info();
  return std::to_string(info.registers) + " registers, " + std::to_string(info.shared_bytes) +
         " bytes of shared memory, " + std::to_string(info.blocks_per_multiprocessor) + " blocks x " +
         std::to_string(info.multiprocessors) + " multiprocessors";
}

bool persistent_prefetch() {
  static const bool on = [] {
    const char* setting = std::getenv("BRAID_PERSISTENT_PREFETCH");
    return setting == nullptr || std::string(setting) != "0";
  }();
  return on;
}

TileOptions persistent_tile_options() {
  static const TileOptions options = [] {
    TileOptions o;
    o.rows_per_task = 4;
    o.elements_per_task = 128;
    if (const char* rows = std::getenv("BRAID_PERSISTENT_ROWS")) {
      const long value = std::strtol(rows, nullptr, 10);
      if (value > 0) o.rows_per_task = value;
    }
    if (const char* elements = std::getenv("BRAID_PERSISTENT_ELEMENTS")) {
      const long value = std::strtol(elements, nullptr, 10);
      if (value > 0) o.elements_per_task = value;
    }
    return o;
  }();
  return options;
}

bool persistent_decode_graph(const Graph& graph) {
  for (TensorId id : graph.compute_nodes()) {
    const Tensor& t = graph[id];
    if ((t.op == Op::MulMat || t.op == Op::MulMatId) && graph[t.src[1]].ne[1] > 1) return false;
    if (t.op == Op::Attention && graph[t.src[0]].ne[2] > 1) return false;
    if (t.op == Op::TopLogits) return false;  // a batched step's (BatchedRunner), even of one token
  }
  return true;
}

std::string persistent_unsupported(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  if (!supports(graph, node)) return "not supported by the CUDA backend";
  switch (t.op) {
    case Op::GetRows:
    case Op::RmsNorm:
    case Op::Rope:
    case Op::Add:
    case Op::Mul:
    case Op::Swiglu:
    case Op::Scale:
    case Op::Silu: return "";
    case Op::KvWrite: {
      const DType cache = graph[t.src[0]].type;
      return is_float_type(cache) ? "" : "cache type " + std::string(name(cache));
    }
    case Op::MulMat: {
      const Tensor& w = graph[t.src[0]];
      const Tensor& x = graph[t.src[1]];
      if (!is_float_type(w.type)) return "weights of type " + std::string(name(w.type)) + " (f32, f16 and bf16 only)";
      if (x.ne[1] != 1) return std::to_string(x.ne[1]) + " columns (one only)";
      return "";
    }
    case Op::Attention: {
      const Tensor& q = graph[t.src[0]];
      const DType cache = graph[t.src[1]].type;
      if (!is_float_type(cache)) return "cache type " + std::string(name(cache));
      if (!use_tiled(q.ne[0])) {
        return "head size " + std::to_string(q.ne[0]) + " (at most " + std::to_string(kTiledMaxHeadDim) + ")";
      }
      if (q.ne[2] != 1) return std::to_string(q.ne[2]) + " queries (one only)";
      return "";
    }
    default: return "no tile function for this op";
  }
}

PersistentProgram::PersistentProgram(const Graph& graph, const Plan& plan, const DeviceAddresses& addresses,
                                     const TileOptions& tiles) {
  for (const PlanStep& step : plan.steps) {
    const std::string why = persistent_unsupported(graph, step.node);
    if (!why.empty()) {
      const Tensor& t = graph[step.node];
      throw Unsupported(std::string("persistent executor: cannot run ") + op_name(t.op) + " '" + t.name + "': " + why);
    }
  }
  const PersistentSchedule schedule = make_persistent_schedule(graph, plan, tiles);
  const FlatSchedule flat = flatten(schedule);
  step_count_ = static_cast<int>(schedule.steps.size());
  task_count_ = schedule.task_count;

  size_t scratch_bytes = 0;
  for (const PlanStep& step : plan.steps) scratch_bytes += attention_partial_bytes(graph, step.node);
  attention_scratch_ = DeviceBuffer::allocate(scratch_bytes, "persistent attention scratch");
  std::vector<PersistentStep> steps;
  size_t scratch_offset = 0;
  for (size_t s = 0; s < schedule.steps.size(); ++s) {
    const TensorId node = schedule.steps[s].node;
    auto* partial = reinterpret_cast<float*>(attention_scratch_.data() + scratch_offset);
    scratch_offset += attention_partial_bytes(graph, node);
    PersistentStep step = encode(graph, node, addresses, partial);
    step.tiles = schedule.steps[s].tiles;
    step.first_task = schedule.steps[s].first_task;
    steps.push_back(step);
  }
  steps_ = upload(steps, "persistent steps");
  task_step_ = upload(flat.task_step, "persistent tickets");
  wait_begin_ = upload(flat.wait_begin, "persistent waits");
  waits_ = upload(flat.waits, "persistent waits");
  counters_ = DeviceBuffer::allocate(static_cast<size_t>(kFirstDoneCounter + step_count_) * sizeof(int32_t),
                                     "persistent counters");
  check(cudaMemset(counters_.data(), 0, counters_.bytes()), "cudaMemset (persistent counters)");

  const int multiprocessors = current_device_attribute(cudaDevAttrMultiProcessorCount);
  const int per_multiprocessor = persistent_blocks_per_multiprocessor();
  if (per_multiprocessor < 1) throw Error("persistent executor: the kernel fits no block on a multiprocessor");
  blocks_ = std::max(1, std::min(per_multiprocessor * multiprocessors, task_count_));
}

void PersistentProgram::launch(cudaStream_t stream) const {
  if (task_count_ == 0) return;
  PersistentKernelArgs args{};
  args.steps = reinterpret_cast<const PersistentStep*>(steps_.data());
  args.task_step = reinterpret_cast<const int32_t*>(task_step_.data());
  args.wait_begin = reinterpret_cast<const int32_t*>(wait_begin_.data());
  args.waits = reinterpret_cast<const int32_t*>(waits_.data());
  args.task_count = task_count_;
  args.step_count = step_count_;
  args.counters = reinterpret_cast<int32_t*>(counters_.data());
  args.prefetch = persistent_prefetch() ? 1 : 0;
  launch_persistent(args, blocks_, stream);
}

size_t PersistentProgram::device_bytes() const {
  return steps_.bytes() + task_step_.bytes() + wait_begin_.bytes() + waits_.bytes() + counters_.bytes() +
         attention_scratch_.bytes();
}

}  // namespace braid::cuda
