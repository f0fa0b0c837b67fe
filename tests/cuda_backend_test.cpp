// The CUDA executor on small graphs with hand-made plans (independent of the planner):
// one stream, several streams, and a captured CUDA graph must give the same bits; a
// captured graph must serve many runs with changing inputs; state must persist across
// runs; out-of-memory and bad plans must fail cleanly. Skips itself without a device.
// Results are compared with a host reference loosely (1e-3: kernels may round x to
// f16/bf16 for tensor cores; a wrong address gives ~1) and across modes bit for bit.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "braid/backend.h"
#include "braid/ops.h"
#include "test_support.h"

namespace braid {
namespace {

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

struct StepSpec {
  TensorId node;
  int stream = 0;
  std::vector<int> waits{};
  int record = -1;
};

// A plan from explicit steps; every arena tensor gets its own bytes (no reuse).
Plan hand_plan(const Graph& g, const std::vector<StepSpec>& specs, int streams, int events) {
  Plan plan;
  plan.policy = "hand";
  plan.stream_count = streams;
  plan.event_count = events;
  plan.arena_offset.assign(static_cast<size_t>(g.tensor_count()), -1);
  size_t offset = 0;
  for (const StepSpec& s : specs) {
    plan.steps.push_back(PlanStep{s.node, s.stream, s.waits, s.record});
    const Tensor& t = g[s.node];
    if (is_compute_op(t.op) && t.view_source == kNoTensor) {
      plan.arena_offset[static_cast<size_t>(s.node)] = static_cast<int64_t>(offset);
      offset += (t.bytes() + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
    }
  }
  plan.arena_bytes = offset;
  return plan;
}

Plan serial_plan(const Graph& g) {
  std::vector<StepSpec> specs;
  for (TensorId id : g.compute_nodes()) specs.push_back({id});
  return hand_plan(g, specs, 1, 0);
}

std::vector<uint16_t> random_f16(size_t count, uint32_t seed) {
  std::vector<uint16_t> h;
  for (float f : test::random_floats(count, seed)) h.push_back(f32_to_f16(f));
  return h;
}

// x feeds three matmuls; out = (w1 x) * (w2 x) + 0.5 (w3 x). The three branches are
// independent, so a multi-stream plan can run them at once.
struct Diamond {
  static constexpr int64_t k = 64, m = 48, n = 4;
  std::vector<uint16_t> w1 = random_f16(k * m, 11), w2 = random_f16(k * m, 12), w3 = random_f16(k * m, 13);
  Graph g;
  TensorId x, a, b, c, c2, ab, out, a_transposed;

  Diamond() {
    x = g.input("x", DType::F32, {k, n, 1, 1});
    const TensorId w1_id = g.weight("w1", DType::F16, {k, m, 1, 1}, w1.data());
    const TensorId w2_id = g.weight("w2", DType::F16, {k, m, 1, 1}, w2.data());
    const TensorId w3_id = g.weight("w3", DType::F16, {k, m, 1, 1}, w3.data());
    a = ops::mul_mat(g, w1_id, x);
    b = ops::mul_mat(g, w2_id, x);
    c = ops::mul_mat(g, w3_id, x);
    c2 = ops::scale(g, c, 0.5f);
    ab = ops::mul(g, a, b);
    out = ops::add(g, ab, c2);
    a_transposed = ops::transpose(g, a);  // not reachable: only for the read() check
    g.mark_output(out);
    g.finalize();
  }

  // Three streams: a on 0, b on 1, c and c2 on 2; stream 0 joins them for ab and out.
  Plan multi_stream_plan() const {
    return hand_plan(g,
                     {{a, 0}, {b, 1, {}, 0}, {c, 2}, {c2, 2, {}, 1}, {ab, 0, {0}}, {out, 0, {1}}},
                     3, 2);
  }

  std::vector<float> reference(const std::vector<float>& xs) const {
    auto matmul = [&](const std::vector<uint16_t>& w, int64_t j, int64_t t) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += double(f16_to_f32(w[size_t(j * k + i)])) * xs[size_t(t * k + i)];
      return sum;
    };
    std::vector<float> r(size_t(m * n));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < m; ++j) {
        r[size_t(t * m + j)] = float(matmul(w1, j, t) * matmul(w2, j, t) + 0.5 * matmul(w3, j, t));
      }
    }
    return r;
  }
};

