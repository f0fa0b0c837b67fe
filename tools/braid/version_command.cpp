#include <fmt/format.h>

#include "braid/backend.h"
#include "commands.h"

namespace braid::cli {

void add_version_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("version", "Print braid's version and the backends it was built with");
  cmd->callback([] {
#ifdef BRAID_HAVE_CUDA
    const char* cuda = cuda_available() ? "built, device present" : "built, no device";
#else
    const char* cuda = "not built";
#endif
    fmt::print("braid {}\nbackends: cpu, cuda ({})\n", BRAID_VERSION, cuda);
  });
}

}  // namespace braid::cli
