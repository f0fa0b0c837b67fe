// `braid generate`: text from a GGUF model, streamed to stdout token by token; timings
// (prompt and generation tokens/s) go to stderr so that stdout holds only the text.
// With --chat MESSAGE, one chat turn: the message goes through the model's chat template
// and stdout holds the reply.
#include <fmt/format.h>

#include <cstdio>

#include "braid/chat.h"
#include "commands.h"
#include "generation_options.h"

namespace braid::cli {
namespace {

struct GenerateCommandOptions {
  GenerationOptions run;
  std::string prompt;
  std::string chat;  // a user message, instead of a prompt
  std::string system;
  std::string chat_template;
};

double per_second(size_t tokens, double seconds) { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }

void print_piece(int32_t, const std::string& piece) {
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);  // each token as soon as it exists
}

void run_generate(const GenerateCommandOptions& o) {
  LoadedGenerator g(o.run);
  const GenerateOptions options = o.run.generate_options();
  GenerateResult result;
  if (g.parallel) {
    if (!o.chat.empty()) throw Error("--chat does not run over --devices yet: use --prompt");
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
    result = generate(*g.parallel, *g.tokenizer, o.prompt, options, print_piece);
  } else if (!o.chat.empty()) {
    const ChatTemplate chat_template = choose_chat_template(
        o.chat_template, g.file.get_string("tokenizer.chat_template", ""), g.tokenizer->vocabulary());
    ChatSession session(*g.runner, *g.tokenizer, chat_template, o.system);
    result = session.send(o.chat, options, print_piece);
  } else {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
    result = generate(*g.runner, *g.tokenizer, o.prompt, options, print_piece);
  }
  std::fputs("\n", stdout);
  std::fflush(stdout);

  fmt::print(stderr, "\nbraid generate: {}, {}\n", o.run.file, describe_run(o.run, g));
  fmt::print(stderr, "prompt:     {:>5} tokens in {:8.3f} s ({:.2f} t/s)\n", result.prompt_tokens.size(),
             result.prompt_seconds, per_second(result.prompt_tokens.size(), result.prompt_seconds));
  fmt::print(stderr, "generated:  {:>5} tokens in {:8.3f} s ({:.2f} t/s), stopped at {}\n", result.tokens.size(),
             result.generate_seconds, per_second(result.tokens.size(), result.generate_seconds),
             stop_reason_name(result.stop));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateCommandOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a GGUF model, streamed to stdout");
  add_generation_options(*cmd, o->run);
  CLI::Option_group* input = cmd->add_option_group("input", "What to generate from (one of)");
  input->add_option("-p,--prompt", o->prompt, "The prompt");
  CLI::Option* chat =
      input->add_option("--chat", o->chat, "A user message: one chat turn with the model's chat template");
  input->require_option(1);
  cmd->add_option("--devices", o->run.devices,
                  "Split the model over this many devices (tensor parallelism: GPUs over NCCL; on the CPU, simulated ranks)")
      ->capture_default_str()->check(positive());
  cmd->add_option("--system", o->system, "System prompt of --chat")->needs(chat);
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat template of --chat, instead of the model's: " + known_chat_template_names())
      ->needs(chat);
  cmd->callback([o] { run_generate(*o); });
}

}  // namespace braid::cli