std::vector<float> run_once(Executable& exe, const Diamond& d, const std::vector<float>& xs) {
  exe.set_input(d.x, xs.data(), xs.size() * sizeof(float));
  exe.run();
  std::vector<float> out(size_t(d.m * d.n));
  exe.read(d.out, out.data(), out.size() * sizeof(float));
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

ExecOptions eager() {
  ExecOptions o;
  o.cuda_graph = false;
  return o;
}

TEST(CudaBackend, NamesItsDevice) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  EXPECT_EQ(backend->name(), "cuda");
  EXPECT_FALSE(backend->device_name().empty());
  EXPECT_NE(backend->driver_version().find("driver"), std::string::npos);
}

TEST(CudaBackend, SerialMultiStreamAndCapturedGraphGiveTheSameBits) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  const auto xs = test::random_floats(size_t(d.k * d.n), 5);
  const auto serial = run_once(*backend->compile(d.g, serial_plan(d.g), eager()), d, xs);
  EXPECT_LT(test::nmse(serial, d.reference(xs)), 1e-3);

  EXPECT_TRUE(same_bits(run_once(*backend->compile(d.g, d.multi_stream_plan(), eager()), d, xs), serial));
  EXPECT_TRUE(same_bits(run_once(*backend->compile(d.g, serial_plan(d.g)), d, xs), serial));
  auto captured = backend->compile(d.g, d.multi_stream_plan());
  EXPECT_TRUE(same_bits(run_once(*captured, d, xs), serial));
  EXPECT_TRUE(same_bits(run_once(*captured, d, xs), serial)) << "second replay";
  ExecOptions debug;
  debug.sync_each_node = true;
  EXPECT_TRUE(same_bits(run_once(*backend->compile(d.g, d.multi_stream_plan(), debug), d, xs), serial));
}

TEST(CudaBackend, CapturedGraphServes64RunsWithChangingInputs) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  auto captured = backend->compile(d.g, d.multi_stream_plan());
  auto serial = backend->compile(d.g, serial_plan(d.g), eager());
  std::vector<float> previous;
  for (int i = 0; i < 64; ++i) {
    const auto xs = test::random_floats(size_t(d.k * d.n), 100 + uint32_t(i));
    const auto got = run_once(*captured, d, xs);
    ASSERT_TRUE(same_bits(got, run_once(*serial, d, xs))) << "run " << i;
    ASSERT_FALSE(same_bits(got, previous)) << "run " << i << " did not see its new input";
    previous = got;
  }
  // Runs queued back to back without reading in between, then one read.
  for (int i = 0; i < 8; ++i) {
    const auto xs = test::random_floats(size_t(d.k * d.n), 300 + uint32_t(i));
    captured->set_input(d.x, xs.data(), xs.size() * sizeof(float));
    captured->run();
  }
  const auto last = test::random_floats(size_t(d.k * d.n), 307);
  std::vector<float> out(size_t(d.m * d.n));
  captured->read(d.out, out.data(), out.size() * sizeof(float));
  EXPECT_TRUE(same_bits(out, run_once(*serial, d, last)));
}

TEST(CudaBackend, WeightsAreUploadedOnceAndMemoryIsReported) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  const Plan plan = d.multi_stream_plan();
  auto first = backend->compile(d.g, plan);
  const size_t weights = backend->weights_bytes();
  EXPECT_EQ(weights, 3 * size_t(d.k * d.m) * sizeof(uint16_t));
  auto second = backend->compile(d.g, serial_plan(d.g));
  EXPECT_EQ(backend->weights_bytes(), weights);
  const MemoryReport m = first->memory();
  EXPECT_EQ(m.arena_bytes, plan.arena_bytes);
  EXPECT_EQ(m.inputs_bytes, size_t(d.k * d.n) * sizeof(float));
  // Batch 4 runs on the matrix-vector kernels: no stream needs a cuBLAS workspace.
  EXPECT_LT(m.workspace_bytes, size_t{32} << 20);
  EXPECT_EQ(m.weights_bytes, weights);
}

