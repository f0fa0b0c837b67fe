#include "backend/cuda/elementwise.cuh"

namespace braid::cuda {
namespace {

constexpr int kRowThreads = 256;

enum class Binary { Add, Mul, Swiglu };
enum class Unary { Scale, Silu };

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

template <Binary kOp>
__device__ __forceinline__ float apply(float a, float b) {
  if constexpr (kOp == Binary::Add) return a + b;
  if constexpr (kOp == Binary::Mul) return a * b;
  return silu(a) * b;
}

// One block per row of a; b's indices wrap (broadcast by repetition).
template <Binary kOp>
__global__ void binary_kernel(StridedTensor a, StridedTensor b, float* out) {
  const int64_t row = blockIdx.x;
  const int64_t i1 = row % a.ne[1];
  const int64_t i2 = (row / a.ne[1]) % a.ne[2];
  const int64_t i3 = row / (a.ne[1] * a.ne[2]);
  const auto* a_row = reinterpret_cast<const float*>(a.data + i1 * a.nb[1] + i2 * a.nb[2] + i3 * a.nb[3]);
  const auto* b_row = reinterpret_cast<const float*>(b.data + (i1 % b.ne[1]) * b.nb[1] +
                                                     (i2 % b.ne[2]) * b.nb[2] + (i3 % b.ne[3]) * b.nb[3]);
  float* out_row = out + row * a.ne[0];
  const int64_t b_cols = b.ne[0];
  if (b_cols == a.ne[0]) {
    for (int64_t i = threadIdx.x; i < a.ne[0]; i += blockDim.x) out_row[i] = apply<kOp>(a_row[i], b_row[i]);
  } else {
    for (int64_t i = threadIdx.x; i < a.ne[0]; i += blockDim.x) {
      out_row[i] = apply<kOp>(a_row[i], b_row[i % b_cols]);
    }
  }
}

template <Unary kOp>
__global__ void unary_kernel(StridedTensor a, float factor, float* out) {
  const int64_t row = blockIdx.x;
  const auto* a_row = reinterpret_cast<const float*>(a.row_data(row));
  float* out_row = out + row * a.ne[0];
  for (int64_t i = threadIdx.x; i < a.ne[0]; i += blockDim.x) {
    out_row[i] = kOp == Unary::Scale ? a_row[i] * factor : silu(a_row[i]);
  }
}

// One thread per element; any strides (dimension 0 too, for permuted views).
template <typename Src, typename Dst>
__global__ void copy_kernel(StridedTensor src, Dst* out, int64_t count) {
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
      copy_kernel<Src, float><<<blocks, 256, 0, stream>>>(src, reinterpret_cast<float*>(launch.out_data()), count);
      return;
    case DType::F16:
      copy_kernel<Src, __half><<<blocks, 256, 0, stream>>>(src, reinterpret_cast<__half*>(launch.out_data()), count);
      return;
    case DType::BF16:
      copy_kernel<Src, __nv_bfloat16>
          <<<blocks, 256, 0, stream>>>(src, reinterpret_cast<__nv_bfloat16*>(launch.out_data()), count);
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
  const auto rows = static_cast<unsigned>(a.rows());
  if (rows == 0 || a.ne[0] == 0) return;
  cudaStream_t stream = launch.ctx.stream;
  switch (launch.node.op) {
    case Op::Add: binary_kernel<Binary::Add><<<rows, kRowThreads, 0, stream>>>(a, b, out); break;
    case Op::Mul: binary_kernel<Binary::Mul><<<rows, kRowThreads, 0, stream>>>(a, b, out); break;
    case Op::Swiglu: binary_kernel<Binary::Swiglu><<<rows, kRowThreads, 0, stream>>>(a, b, out); break;
    default: throw Error(launch.label() + ": not a binary op");
  }
  launch.check_launch();
}

void launch_unary(const NodeLaunch& launch) {
  const StridedTensor a = strided(launch.src(0), launch.src_data(0));
  auto* out = reinterpret_cast<float*>(launch.out_data());
  const auto rows = static_cast<unsigned>(a.rows());
  if (rows == 0 || a.ne[0] == 0) return;
  cudaStream_t stream = launch.ctx.stream;
  if (launch.node.op == Op::Scale) {
    unary_kernel<Unary::Scale><<<rows, kRowThreads, 0, stream>>>(a, launch.node.params.f[0], out);
  } else {
    unary_kernel<Unary::Silu><<<rows, kRowThreads, 0, stream>>>(a, 0.0f, out);
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
