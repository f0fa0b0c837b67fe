// Runs the built braid binary (BRAID_CLI_PATH) with a command line and captures its
// exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gguf_test_util.h"

namespace braid::test {

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string out, err;
  int err_lines() const {
    int lines = 0;
    for (const char c : err) lines += c == '\n';
    return lines;
  }
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `args` is pasted into a shell command line: quote paths with '...'.
inline CliResult run_cli(const std::string& args) {
  const std::string out = temp_path("stdout"), err = temp_path("stderr");
  const std::string command = std::string("'") + BRAID_CLI_PATH + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(command.c_str());
  CliResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = slurp(out);
  result.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return result;
}

}  // namespace braid::test
