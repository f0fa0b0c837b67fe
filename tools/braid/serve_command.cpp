// `braid serve`: an OpenAI-compatible HTTP server (src/serve). Binds to loopback unless
// told otherwise, prints its address when it is ready, and stops cleanly on SIGINT or
// SIGTERM: requests in flight end with an error, the port is released.
//
// Slots (--parallel) are sequences that run at once, each with its own runner and KV cache
// (see Note [A step is not yet one batched graph] in src/serve/engine.h): on the CPU they
// share the weights; on CUDA every slot uploads its own copy, so cuda defaults to one.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "braid/chat.h"
#include "braid/gguf.h"
#include "braid/model.h"
#include "braid/tokenizer.h"
#include "commands.h"
#include "model_source.h"
#include "serve/engine.h"
#if BRAID_SERVE_HTTP
#include "serve/http/server.h"
#endif

namespace braid::cli {
namespace {

constexpr int kDefaultMaxContext = 4096;

struct ServeOptions {
  std::string file;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 0;  // 0: 4 on the CPU, 1 on CUDA
  int context = 0;   // 0: the model's, at most kDefaultMaxContext
  std::string cache_type = "f32";
  int queue = 64;
  int chunk = 32;
  std::string chat_template;
  std::string policy = "serial";
  int streams = 4;
  bool fuse = false;
  std::string backend;
  std::string model_name;
};

void run_serve(const ServeOptions& o) {
#if !BRAID_SERVE_HTTP
  (void)o;
  throw Error("this braid was built with BRAID_SERVE_HTTP=OFF (no cpp-httplib): install libcpp-httplib-dev and "
              "configure again to serve");
#else
  // SIGINT and SIGTERM go to one thread that waits for them (every thread made from here
  // on inherits the mask); a client that hangs up must not kill the server with SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  GgufFile file = GgufFile::open(o.file);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(file);
  Model model = load_gguf_model(file);
  if (o.context > 0) {
    model.config.n_ctx = o.context;
  } else {
    model.config.n_ctx = std::min(model.config.n_ctx, kDefaultMaxContext);
  }
  model.config.cache_type = cache_type_named(o.cache_type);
  const std::string backend = o.backend.empty() ? (cuda_available() ? "cuda" : "cpu") : o.backend;
  const int parallel = o.parallel > 0 ? o.parallel : (backend == "cuda" ? 8 : 4);

  serve::ServerConfig config;
  config.model_name = o.model_name.empty() ? std::filesystem::path(o.file).stem().string() : o.model_name;
  try {
    config.chat_template = choose_chat_template(o.chat_template, file.get_string("tokenizer.chat_template", ""),
                                                tokenizer->vocabulary());
    config.has_chat_template = true;
  } catch (const Error& e) {
    if (!o.chat_template.empty()) throw;  // a name the user gave must be right
    fmt::print(stderr, "braid serve: no chat template ({}): /v1/chat/completions answers 400\n", e.what());
  }
  config.http_threads = parallel + o.queue + 4;

  serve::EngineOptions engine_options;
  engine_options.backend = backend;
  engine_options.scheduler.slots = parallel;
  engine_options.scheduler.max_waiting = o.queue;
  engine_options.scheduler.chunk_size = o.chunk;
  engine_options.runner.policy = policy_from_name(o.policy);
  engine_options.runner.plan.max_streams = o.streams;
  engine_options.runner.fuse = o.fuse;

  fmt::print(stderr, "braid serve: {} as '{}', backend {}, {} slots (one batched graph a step), context {}, "
                     "{} cache, queue {}, policy {}{}\n",
             o.file, config.model_name, backend, parallel, model.config.n_ctx, o.cache_type, o.queue, o.policy,
             o.fuse ? ", fused projections" : "");
  serve::Metrics metrics;
  serve::Engine engine(model, *tokenizer, engine_options, &metrics);
  serve::HttpServer server(engine, *tokenizer, config, metrics);
  const int port = server.bind(o.host, o.port);

  std::atomic<bool> listening_done{false};
  std::thread signal_thread([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    if (!listening_done) fmt::print(stderr, "braid serve: signal {}: stopping\n", signal_number);
    engine.stop();  // ends the requests in flight, so their handlers return
    server.stop();
  });
  fmt::print("braid serve: listening on http://{}:{}\n", o.host, port);
  std::fflush(stdout);
  server.listen();
  listening_done = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // (a no-op wait when a signal already came)
  signal_thread.join();
  engine.stop();
  fmt::print(stderr, "braid serve: stopped\n");
#endif
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions)");
  cmd->add_option("-m,--model", o->file, "GGUF model file")->required();
  cmd->add_option("--host", o->host, "Address to bind (loopback by default)")->capture_default_str();
  cmd->add_option("--port", o->port, "Port; 0: any free one (printed)")->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--parallel", o->parallel, "Slots: sequences that run at once, one batch (default 4 on cpu, 8 on cuda)")
      ->check(positive());
  cmd->add_option("--ctx", o->context, "Context length of each slot (default: the model's, at most 4096)")
      ->check(positive());
  add_cache_type_option(*cmd, o->cache_type);
  cmd->add_option("--queue", o->queue, "Requests that may wait for a slot; beyond them: 503")
      ->capture_default_str()->check(non_negative());
  cmd->add_option("--chunk", o->chunk, "Largest prompt chunk per step (a power of two)")->capture_default_str()
      ->check(CLI::IsMember({1, 2, 4, 8, 16, 32, 64, 128, 256}));
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat template, instead of the model's: " + known_chat_template_names());
  cmd->add_option("--policy", o->policy, "Plan policy: serial, branch, levels, chains, cost, auto")
      ->capture_default_str();
  cmd->add_option("--streams", o->streams, "Most streams a plan may use")->capture_default_str()
      ->check(CLI::Range(1, 32));
  cmd->add_flag("--fuse", o->fuse, "Fuse sibling projections (q/k/v, gate/up) into one mul_mat each");
  cmd->add_option("--backend", o->backend, "cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  cmd->add_option("--model-name", o->model_name, "The model's id in the API (default: the file name without .gguf)");
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace braid::cli
