#include "serve/http/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <random>

#include "braid/graph.h"
#include "serve/request.h"
#include "serve/responses.h"

namespace braid::serve {
namespace {

constexpr size_t kMaxBodyBytes = 8 << 20;
// A streaming handler with nothing to send writes an SSE comment this often, which is how
// it learns that its client has gone while the request waits in the queue.
constexpr std::chrono::milliseconds kPingEvery{500};
constexpr std::chrono::milliseconds kPoll{50};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_error(httplib::Response& res, const RequestError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

std::string new_id(Endpoint endpoint) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{:x}{:06x}", endpoint == Endpoint::Chat ? "chatcmpl" : "cmpl", unix_now(), ++counter);
}

uint64_t random_seed() {
  static std::atomic<uint64_t> counter{0};
  return std::random_device{}() ^ (++counter * 0x9E3779B97F4A7C15ull);
}

std::string sse(const std::string& data) { return "data: " + data + "\n\n"; }

}  // namespace

HttpServer::HttpServer(Engine& engine, const Tokenizer& tokenizer, ServerConfig config, Metrics& metrics)
    : server_(std::make_unique<httplib::Server>()),
      engine_(engine),
      tokenizer_(tokenizer),
      config_(std::move(config)),
      metrics_(metrics) {
  const size_t threads = static_cast<size_t>(std::max(2, config_.http_threads));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(kMaxBodyBytes);
  add_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind(const std::string& host, int port) {
  if (port == 0) {
    const int bound = server_->bind_to_any_port(host);
    if (bound < 0) throw Error(fmt::format("serve: cannot bind to {} (any port)", host));
    return bound;
  }
  if (!server_->bind_to_port(host, port)) {
    throw Error(fmt::format("serve: cannot bind to {}:{} (in use, or not an address of this machine)", host, port));
  }
  return port;
}

void HttpServer::listen() { server_->listen_after_bind(); }
void HttpServer::stop() { server_->stop(); }

void HttpServer::add_routes() {
  httplib::Server& s = *server_;
  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus_text(), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_body(config_.model_name, unix_now()), "application/json");
  });

  auto generate = [this](Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res) {
      const RequestLimits limits{engine_.n_ctx(), {config_.model_name}};
      Job job;
      Request request;
      try {
        request = parse_request(req.body, endpoint, limits);
        std::vector<int32_t> tokens;
        if (endpoint == Endpoint::Chat) {
          if (!config_.has_chat_template) {
            throw RequestError(400, "the model has no chat template: start the server with --chat-template NAME",
                               "messages");
          }
          std::string text;
          try {
            text = render_chat(config_.chat_template, request.messages, true);
          } catch (const Error& e) {
            throw RequestError(400, e.what(), "messages");
          }
          tokens = tokenizer_.encode_with_special(text, false);
          const Vocabulary& vocab = tokenizer_.vocabulary();
          // The template may write BOS itself; one is enough (as ChatSession does).
          if (vocab.add_bos && vocab.bos_id >= 0 && (tokens.empty() || tokens.front() != vocab.bos_id)) {
            tokens.insert(tokens.begin(), vocab.bos_id);
          }
        } else {
          tokens = tokenizer_.encode(request.prompt, tokenizer_.vocabulary().add_bos);
        }
        job.max_tokens = check_prompt_length(request, static_cast<int>(tokens.size()), engine_.n_ctx());
        job.prompt = std::move(tokens);
      } catch (const RequestError& e) {
        metrics_.count_request(e.status);
        send_error(res, e);
        return;
      }
      if (request.temperature) job.sampling.temperature = *request.temperature;
      if (request.top_p) job.sampling.top_p = *request.top_p;
      if (request.top_k) job.sampling.top_k = *request.top_k;
      job.sampling.presence_penalty = request.presence_penalty;
      job.sampling.frequency_penalty = request.frequency_penalty;
      job.sampling.seed = request.seed ? *request.seed : random_seed();
      job.stop = request.stop;
      job.ignore_eos = request.ignore_eos;

      std::shared_ptr<RequestHandle> handle = engine_.submit(std::move(job));
      if (!handle) {
        const RequestError busy(503, "the server is busy: every slot is taken and the queue is full; retry later", "",
                                "server_busy", "server_error");
        metrics_.count_request(503);
        send_error(res, busy);
        return;
      }
      const ResponseInfo info{endpoint, new_id(endpoint), request.model.empty() ? config_.model_name : request.model,
                              unix_now()};

      if (!request.stream) {
        const StreamUpdate end = handle->wait_all();
        if (end.finish == FinishReason::Error || end.finish == FinishReason::Cancelled) {
          const RequestError failed(500, end.error.empty() ? "the request was cancelled" : end.error, "", "",
                                    "server_error");
          metrics_.count_request(500);
          send_error(res, failed);
          return;
        }
        metrics_.count_request(200);
        res.set_content(completion_body(info, end.text, end.finish, end.usage), "application/json");
        return;
      }

      // Streaming: the provider runs on this connection's thread, once per chunk, until
      // it says done or its client is gone (a failed write); then the releaser runs.
      struct StreamState {
        bool first = true;
        bool finished = false;
        std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
      };
      auto state = std::make_shared<StreamState>();
      const bool include_usage = request.include_usage;
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, handle, state, info, include_usage](size_t, httplib::DataSink& sink) {
            const StreamUpdate update = handle->next(kPoll);
            const auto now = std::chrono::steady_clock::now();
            std::string out;
            if (update.done && (update.finish == FinishReason::Error || update.finish == FinishReason::Cancelled)) {
              if (!update.text.empty()) out += sse(chunk_body(info, update.text, state->first, std::nullopt));
              const RequestError failed(500, update.error.empty() ? "the request was cancelled" : update.error, "",
                                        "", "server_error");
              out += sse(error_body(failed));
            } else if (!update.text.empty() || update.done || state->first) {
              std::optional<FinishReason> finish;
              if (update.done) finish = update.finish;
              out += sse(chunk_body(info, update.text, state->first, finish));
              state->first = false;
              if (update.done && include_usage) out += sse(usage_chunk_body(info, update.usage));
            } else if (now - state->last_write >= kPingEvery) {
              out = ": ping\n\n";
            }
            if (update.done) out += "data: [DONE]\n\n";
            if (!out.empty()) {
              if (!sink.write(out.data(), out.size())) return false;  // the client is gone
              state->last_write = now;
            }
            if (update.done) {
              state->finished = true;
              sink.done();
            }
            return true;
          },
          [this, handle, state](bool success) {
            if (!state->finished) {
              engine_.cancel(handle->id());  // the slot is freed at the next step
              metrics_.count_request(499);   // (nginx's "client closed request")
            } else {
              metrics_.count_request(success ? 200 : 499);
            }
          });
    };
  };
  s.Post("/v1/chat/completions", generate(Endpoint::Chat));
  s.Post("/v1/completions", generate(Endpoint::Completion));
  // The same routes without /v1, as llama-server answers them.
  s.Post("/chat/completions", generate(Endpoint::Chat));
  s.Post("/completions", generate(Endpoint::Completion));
  // A route asked with a method it does not take: 405 and the one it takes (HTTP's Allow),
  // not a 404 that says the route is missing.
  const auto refuse_method = [](const char* allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      res.status = 405;
      res.set_header("Allow", allowed);
      const std::string message = fmt::format("{} takes {}, not {}", req.path, allowed, req.method);
      res.set_content(error_body(RequestError(405, message)), "application/json");
    };
  };
  for (const char* path : {"/v1/chat/completions", "/v1/completions", "/chat/completions", "/completions"}) {
    s.Get(path, refuse_method("POST"));
    s.Put(path, refuse_method("POST"));
    s.Patch(path, refuse_method("POST"));
    s.Delete(path, refuse_method("POST"));
  }
  for (const char* path : {"/health", "/metrics", "/v1/models"}) {
    s.Post(path, refuse_method("GET"));
    s.Put(path, refuse_method("GET"));
    s.Patch(path, refuse_method("GET"));
    s.Delete(path, refuse_method("GET"));
  }

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* type = res.status >= 500 ? "server_error" : "invalid_request_error";
    std::string message = res.status == 404 ? fmt::format("no route {} {}", req.method, req.path)
                          : res.status == 413 ? std::string("the body is too large")
                                              : fmt::format("HTTP {}", res.status);
    res.set_content(error_body(RequestError(res.status, message, "", "", type)), "application/json");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(error_body(RequestError(500, message, "", "", "server_error")), "application/json");
  });
}

}  // namespace braid::serve
