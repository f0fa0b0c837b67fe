// `braid opbench`: one matrix-vector product timed alone on a backend, reported as time
// and bandwidth against the bytes it must move. For tuning kernels toward the roofline.
//
// One timed run replays a graph of `copies` products back to back, each over its own copy
// of the weights (enough copies for 256 MiB in all, so the weights come from device memory,
// not from the 50 MB L2), and the time per product is the run's time divided by the copies:
// the fixed cost of a run (input copy, graph launch, timing events) is spread out as it is
// in a decode step, where the products also run back to back.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "braid/backend.h"
#include "braid/ops.h"
#include "commands.h"

namespace braid::cli {
namespace {

struct OpBenchOptions {
  std::vector<std::string> shapes{"4096x4096", "4096x11008", "11008x4096", "2048x512", "2048x32000"};
  std::vector<std::string> types{"f16", "q8_0", "q4_0"};
  int batch = 1;
  int runs = 50;
  std::string backend;
};

void run_opbench(const OpBenchOptions& o) {
  auto backend = make_backend(o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend);
  fmt::print("device: {}\n\n| op | type | k x m | batch | us | GB/s |\n| --- | --- | --- | ---: | ---: | ---: |\n",
             backend->device_name());
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const std::string& type_name : o.types) {
    DType type;
    if (!parse_dtype(type_name, &type)) throw Error(fmt::format("unknown type '{}'", type_name));
    for (const std::string& shape : o.shapes) {
      int64_t k = 0, m = 0;
      if (std::sscanf(shape.c_str(), "%ldx%ld", &k, &m) != 2 || k <= 0 || m <= 0) {
        throw Error(fmt::format("shape '{}' is not KxM", shape));
      }
      std::vector<float> values(static_cast<size_t>(k * m));
      for (float& v : values) v = uniform(rng);
      std::vector<uint8_t> weights(row_bytes(type, k) * static_cast<size_t>(m));
      from_f32(type, values.data(), weights.data(), k * m);
      constexpr double kSpanBytes = 256.0 * 1024 * 1024;
      const int copies =
          static_cast<int>(std::clamp(std::ceil(kSpanBytes / static_cast<double>(weights.size())), 4.0, 256.0));
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
  CLI::App* cmd = app.add_subcommand("opbench", "Time matrix-vector products alone and report bandwidth");
  cmd->add_option("--shape", o->shapes, "KxM weight shapes")->capture_default_str();
  cmd->add_option("--type", o->types, "Weight types")->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", o->batch, "Columns of x")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--runs", o->runs, "Timed runs (median)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--backend", o->backend, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->callback([o] { run_opbench(*o); });
}

}  // namespace braid::cli
