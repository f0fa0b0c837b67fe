// Subcommands of the braid CLI. Each add_*_command registers one subcommand with its
// options and a callback that runs it; errors are thrown as braid::Error and reported
// by main() with exit code 1 (usage errors: 2).
#pragma once

#include <CLI/CLI.hpp>

namespace braid::cli {

void add_version_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_opbench_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_make_model_command(CLI::App& app);

inline void register_commands(CLI::App& app) {
  add_bench_command(app);
  add_plan_command(app);
  add_trace_command(app);
  add_opbench_command(app);
  add_generate_command(app);
  add_tokenize_command(app);
  add_version_command(app);
  add_info_command(app);
  add_make_model_command(app);
}

}  // namespace braid::cli
