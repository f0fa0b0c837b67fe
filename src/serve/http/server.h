// The HTTP face of `braid serve` (cpp-httplib): the OpenAI routes, /health and /metrics.
// Handlers parse and check the body (serve/request.h), render and tokenize the prompt,
// submit it to the Engine and relay what it generates, whole or as server-sent events.
// Nothing a client sends reaches the engine unchecked; every failure is a JSON error
// with an HTTP status, never a dropped connection.
#pragma once

#include <memory>
#include <string>

#include "braid/chat_template.h"
#include "braid/tokenizer.h"
#include "serve/engine.h"
#include "serve/metrics.h"

namespace httplib {
class Server;
}

namespace braid::serve {

struct ServerConfig {
  std::string model_name;             // the id /v1/models lists and requests may name
  ChatTemplate chat_template;
  bool has_chat_template = false;     // false: /v1/chat/completions answers 400
  int http_threads = 8;               // connections served at once
};

class HttpServer {
 public:
  HttpServer(Engine& engine, const Tokenizer& tokenizer, ServerConfig config, Metrics& metrics);
  ~HttpServer();
  // Binds to host:port (port 0: any free port) and returns the port; throws braid::Error.
  int bind(const std::string& host, int port);
  void listen();  // serves until stop()
  void stop();    // from any thread

 private:
  void add_routes();
  std::unique_ptr<httplib::Server> server_;
  Engine& engine_;
  const Tokenizer& tokenizer_;
  ServerConfig config_;
  Metrics& metrics_;
};

}  // namespace braid::serve
