// One block a row, a radix selection over the logits' bits: each pass histograms the next
// digit of the keys still in the running and keeps the bin that holds the k-th best, until
// every key at or above that bin fits in shared memory. Those are ranked there (larger
// first, then the lower index) and the first k written. The first digit is the sign, the
// exponent and 3 bits of mantissa, so for logits spread as a model's, one histogram pass
// should leave few enough keys at or above the chosen bin: then a row is read twice (512 KB
// at 128k tokens, from L2, where the LM head just wrote it).
#include "backend/cuda/top_logits.cuh"

namespace braid::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kDigitBits = 12;  // the passes take bits 31-20, 19-8, then 7-0
constexpr int kBins = 1 << kDigitBits;
constexpr int kBinsPerThread = kBins / kThreads;
constexpr int kGathered = kThreads;  // keys ranked in shared memory: one a thread

// A float as an unsigned key in the float order: the larger number has the larger key,
// -0 is +0 (they compare equal, so ties go to the lower index), NaN is below everything.
__device__ __forceinline__ uint32_t order_key(float x) {
  if (isnan(x)) return 0;
  const uint32_t u = __float_as_uint(x == 0.0f ? 0.0f : x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct Selection {
  uint32_t bin;    // the bin holding the k-th best key
  uint32_t above;  // keys in bins above it (this pass)
};

// The bin, counting down from the top, at which the histogram's running count reaches
// `need`: each thread sums kBinsPerThread bins, a block-wide scan orders the sums.
__device__ Selection select_bin(const uint32_t* hist, uint32_t need, uint32_t* warp_sums, Selection* chosen) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int top = kBins - 1 - kBinsPerThread * static_cast<int>(threadIdx.x);  // this thread's bins: top, top-1, ...
  uint32_t sum = 0;
#pragma unroll
  for (int j = 0; j < kBinsPerThread; ++j) sum += hist[top - j];
  uint32_t inclusive = sum;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const uint32_t other = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const uint32_t total = warp_sums[lane];
    uint32_t before = total;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const uint32_t other = __shfl_up_sync(0xffffffffu, before, offset);
      if (lane >= offset) before += other;
    }
    warp_sums[lane] = before - total;  // exclusive
  }
  __syncthreads();
  uint32_t count = warp_sums[warp] + inclusive - sum;  // keys in the bins above this thread's
  if (count < need && need <= count + sum) {  // exactly one thread
    for (int j = 0; j < kBinsPerThread; ++j) {
      const uint32_t h = hist[top - j];
      if (count + h >= need) {
        *chosen = {static_cast<uint32_t>(top - j), count};
        break;
      }
      count += h;
    }
  }
  __syncthreads();
  return *chosen;
}

__global__ void __launch_bounds__(kThreads)
    top_logits_kernel(const uint8_t* logits, int64_t row_bytes, int columns, int k, float* out) {
  wait_for_producers();
  __shared__ uint32_t hist[kBins];
  __shared__ uint32_t keys[kGathered];
  __shared__ int32_t ids[kGathered];
  __shared__ uint32_t warp_sums[32];
  __shared__ Selection chosen;
  __shared__ uint32_t gathered;
  const auto* x = reinterpret_cast<const float*>(logits + blockIdx.x * row_bytes);
  float* values_out = out + static_cast<int64_t>(blockIdx.x) * 2 * k;
  float* ids_out = values_out + k;
  const int lane = threadIdx.x % 32;

  // The keys in the running share their top `fixed` bits, `prefix`; `above` keys rank
  // before all of them, `in_range` are in the running.
  uint32_t prefix = 0, above = 0, in_range = static_cast<uint32_t>(columns);
  int fixed = 0;
  while (above + in_range > kGathered && fixed < 32) {
    const int width = fixed < 24 ? kDigitBits : 32 - fixed;
    const int shift = 32 - fixed - width;
    for (int b = threadIdx.x; b < kBins; b += kThreads) hist[b] = 0;
    __syncthreads();
    for (int base = 0; base < columns; base += kThreads) {  // (every lane of a warp iterates alike)
      const int i = base + static_cast<int>(threadIdx.x);
      const uint32_t key = i < columns ? order_key(x[i]) : 0;
      const bool running = i < columns && (fixed == 0 || key >> (32 - fixed) == prefix);
      const unsigned lanes = __ballot_sync(0xffffffffu, running);
      if (running) {
        // The lanes of one digit add once: logits crowd into few bins on the first pass.
        const uint32_t digit = (key >> shift) & ((1u << width) - 1);
        const unsigned peers = __match_any_sync(lanes, digit);
        if (lane == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
      }
    }
    __syncthreads();
    const Selection s = select_bin(hist, static_cast<uint32_t>(k) - above, warp_sums, &chosen);
    above += s.above;
    in_range = hist[s.bin];
    prefix = (prefix << width) | s.bin;
    fixed += width;
    __syncthreads();  // (hist is cleared by the next pass)
  }

  // Gather every key at or above the range (or, with more ties of the k-th key than
  // shared memory holds, every key above it) and rank them.
  const bool ties_overflow = above + in_range > kGathered;
  const uint32_t lower = fixed == 0 ? 0u : prefix << (32 - fixed);
  if (threadIdx.x == 0) gathered = 0;
  __syncthreads();
  for (int base = 0; base < columns; base += kThreads) {
    const int i = base + static_cast<int>(threadIdx.x);
    if (i >= columns) break;
    const uint32_t key = order_key(x[i]);
    if (ties_overflow ? key > lower : key >= lower) {
      const uint32_t slot = atomicAdd(&gathered, 1u);
      keys[slot] = key;
      ids[slot] = i;
    }
  }
  __syncthreads();
  const uint32_t n = gathered;
  for (uint32_t j = threadIdx.x; j < n; j += kThreads) {
    uint32_t rank = 0;
    for (uint32_t i = 0; i < n; ++i) rank += keys[i] > keys[j] || (keys[i] == keys[j] && ids[i] < ids[j]);
    if (rank < static_cast<uint32_t>(k)) {
      values_out[rank] = x[ids[j]];
      ids_out[rank] = static_cast<float>(ids[j]);
    }
  }
  if (!ties_overflow || threadIdx.x >= 32) return;
  // The rest are ties of the k-th key (`lower`, all 32 bits fixed): the lowest indices,
  // found in index order by one warp. Only a degenerate row (thousands of equal logits
  // at the boundary) comes here.
  uint32_t written = n;
  for (int base = 0; base < columns && written < static_cast<uint32_t>(k); base += 32) {
    const int i = base + lane;
    const bool tie = i < columns && order_key(x[i]) == lower;
    const unsigned ties = __ballot_sync(0xffffffffu, tie);
    const uint32_t slot = written + __popc(ties & ((1u << lane) - 1));
    if (tie && slot < static_cast<uint32_t>(k)) {
      values_out[slot] = x[i];
      ids_out[slot] = static_cast<float>(i);
    }
    written += __popc(ties);
  }
}

}  // namespace

bool top_logits_supported(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  return t.params.i[0] <= kGathered && graph[t.src[0]].ne[1] <= INT32_MAX && t.is_contiguous();
}

void launch_top_logits(const NodeLaunch& launch) {
  const Tensor& logits = launch.src(0);
  const auto rows = static_cast<unsigned>(logits.ne[1]);
  if (rows == 0) return;
  launch_kernel(top_logits_kernel, rows, kThreads, 0, launch.ctx.stream, launch.src_data(0),
                static_cast<int64_t>(logits.nb[1]), launch.node.params.i[1], launch.node.params.i[0],
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
