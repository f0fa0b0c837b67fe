// Subcommands of the braid CLI. Each add_*_command registers one subcommand with its
// options and a callback that runs it; errors are thrown as braid::Error and reported
// by main() with exit code 1 (usage errors: 2).
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "braid/plan.h"

namespace braid::cli {

// Checks of numeric options. CLI11's PositiveNumber and NonNegativeNumber report "not in
// range 0.000000 to 1797693...(300 digits more)"; these say it in words.
inline CLI::Validator number_at_least_zero(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return fmt::format("'{}' is not a number", text);
        if (zero_allowed ? value >= 0 : value > 0) return {};
        return fmt::format("must be {}, not {}", zero_allowed ? "0 or more" : "above 0", text);
      },
      zero_allowed ? "NONNEGATIVE" : "POSITIVE");
}
inline CLI::Validator positive() { return number_at_least_zero(false); }
inline CLI::Validator non_negative() { return number_at_least_zero(true); }

// The policy a --policy value names; throws braid::Error listing the known ones.
inline Policy policy_from_name(const std::string& name) {
  Policy policy;
  if (!parse_policy(name, &policy)) {
    std::string known;
    for (Policy p : all_policies()) known += fmt::format("{}, ", policy_name(p));
    throw Error(fmt::format("unknown policy '{}' (known: {}auto)", name, known));
  }
  return policy;
}

void add_version_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_opbench_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_make_model_command(CLI::App& app);
void add_stress_command(CLI::App& app);
void add_serve_command(CLI::App& app);

inline void register_commands(CLI::App& app) {
  add_bench_command(app);
  add_plan_command(app);
  add_trace_command(app);
  add_opbench_command(app);
  add_generate_command(app);
  add_chat_command(app);
  add_tokenize_command(app);
  add_version_command(app);
  add_info_command(app);
  add_make_model_command(app);
  add_stress_command(app);
  add_serve_command(app);
}

}  // namespace braid::cli
