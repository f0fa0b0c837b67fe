// The braid command line: one subcommand per file in this folder (see commands.h).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "braid/graph.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"braid: multi-stream evaluation of LLM compute graphs on CUDA GPUs"};
  app.require_subcommand(1);
  braid::cli::register_commands(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2; --help and --version exit with 0.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "braid: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
