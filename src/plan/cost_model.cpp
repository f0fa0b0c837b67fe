// Per-op cost estimates (a roofline: bytes over bandwidth or flops over peak, whichever
// is slower, plus a launch) and a simulator that runs a plan against them.
//
// The model is deliberately simple and optimistic about overlap: two kernels on different
// streams are assumed not to slow each other down. That overstates the gain of forking
// large bandwidth-bound kernels, which is why `auto` times real plans on the device.
#include <algorithm>

#include "plan/plan_internal.h"

namespace braid::plan_detail {
namespace {

double bytes_of(const Graph& graph, TensorId id) { return static_cast<double>(graph[id].bytes()); }

}  // namespace

NodeWork estimate_work(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  NodeWork work;
  const double out_elements = static_cast<double>(t.elements());
  switch (t.op) {
    case Op::MulMat: {
      const Tensor& w = graph[t.src[0]];
      const double k = static_cast<double>(w.ne[0]);
      const double m = static_cast<double>(w.ne[1]);
      const double n = static_cast<double>(graph[t.src[1]].ne[1]);
      work.bytes = bytes_of(graph, t.src[0]) + bytes_of(graph, t.src[1]) + bytes_of(graph, node);
      if (t.src.size() > 2) work.bytes += bytes_of(graph, t.src[2]);  // mul_mat_add
      work.flops = 2 * k * m * n;
      break;
    }
    case Op::MulMatId: {
      // Each token reads one expert's matrix for this slot: at most min(tokens, experts) of them.
      const Tensor& w = graph[t.src[0]];
      const double experts = static_cast<double>(std::max<int64_t>(1, w.ne[2]));
      const double n = static_cast<double>(graph[t.src[1]].ne[1]);
      const double touched = std::min(n, experts);
      work.bytes = bytes_of(graph, t.src[0]) * touched / experts + bytes_of(graph, t.src[1]) +
                   bytes_of(graph, t.src[2]) + bytes_of(graph, node);
      work.flops = 2 * static_cast<double>(w.ne[0]) * static_cast<double>(w.ne[1]) * n;
      break;
    }
    case Op::Attention: {
      // The caches are read over their full length (the context length is the cache's),
      // or with regions (a batch of sequences) one region per query.
      const Tensor& q = graph[t.src[0]];
      const double head_dim = static_cast<double>(q.ne[0]);
      const double heads = static_cast<double>(q.ne[1]);
      const double n = static_cast<double>(q.ne[2]);
      const int region = t.params.i[0];
      const double rows = static_cast<double>(graph[t.src[1]].ne[2]);
      const double context = region > 0 ? region : rows;
      const double cache_share = region > 0 ? std::min(1.0, n * region / rows) : 1.0;
      work.bytes = bytes_of(graph, t.src[0]) + cache_share * (bytes_of(graph, t.src[1]) + bytes_of(graph, t.src[2])) +
                   bytes_of(graph, node);
      work.flops = 4 * head_dim * heads * context * n;
      break;
    }
    case Op::GetRows: {
      const Tensor& table = graph[t.src[0]];
      const double rows = static_cast<double>(graph[t.src[1]].ne[0]);
      work.bytes = static_cast<double>(row_bytes(table.type, table.ne[0])) * rows +
                   bytes_of(graph, t.src[1]) + bytes_of(graph, node);
      break;
    }
    case Op::KvWrite: {
      // Reads the new rows and writes the same amount into the cache; the cache itself is not read.
      work.bytes = 2 * bytes_of(graph, t.src[1]) + bytes_of(graph, t.src[2]);
      work.flops = 0;
      break;
    }
    case Op::AllReduce: {
      // A ring all-reduce: each GPU sends (and receives) 2 (N - 1) / N of the tensor, in
      // N - 1 reduce-scatter and N - 1 all-gather steps; locally it reads and writes it.
      const double ranks = std::max(1, t.params.i[0]);
      work.bytes = 2 * bytes_of(graph, node);
      work.link_bytes = 2 * (ranks - 1) / ranks * bytes_of(graph, node);
      work.flops = out_elements * (ranks - 1);
      break;
    }
    default: {
      for (TensorId s : t.src) work.bytes += bytes_of(graph, s);
      work.bytes += bytes_of(graph, node);
      work.flops = out_elements * (t.op == Op::RmsNorm || t.op == Op::Softmax ? 4 : 1);
      break;
    }
  }
  return work;
}

double node_cost_us(const Graph& graph, TensorId node, const CostModel& cost) {
  const NodeWork work = estimate_work(graph, node);
  // bandwidth_gbps GB/s moves bandwidth_gbps * 1e3 bytes per microsecond; likewise for flops.
  const double memory_us = work.bytes / (std::max(1e-9, cost.bandwidth_gbps) * 1e3);
  const double compute_us = work.flops / (std::max(1e-9, cost.flops_tflops) * 1e6);
  // A collective pays a fixed latency (its ranks' handshakes) on top of the link time.
  const double link_us = work.link_bytes > 0
                             ? cost.collective_us + work.link_bytes / (std::max(1e-9, cost.link_gbps) * 1e3)
                             : 0.0;
  return cost.launch_us + std::max({memory_us, compute_us, link_us});
}

double simulate_plan_us(const Graph& graph, const Plan& plan, const CostModel& cost) {
  std::vector<double> stream_free(static_cast<size_t>(std::max(1, plan.stream_count)), 0.0);
  std::vector<double> event_time(static_cast<size_t>(std::max(0, plan.event_count)), 0.0);
  double end = 0;
  for (const PlanStep& step : plan.steps) {
    double start = stream_free[static_cast<size_t>(step.stream)];
    for (int e : step.waits) start = std::max(start, event_time[static_cast<size_t>(e)] + cost.sync_us);
    const double finish = start + node_cost_us(graph, step.node, cost);
    stream_free[static_cast<size_t>(step.stream)] = finish;
    if (step.record >= 0) event_time[static_cast<size_t>(step.record)] = finish;
    end = std::max(end, finish);
  }
  return end;
}

}  // namespace braid::plan_detail
