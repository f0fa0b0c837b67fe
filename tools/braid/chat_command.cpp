// `braid chat`: an interactive conversation. Each line read from stdin is a user message
// (or /reset); the reply streams to stdout token by token, followed by an empty line.
// The KV cache stays across turns, so a turn evaluates only its own tokens. Ctrl-D (end of
// input) ends the chat. Notes and per-turn speed go to stderr, so a pipe reads replies only.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "braid/chat.h"
#include "commands.h"
#include "generation_options.h"

namespace braid::cli {
namespace {

struct ChatCommandOptions {
  GenerationOptions run;
  std::string system;
  std::string chat_template;
};

void run_chat(const ChatCommandOptions& o) {
  LoadedGenerator g(o.run);
  const ChatTemplate chat_template = choose_chat_template(
      o.chat_template, g.file.get_string("tokenizer.chat_template", ""), g.tokenizer->vocabulary());
  ChatSession session(*g.runner, *g.tokenizer, chat_template, o.system);
  const GenerateOptions options = o.run.generate_options();
  const bool terminal = isatty(STDIN_FILENO) != 0;
  fmt::print(stderr, "braid chat: {}, template {}, context {}, {}\n", o.run.file,
             chat_family_name(chat_template.family), g.model.config.n_ctx, describe_run(o.run, g));
  fmt::print(stderr, "type a message and Enter; /reset starts a new conversation; Ctrl-D ends\n");

  std::string line;
  while (true) {
    if (terminal) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/reset") {
      session.reset();
      fmt::print(stderr, "(conversation reset)\n");
      continue;
    }
    GenerateResult result;
    try {
      result = session.send(line, options, [](int32_t, const std::string& piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
    } catch (const Error& e) {
      // A turn that does not fit is the user's to resolve (/reset): the chat goes on.
      fmt::print(stderr, "braid: error: {}\n", e.what());
      continue;
    }
    std::fputs("\n\n", stdout);
    std::fflush(stdout);
    fmt::print(stderr, "[{} new prompt tokens in {:.3f} s, {} generated in {:.3f} s, stopped at {}; {} of {} "
                       "context tokens used]\n",
               result.prompt_tokens.size(), result.prompt_seconds, result.tokens.size(), result.generate_seconds,
               stop_reason_name(result.stop), g.runner->position(), g.model.config.n_ctx);
    if (result.stop == StopReason::ContextFull) {
      fmt::print(stderr, "the context is full: /reset starts a new conversation\n");
    }
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto o = std::make_shared<ChatCommandOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a GGUF model: lines from stdin, replies streamed to stdout");
  add_generation_options(*cmd, o->run);
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat template, instead of the model's: " + known_chat_template_names());
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace braid::cli
