// libFuzzer target for everything braid reads from a GGUF file: the container (header,
// metadata, tensor table), the tokenizer keys, and the llama/Mixtral model and graph
// built from it. The work is in gguf_input_check.h; a crash is any exception other than
// braid::Error, any sanitizer report, an allocation over -malloc_limit_mb (default: the
// -rss_limit_mb) or a timeout.
//
// Build and run (docs/RELIABILITY.md):
//   cmake --preset fuzz && nice cmake --build build-fuzz -j1 --target braid_gguf_fuzzer
//   nice build-fuzz/fuzz/braid_gguf_fuzzer -max_total_time=600 -rss_limit_mb=2048 NEW_INPUTS_DIR fuzz/corpus
// A crash input found this way goes into fuzz/corpus/ as crash-WHAT.gguf (replayed by
// tests/gguf_fuzz_corpus_test.cpp in every test run) together with its fix.
#include "gguf_input_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)braid::fuzz::check_gguf_input(data, size);
  return 0;
}
