// The braid command line: one subcommand per file in this folder (see commands.h).
//
// Every failure ends in exactly one line on stderr: "braid: error: ..." with exit code 1
// for errors of the run (a file that is not a model, an unknown policy, ...), or
// "braid: usage error: ..." with exit code 2 when the command line does not parse.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <new>
#include <string>

#include "braid/graph.h"
#include "commands.h"

namespace {

// "braid bench --help" when a subcommand was recognized, else "braid --help".
std::string help_hint(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return "braid " + sub->get_name() + " --help";
  return "braid --help";
}

// CLI11 says "A subcommand is required" for `braid bogus`; name the stranger instead.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  if (app.get_subcommands().empty() && argc > 1 && argv[1][0] != '-') {
    return "unknown command '" + std::string(argv[1]) + "'";
  }
  return e.what();
}

// Messages that span lines (a library error quoting several problems) become one line.
std::string one_line(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = ';';
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"braid: multi-stream evaluation of LLM compute graphs on CUDA GPUs"};
  app.require_subcommand(1);
  braid::cli::register_commands(app);
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "braid: usage error: %s (see %s)\n", one_line(usage_message(app, e, argc, argv)).c_str(),
                 help_hint(app).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "braid: error: out of host memory (a context or batch too large for this machine?)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "braid: error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
