// libFuzzer target for the request parser of `braid serve`: any bytes as the JSON body
// of a chat or completion request. Each input must give a checked Request or a
// RequestError (a 400 the server sends); any other exception, a sanitizer report, an
// allocation over the limit or a timeout is a crash.
//
//   cmake --preset fuzz && nice cmake --build build-fuzz -j1 --target braid_serve_request_fuzzer
//   nice build-fuzz/fuzz/braid_serve_request_fuzzer -max_total_time=600 NEW_INPUTS_DIR fuzz/corpus_serve
#include <cstdint>
#include <string_view>

#include "serve/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace braid::serve;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const RequestLimits limits{512, {"stories260K"}};
  for (Endpoint endpoint : {Endpoint::Chat, Endpoint::Completion}) {
    try {
      const Request r = parse_request(body, endpoint, limits);
      // What the server checks next, with a prompt length the input decides.
      (void)check_prompt_length(r, static_cast<int>(size % 600), limits.n_ctx);
    } catch (const RequestError& e) {
      if (e.status != 400) __builtin_trap();
      (void)error_body(e);
    }
  }
  return 0;
}
