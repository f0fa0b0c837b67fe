// `braid tokenize`: the token ids of a text under a GGUF file's vocabulary (a model or a
// vocab-only file), to compare with other tokenizers.
#include <fmt/format.h>

#include "braid/gguf.h"
#include "braid/tokenizer.h"
#include "commands.h"

namespace braid::cli {
namespace {

struct TokenizeOptions {
  std::string file;
  std::string prompt;
  bool no_bos = false;
  bool pieces = false;
};

void run_tokenize(const TokenizeOptions& o) {
  const auto tokenizer = load_tokenizer(GgufFile::open(o.file));
  const auto ids = tokenizer->encode(o.prompt, !o.no_bos && tokenizer->vocabulary().add_bos);
  if (o.pieces) {
    for (int32_t id : ids) {
      fmt::print("{:>6} {:?}\n", id, tokenizer->vocabulary().tokens[static_cast<size_t>(id)]);
    }
    return;
  }
  std::string line;
  for (int32_t id : ids) line += fmt::format("{}{}", line.empty() ? "" : " ", id);
  fmt::print("{}\n", line);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", o->file, "GGUF file with a vocabulary")->required();
  cmd->add_option("-p,--prompt", o->prompt, "The text")->required();
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  cmd->add_flag("--pieces", o->pieces, "One token a line: id and piece");
  cmd->callback([o] { run_tokenize(*o); });
}

}  // namespace braid::cli
