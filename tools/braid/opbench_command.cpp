// `braid opbench`: one matrix-vector product (or, with --op attention, one decode attention
// of a batch of sequences) timed alone on a backend, reported as time and bandwidth against
// the bytes it must move. For tuning kernels toward the roofline.
//
// One timed run replays a graph of `copies` ops back to back, each over its own copy of the
// weights or KV cache (enough copies for 256 MiB in all, so they come from device memory,
// not from the 50 MB L2), and the time per op is the run's time divided by the copies: the
// fixed cost of a run (input copy, graph launch, timing events) is spread out as it is in a
// decode step, where the ops also run back to back.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "braid/backend.h"
#include "braid/model.h"
#include "braid/ops.h"
#include "commands.h"
#include "model_source.h"

namespace braid::cli {
namespace {

struct OpBenchOptions {
  std::string op = "mul_mat";
  std::vector<std::string> shapes{"4096x4096", "4096x11008", "11008x4096", "2048x512", "2048x32000"};
  std::vector<std::string> types{"f16", "q8_0", "q4_0"};
  int batch = 1;
  int runs = 50;
  std::string backend;
  // --op attention: `batch` sequences of `length` cached rows each, one query apiece (a
  // batched decode step: each query attends within its sequence's region of the cache).
  int heads = 32;
  int kv_heads = 32;
  int head_dim = 128;
  int length = 128;
  std::string cache_type = "f16";
};

constexpr double kSpanBytes = 256.0 * 1024 * 1024;

int copies_for(double bytes) { return static_cast<int>(std::clamp(std::ceil(kSpanBytes / bytes), 4.0, 256.0)); }

void run_attention(const OpBenchOptions& o, Backend& backend) {
  const DType cache = cache_type_named(o.cache_type);
  if (o.heads % o.kv_heads != 0) {
    throw Error(fmt::format("{} heads do not group over {} kv heads", o.heads, o.kv_heads));
  }
  fmt::print("device: {}\n\n| op | type | heads x head size | queries x rows | us | GB/s |\n"
             "| --- | --- | --- | --- | ---: | ---: |\n",
             backend.device_name());
  const int64_t n = o.batch, region = o.length;
  const double cache_bytes =
      2.0 * n * region * o.kv_heads * o.head_dim * static_cast<double>(traits(cache).block_bytes);
  const int copies = copies_for(cache_bytes);
  Graph g;
  const TensorId q = g.input("q", DType::F32, {o.head_dim, o.heads, n, 1});
  const TensorId rows = g.input("cache_rows", DType::I32, {n, 1, 1, 1});
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));
  for (int c = 0; c < copies; ++c) {
    const Graph::Shape shape{o.head_dim, o.kv_heads, n * region, 1};
    const TensorId k = g.state(fmt::format("cache_k.{}", c), cache, shape);
    const TensorId v = g.state(fmt::format("cache_v.{}", c), cache, shape);
    g.mark_output(ops::attention(g, q, k, v, rows, scale, static_cast<int>(region)));
  }
  g.finalize();
  auto exe = backend.compile(g, make_plan(g, Policy::Serial));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> queries(static_cast<size_t>(o.head_dim * o.heads * n));
  for (float& v : queries) v = uniform(rng);
  std::vector<int32_t> last_rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) last_rows[static_cast<size_t>(i)] = static_cast<int32_t>(i * region + region - 1);
  exe->set_input(q, queries.data(), queries.size() * sizeof(float));
  exe->set_input(rows, last_rows.data(), last_rows.size() * sizeof(int32_t));
  exe->time_runs_ms(10);  // warm-up
  const double ms = exe->time_runs_ms(o.runs) / copies;
  fmt::print("| attention | {} cache | {} / {} heads x {} | {} x {} rows | {:.2f} | {:.0f} |\n", o.cache_type, o.heads,
             o.kv_heads, o.head_dim, n, region, ms * 1e3, cache_bytes / (ms * 1e-3) / 1e9);
}

