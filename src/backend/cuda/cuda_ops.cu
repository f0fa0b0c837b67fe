// Dispatch of one compute node to its op family (see cuda_ops.h).
#include <cstdlib>
#include <string>

#include "backend/cuda/all_reduce.cuh"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/get_rows.cuh"
#include "backend/cuda/matmul.cuh"
#include "backend/cuda/moe.cuh"
#include "backend/cuda/top_logits.cuh"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/shared_int8.h"
#include "backend/cuda/softmax.cuh"

namespace braid::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string(what) + ": " + cudaGetErrorString(status));
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) throw Error(std::string(what) + ": " + cublasGetStatusString(status));
}

int current_device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&value, attribute, device), "cudaDeviceGetAttribute");
  return value;
}

size_t scratch_bytes(const Graph& graph, TensorId node) {
  switch (graph[node].op) {
    case Op::MulMat:
    case Op::MulMatId: return mul_mat_scratch_bytes(graph, node);
    case Op::Attention: return attention_scratch_bytes(graph, node);
    default: return 0;
  }
}

bool uses_cublas(const Graph& graph, TensorId node) { return mul_mat_uses_cublas(graph, node); }

bool programmatic_launch_enabled() {
  static const bool enabled = [] {
    const char* setting = std::getenv("BRAID_PDL");
    if (setting != nullptr && std::string(setting) == "0") return false;
    int device = 0;
    int major = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
    return major >= 9;
  }();
  return enabled;
}

bool supports(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  switch (t.op) {
    case Op::GetRows:
    case Op::Add:
    case Op::Mul:
    case Op::Scale:
    case Op::RmsNorm:
    case Op::Silu:
    case Op::Swiglu:
    case Op::Softmax: return true;
    case Op::Rope: return graph[t.src[0]].ne[2] <= 65535;     // tokens are grid.y
    case Op::KvWrite: return graph[t.src[1]].ne[2] <= 65535;  // likewise
    case Op::MulMat:
    case Op::MulMatId: return mul_mat_supported(graph, node);
    case Op::Attention: return attention_supported(graph, node);
    case Op::Copy: return copy_supported(graph, node);
    case Op::TopK:
    case Op::MoeWeights:
    case Op::MoeCombine: return moe_supported(graph, node);
    case Op::TopLogits: return top_logits_supported(graph, node);
    case Op::AllReduce: return all_reduce_supported(graph, node);
    default: return false;  // leaves and views compute nothing
  }
}

namespace {

void launch_op(const NodeLaunch& launch) {
  switch (launch.node.op) {
    case Op::GetRows: launch_get_rows(launch); return;
    case Op::Add:
    case Op::Mul:
    case Op::Swiglu: launch_binary(launch); return;
    case Op::Scale:
    case Op::Silu: launch_unary(launch); return;
    case Op::RmsNorm: launch_rms_norm(launch); return;
    case Op::MulMat: launch_mul_mat(launch); return;
    case Op::MulMatId: launch_mul_mat_id(launch); return;
    case Op::Rope: launch_rope(launch); return;
    case Op::KvWrite: launch_kv_write(launch); return;
    case Op::Attention: launch_attention(launch); return;
    case Op::Softmax: launch_softmax(launch); return;
    case Op::Copy: launch_copy(launch); return;
    case Op::TopK: launch_top_k(launch); return;
    case Op::MoeWeights: launch_moe_weights(launch); return;
    case Op::MoeCombine: launch_moe_combine(launch); return;
    case Op::TopLogits: launch_top_logits(launch); return;
    case Op::AllReduce: launch_all_reduce(launch); return;
    default: throw Error(launch.label() + ": not a compute op");
  }
}

}  // namespace

void launch(const Graph& graph, TensorId node, const DeviceAddresses& memory, const StreamContext& ctx,
            const LaunchExtras& extras) {
  const Tensor& t = graph[node];
  // The int8 copy of the output is written by the node's own kernel where it can, else by
  // a quantization kernel after it.
  const bool kernel_writes_copy = extras.writes != nullptr && producer_writes_int8(t);
  const NodeLaunch launch{graph, t, memory, ctx, extras.reads, kernel_writes_copy ? extras.writes : nullptr};
  if (!supports(graph, node)) throw Error(launch.label() + ": not supported by the CUDA backend");
  launch_op(launch);
  if (extras.writes != nullptr && !kernel_writes_copy) write_shared_int8(launch, *extras.writes);
}

}  // namespace braid::cuda