TEST(CudaBackend, StatePersistsAcrossReplaysAndResets) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  constexpr int64_t head_dim = 8, heads = 2, ctx = 16;
  Graph g;
  const TensorId cache = g.state("cache_k", DType::F32, {head_dim, heads, ctx, 1});
  const TensorId x = g.input("x", DType::F32, {head_dim, heads, 1, 1});
  const TensorId pos = g.input("pos", DType::I32, {1, 1, 1, 1});
  const TensorId written = ops::kv_write(g, cache, x, pos);
  g.mark_output(written);
  g.finalize();
  auto exe = backend->compile(g, serial_plan(g));
  EXPECT_EQ(backend->state_bytes(), size_t(head_dim * heads * ctx) * sizeof(float));

  std::vector<std::vector<float>> rows;
  for (int32_t p = 0; p < ctx; ++p) {
    rows.push_back(test::random_floats(size_t(head_dim * heads), 40 + uint32_t(p)));
    exe->set_input(x, rows.back().data(), rows.back().size() * sizeof(float));
    exe->set_input(pos, &p, sizeof p);
    exe->run();
  }
  std::vector<float> all(size_t(head_dim * heads * ctx));
  exe->read(written, all.data(), all.size() * sizeof(float));
  for (int64_t p = 0; p < ctx; ++p) {
    EXPECT_EQ(std::memcmp(&all[size_t(p * head_dim * heads)], rows[size_t(p)].data(), rows[size_t(p)].size() * 4), 0)
        << "slot " << p;
  }

  backend->reset_state();
  exe->read(written, all.data(), all.size() * sizeof(float));
  for (float v : all) ASSERT_EQ(v, 0.0f);
  const int32_t three = 3;
  exe->set_input(pos, &three, sizeof three);
  exe->run();
  exe->read(written, all.data(), all.size() * sizeof(float));
  for (int64_t p = 0; p < ctx; ++p) {
    const bool zero = all[size_t(p * head_dim * heads)] == 0.0f && all[size_t(p * head_dim * heads + 1)] == 0.0f;
    EXPECT_EQ(zero, p != 3) << "slot " << p;
  }
}

TEST(CudaBackend, OutOfMemoryThrowsAndLeavesTheBackendUsable) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  Plan absurd = d.multi_stream_plan();
  absurd.arena_bytes = size_t{1} << 50;  // a pebibyte
  try {
    backend->compile(d.g, absurd);
    FAIL() << "compile of a 1 PiB arena succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of device memory: needed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(backend->weights_bytes(), 0u) << "nothing is kept from a failed compile";
  const auto xs = test::random_floats(size_t(d.k * d.n), 6);
  const auto out = run_once(*backend->compile(d.g, d.multi_stream_plan()), d, xs);
  EXPECT_LT(test::nmse(out, d.reference(xs)), 1e-3);
}

TEST(CudaBackend, RejectsBadPlansAndBadCalls) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  Plan unrecorded = d.multi_stream_plan();
  unrecorded.steps[1].record = -1;  // ab would wait on an event nobody records
  EXPECT_THROW(backend->compile(d.g, unrecorded), Error);
  Plan missing = d.multi_stream_plan();
  missing.steps.pop_back();
  EXPECT_THROW(backend->compile(d.g, missing), Error);
  Plan misaligned = d.multi_stream_plan();
  misaligned.arena_offset[size_t(d.ab)] += 4;
  EXPECT_THROW(backend->compile(d.g, misaligned), Error);
  Plan reversed = d.multi_stream_plan();
  std::swap(reversed.steps[4], reversed.steps[5]);  // out before ab
  EXPECT_THROW(backend->compile(d.g, reversed), Error);

  auto exe = backend->compile(d.g, d.multi_stream_plan());
  const std::vector<float> few(3, 1.0f);
  EXPECT_THROW(exe->set_input(d.x, few.data(), few.size() * sizeof(float)), Error);
  EXPECT_THROW(exe->set_input(d.a, few.data(), few.size() * sizeof(float)), Error);
  std::vector<float> buffer(size_t(d.m * d.n));
  EXPECT_THROW(exe->read(d.a_transposed, buffer.data(), buffer.size() * sizeof(float)), Error);
  EXPECT_THROW(exe->read(d.out, buffer.data(), 4), Error);
}

TEST(CudaBackend, TraceOrdersStepsByTheirEvents) {
  REQUIRE_CUDA();
  auto backend = make_backend("cuda");
  Diamond d;
  auto exe = backend->compile(d.g, d.multi_stream_plan());
  const auto xs = test::random_floats(size_t(d.k * d.n), 8);
  exe->set_input(d.x, xs.data(), xs.size() * sizeof(float));
  const std::vector<StepTiming> trace = exe->trace_run();
  ASSERT_EQ(trace.size(), 6u);
  for (const StepTiming& t : trace) {
    EXPECT_GE(t.start_us, 0.0);
    EXPECT_GE(t.end_us, t.start_us);
  }
  const double slack_us = 1.0;                             // event timestamp resolution
  EXPECT_GE(trace[4].start_us + slack_us, trace[1].end_us);  // ab after b (event 0)
  EXPECT_GE(trace[5].start_us + slack_us, trace[3].end_us);  // out after c2 (event 1)
  std::vector<float> out(size_t(d.m * d.n));
  exe->read(d.out, out.data(), out.size() * sizeof(float));
  EXPECT_LT(test::nmse(out, d.reference(xs)), 1e-3);
  EXPECT_GT(exe->time_runs_ms(5), 0.0);
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
