// libFuzzer target for everything braid reads from a GGUF file: the container (header,
// metadata, tensor table), the tokenizer keys, and the llama/Mixtral model built from it.
//
// The contract under test (see Note [Untrusted sizes] in src/model/gguf_reader.cpp): any
// bytes either load or throw braid::Error. Any other exception (std::length_error,
// std::bad_alloc, ...) escapes this function, and libFuzzer reports it as a crash, as it
// does for sanitizer reports, allocations over -malloc_limit_mb and timeouts.
//
// Build and run (see docs/RELIABILITY.md):
//   cmake --preset fuzz && nice cmake --build build-fuzz -j1 --target braid_gguf_fuzzer
//   nice build-fuzz/fuzz/braid_gguf_fuzzer -max_total_time=600 -rss_limit_mb=2048 fuzz/work fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "braid/gguf.h"
#include "braid/model.h"
#include "braid/tokenizer.h"

namespace {

// Reads every byte of a tensor, so that a data pointer or size that strays outside the
// input is caught by AddressSanitizer here rather than later in a kernel.
uint32_t touch(const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i < bytes; ++i) sum = sum * 31 + p[i];
  return sum;
}

void check_tokenizer(const braid::GgufFile& file) {
  try {
    const auto tokenizer = braid::load_tokenizer(file);
    const auto ids = tokenizer->encode("Hello world! \xc3\xbc 1234 \n\t <s>", true);
    const std::string text = tokenizer->decode(ids);
    volatile uint32_t sink = touch(text.data(), text.size());
    for (const int32_t id : ids) {
      const std::string piece = tokenizer->token_to_piece(id);
      sink = sink + touch(piece.data(), piece.size());
    }
  } catch (const braid::Error&) {
  }
}

void check_model(const braid::GgufFile& file) {
  std::optional<braid::Model> model;
  try {
    model.emplace(braid::load_gguf_model(file));
  } catch (const braid::Error&) {
    return;
  }
  volatile uint32_t sink = 0;
  for (const braid::WeightTensor& t : model->tensors()) sink = sink + touch(t.data, t.bytes());
  // A model that loads must also give a graph (or a clear error): its shapes come from
  // the file. One token keeps this cheap.
  try {
    const braid::ModelGraph graph = braid::build_graph(*model, 1);
    sink = sink + static_cast<uint32_t>(graph.graph.tensor_count());
  } catch (const braid::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<braid::GgufFile> file;
  try {
    // libFuzzer passes a heap copy of exactly `size` bytes: any read past it is reported.
    file.emplace(braid::GgufFile::parse(nullptr, data, size, "fuzz.gguf"));
  } catch (const braid::Error&) {
    return 0;
  }
  // What `braid info` prints.
  for (const auto& [key, value] : file->metadata()) (void)value.to_string(8);
  for (const braid::GgufTensorInfo& t : file->tensors()) {
    (void)t.shape_string();
    touch(t.data, static_cast<size_t>(t.bytes));
  }
  check_tokenizer(*file);
  check_model(*file);
  return 0;
}
