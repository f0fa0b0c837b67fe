// `braid bench`: prompt processing (pp) and token generation (tg) speed, in the spirit
// of llama.cpp's llama-bench, for every requested plan policy and graph mode, plus the
// summary braid exists for: multi-stream speed and memory against serial.
#pragma once

#include <string>
#include <vector>

#include "braid/backend.h"

namespace braid::cli {

struct BenchRow {
  std::string model;
  double size_gib = 0;
  int64_t params = 0;
  std::string backend;
  std::string device;
  std::string policy;
  int streams = 1;
  bool graph = true;
  // "graph" (one kernel a node, in a CUDA graph or not) or "persistent" (one persistent
  // kernel a decode step: ExecOptions::persistent).
  std::string executor = "graph";
  bool fused = false;  // fused projections (q/k/v, gate/up)
  std::string test;  // "pp512", "tg128"
  int tokens = 0;
  double tps_mean = 0;
  double tps_sd = 0;
  // The median over the repetitions: what the summary and the scripts compare, since one
  // repetition slowed by a busy host (the OS preempting the thread that waits) moves the
  // mean of three by percents.
  double tps_median = 0;
  double host_us = 0;  // median host time of one step over every timed step (see time_test); 0 for batched rows
  // auto rows: the plan auto chose for this test, and what the run-time guard did to it
  // ("cost", or "cost, guard -> serial at run 67 (1.31x)"); empty for other policies.
  std::string auto_choice;
  MemoryReport memory;
};

std::string format_markdown(const std::vector<BenchRow>& rows);
std::string format_csv(const std::vector<BenchRow>& rows);
std::string format_json(const std::vector<BenchRow>& rows);
// One row per (model, test, graph, fused): serial t/s, the best multi-stream t/s, speedup
// and memory. Speedups are against serial on the same (fused or unfused) graph.
std::string format_summary_markdown(const std::vector<BenchRow>& rows);
// One line per auto row: which plan auto ran, and any fallback of its guard.
std::string format_auto_notes(const std::vector<BenchRow>& rows);

}  // namespace braid::cli