void run_opbench(const OpBenchOptions& o) {
  auto backend = make_backend(o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend);
  if (o.op == "attention") return run_attention(o, *backend);
  fmt::print("device: {}\n\n| op | type | k x m | batch | us | GB/s |\n| --- | --- | --- | ---: | ---: | ---: |\n",
             backend->device_name());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  uint64_t seed = 0;  // of each shape's weights
  for (const std::string& type_name : o.types) {
    DType type;
    if (!parse_dtype(type_name, &type)) throw Error(fmt::format("unknown type '{}'", type_name));
    for (const std::string& shape : o.shapes) {
      int64_t k = 0, m = 0;
      int used = 0;  // "4096x4096,..." must not pass as 4096x4096
      if (std::sscanf(shape.c_str(), "%ldx%ld%n", &k, &m, &used) != 2 || used != static_cast<int>(shape.size()) ||
          k <= 0 || m <= 0) {
        throw Error(fmt::format("shape '{}' is not KxM", shape));
      }
      if (const int64_t block = traits(type).block_elements; k % block != 0) {
        throw Error(fmt::format("shape '{}': k must be a multiple of {}'s {}-element blocks", shape, type_name, block));
      }
      // Filled and quantized on every core: single-threaded, the K-quants' quantization took
      // about a minute for a handful of large shapes, device time spent waiting on the host.
      std::vector<uint8_t> weights(row_bytes(type, k) * static_cast<size_t>(m));
      fill_random(weights.data(), type, k * m, ++seed, 0.0f, 1.0f);
      const int copies = copies_for(static_cast<double>(weights.size()));
      Graph g;
      const TensorId x = g.input("x", DType::F32, {k, o.batch, 1, 1});
      for (int c = 0; c < copies; ++c) {
        const TensorId w = g.weight(fmt::format("w{}x{}{}_{}", k, m, type_name, c), type, {k, m, 1, 1}, weights.data());
        g.mark_output(ops::mul_mat(g, w, x));
      }
      g.finalize();
      auto exe = backend->compile(g, make_plan(g, Policy::Serial));
      std::vector<float> input(static_cast<size_t>(k * o.batch));
      for (float& v : input) v = uniform(rng);
      exe->set_input(x, input.data(), input.size() * sizeof(float));
      exe->time_runs_ms(10);  // warm-up
      const double ms = exe->time_runs_ms(o.runs) / copies;
      const double bytes = static_cast<double>(weights.size()) + (k + m) * o.batch * 4.0;
      fmt::print("| mul_mat | {} | {} x {} | {} | {:.2f} | {:.0f} |\n", type_name, k, m, o.batch, ms * 1e3,
                 bytes / (ms * 1e-3) / 1e9);
    }
  }
}

}  // namespace

void add_opbench_command(CLI::App& app) {
  auto o = std::make_shared<OpBenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "opbench", "Time matrix-vector products (or batched decode attention) alone and report bandwidth");
  cmd->add_option("--op", o->op, "mul_mat or attention")
      ->capture_default_str()
      ->check(CLI::IsMember({"mul_mat", "attention"}));
  cmd->add_option("--shape", o->shapes, "KxM weight shapes")->delimiter(',')->capture_default_str();
  cmd->add_option("--type", o->types, "Weight types")->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", o->batch, "Columns of x (attention: sequences, one query each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--runs", o->runs, "Timed runs (median)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--heads", o->heads, "Attention: query heads")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--kv-heads", o->kv_heads, "Attention: key/value heads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--head-dim", o->head_dim, "Attention: head size")->capture_default_str()->check(CLI::Range(1, 512));
  cmd->add_option("--length", o->length, "Attention: cached rows of each sequence")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  add_cache_type_option(*cmd, o->cache_type);  // (attention)
  cmd->add_option("--backend", o->backend, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->callback([o] { run_opbench(*o); });
}

}  // namespace braid::cli
