#include "backend/cuda/elementwise.cuh"

#include <algorithm>

#include "backend/cuda/quantize_x.cuh"

namespace braid::cuda {
namespace {

constexpr int kRowThreads = 256;

// With an int8 copy to write (swiglu), each thread quantizes the element it has just
// written; a warp's elements are 32 consecutive ones of a row, and a.ne[0] is then a
// multiple of 32, so each warp takes whole blocks.
template <Binary kOp>
__global__ void binary_kernel(StridedTensor a, StridedTensor b, float* out, int64_t rows, Int8Out int8) {
  wait_for_producers();
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const bool same_width = b.ne[0] == a.ne[0];
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const auto* a_row = reinterpret_cast<const float*>(a.row_data(row));
    const auto* b_row = reinterpret_cast<const float*>(broadcast_row_address(a, b, row));
    float* out_row = out + row * a.ne[0];
    for (int64_t i = first; i < a.ne[0]; i += step) {
      binary_element<kOp>(a_row, b_row, b.ne[0], same_width, out_row, i);
      if (int8.q != nullptr) store_int8_copy(int8, row, i, out_row[i]);
    }
  }
}

template <Unary kOp>
__global__ void unary_kernel(StridedTensor a, float factor, float* out, int64_t rows) {
  wait_for_producers();
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const auto* a_row = reinterpret_cast<const float*>(a.row_data(row));
    float* out_row = out + row * a.ne[0];
    for (int64_t i = first; i < a.ne[0]; i += step) unary_element<kOp>(a_row, factor, out_row, i);
  }
}

// Decode (few rows): one element a thread. Prompts: about eight elements of a row a thread.
dim3 elementwise_grid(int64_t columns, int64_t rows) {
  const int per_thread = rows >= 64 ? 8 : 1;
  return dim3(grid_size(columns, kRowThreads * per_thread), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
}

// One thread per element; any strides (dimension 0 too, for permuted views).
template <typename Src, typename Dst>
__global__ void copy_kernel(StridedTensor src, Dst* out, int64_t count) {
  wait_for_producers();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i;
    const int64_t i0 = rest % src.ne[0];
    rest /= src.ne[0];
    const int64_t i1 = rest % src.ne[1];
    rest /= src.ne[1];
    const int64_t i2 = rest % src.ne[2];
    const int64_t i3 = rest / src.ne[2];
    const auto* p = reinterpret_cast<const Src*>(src.data + i0 * src.nb[0] + i1 * src.nb[1] +
                                                 i2 * src.nb[2] + i3 * src.nb[3]);
    out[i] = from_float<Dst>(to_float(*p));
  }
}

template <typename Src>
void launch_copy_from(const NodeLaunch& launch, const StridedTensor& src, unsigned blocks) {
  const int64_t count = launch.node.elements();
  cudaStream_t stream = launch.ctx.stream;
  switch (launch.node.type) {
    case DType::F32:
      launch_kernel(copy_kernel<Src, float>, blocks, 256, 0, stream, src, reinterpret_cast<float*>(launch.out_data()),
                    count);
      return;
    case DType::F16:
      launch_kernel(copy_kernel<Src, __half>, blocks, 256, 0, stream, src, reinterpret_cast<__half*>(launch.out_data()),
                    count);
      return;
    case DType::BF16:
      launch_kernel(copy_kernel<Src, __nv_bfloat16>, blocks, 256, 0, stream, src,
                    reinterpret_cast<__nv_bfloat16*>(launch.out_data()), count);
      return;
    default:
      throw Error(launch.label() + ": unsupported destination type");
  }
}

}  // namespace

void launch_binary(const NodeLaunch& launch) {
  const StridedTensor a = strided(launch.src(0), launch.src_data(0));
  const StridedTensor b = strided(launch.src(1), launch.src_data(1));
  auto* out = reinterpret_cast<float*>(launch.out_data());
  const int64_t rows = a.rows();
  if (rows == 0 || a.ne[0] == 0) return;
  const dim3 grid = elementwise_grid(a.ne[0], rows);
  cudaStream_t stream = launch.ctx.stream;
  const Int8Out int8 = int8_out(launch.out_int8);
  switch (launch.node.op) {
    case Op::Add:
      launch_kernel(binary_kernel<Binary::Add>, grid, kRowThreads, 0, stream, a, b, out, rows, int8);
      break;
    case Op::Mul:
      launch_kernel(binary_kernel<Binary::Mul>, grid, kRowThreads, 0, stream, a, b, out, rows, int8);
      break;
    case Op::Swiglu:
      launch_kernel(binary_kernel<Binary::Swiglu>, grid, kRowThreads, 0, stream, a, b, out, rows, int8);
      break;
    default: throw Error(launch.label() + ": not a binary op");
  }
  launch.check_launch();
}

void launch_unary(const NodeLaunch& launch) {
  const StridedTensor a = strided(launch.src(0), launch.src_data(0));
  auto* out = reinterpret_cast<float*>(launch.out_data());
  const int64_t rows = a.rows();
  if (rows == 0 || a.ne[0] == 0) return;
  const dim3 grid = elementwise_grid(a.ne[0], rows);
  cudaStream_t stream = launch.ctx.stream;
  if (launch.node.op == Op::Scale) {
    launch_kernel(unary_kernel<Unary::Scale>, grid, kRowThreads, 0, stream, a, launch.node.params.f[0], out, rows);
  } else {
    launch_kernel(unary_kernel<Unary::Silu>, grid, kRowThreads, 0, stream, a, 0.0f, out, rows);
  }
  launch.check_launch();
}

bool copy_supported(const Graph& graph, TensorId node) {
  auto is_float = [](DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; };
  return is_float(graph[node].type) && is_float(graph[graph[node].src[0]].type);
}

void launch_copy(const NodeLaunch& launch) {
  const StridedTensor src = strided(launch.src(0), launch.src_data(0));
  const int64_t count = launch.node.elements();
  if (count == 0) return;
  // Grid-stride loop: enough blocks to fill the device, not one per element.
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 65536));
  switch (launch.src(0).type) {
    case DType::F32: launch_copy_from<float>(launch, src, blocks); break;
    case DType::F16: launch_copy_from<__half>(launch, src, blocks); break;
    case DType::BF16: launch_copy_from<__nv_bfloat16>(launch, src, blocks); break;
    default: throw Error(launch.label() + ": unsupported source type");
  }
  launch.check_launch();
}

}  // namespace braid::cuda
