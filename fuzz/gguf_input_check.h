// What the GGUF fuzzer does with one input, shared with the corpus test
// (tests/gguf_fuzz_corpus_test.cpp) so that every corpus file, crash inputs included, is
// replayed by the ordinary test suite, sanitizer builds included.
//
// The contract (Note [Untrusted sizes] in src/model/gguf_reader.cpp): any bytes either
// load or throw braid::Error. Any other exception escapes check_gguf_input, which
// libFuzzer reports as a crash and GoogleTest as a failure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "braid/chat_template.h"
#include "braid/gguf.h"
#include "braid/model.h"
#include "braid/tokenizer.h"
#include "braid/utf8_stream.h"

namespace braid::fuzz {

struct GgufInputResult {
  bool parsed = false;     // the container parsed
  bool tokenizer = false;  // a tokenizer loaded and encoded a text
  bool model = false;      // a model loaded and its graph was built
  std::string parse_error, tokenizer_error, model_error;
};

// Reads every byte of a range, so that a data pointer or size that strays outside the
// input is caught by AddressSanitizer here rather than later in a kernel.
inline uint32_t touch(const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i < bytes; ++i) sum = sum * 31 + p[i];
  return sum;
}

// `data` must stay valid during the call only; a heap copy of exactly `size` bytes lets
// AddressSanitizer catch reads past the end.
inline GgufInputResult check_gguf_input(const uint8_t* data, size_t size) {
  GgufInputResult result;
  volatile uint32_t sink = 0;
  std::optional<GgufFile> file;
  try {
    file.emplace(GgufFile::parse(nullptr, data, size, "fuzz.gguf"));
    result.parsed = true;
  } catch (const Error& e) {
    result.parse_error = e.what();
    return result;
  }
  // What `braid info` prints.
  for (const auto& [key, value] : file->metadata()) sink = sink + static_cast<uint32_t>(value.to_string(8).size());
  for (const GgufTensorInfo& t : file->tensors()) {
    sink = sink + static_cast<uint32_t>(t.shape_string().size()) + touch(t.data, static_cast<size_t>(t.bytes));
  }
  try {
    const auto tokenizer = load_tokenizer(*file);
    const auto ids = tokenizer->encode("Hello world! \xc3\xbc 1234 \n\t <s>", true);
    const std::string text = tokenizer->decode(ids);
    sink = sink + touch(text.data(), text.size());
    for (const int32_t id : ids) {
      const std::string piece = tokenizer->token_to_piece(id);
      sink = sink + touch(piece.data(), piece.size());
    }
    // Bytes of the input as text (any bytes: not UTF-8, special-token text, ...), its
    // pieces streamed as generation does: the stream must give back every byte.
    const size_t tail = std::min<size_t>(size, 256);
    const std::string_view input(reinterpret_cast<const char*>(data + size - tail), tail);
    Utf8StreamDecoder stream;
    std::string pieces, streamed;
    for (const int32_t id : tokenizer->encode(input, false)) {
      const std::string piece = tokenizer->token_to_piece(id);
      pieces += piece;
      streamed += stream.push(piece);
    }
    streamed += stream.flush();
    if (streamed != pieces) throw std::logic_error("Utf8StreamDecoder lost or changed bytes");
    // Chat: special pieces written in the text.
    const auto chat = tokenizer->encode_with_special("<s>Hi</s><|im_start|>user\n<|im_end|>", true);
    sink = sink + static_cast<uint32_t>(chat.size());
    result.tokenizer = true;
  } catch (const Error& e) {
    result.tokenizer_error = e.what();
  }
  try {
    // The chat template the file carries: recognised (or refused) and rendered.
    const std::string chat_template = file->get_string("tokenizer.chat_template", "");
    if (!chat_template.empty()) {
      const std::string text = render_chat(detect_chat_template(chat_template), {{"user", "Hi"}}, true);
      sink = sink + touch(text.data(), text.size());
    }
  } catch (const Error&) {
  }
  try {
    const Model model = load_gguf_model(*file);
    for (const WeightTensor& t : model.tensors()) sink = sink + touch(t.data, t.bytes());
    // Its shapes come from the file: the graph of one token must build (cheap).
    const ModelGraph graph = build_graph(model, 1);
    sink = sink + static_cast<uint32_t>(graph.graph.tensor_count());
    result.model = true;
  } catch (const Error& e) {
    result.model_error = e.what();
  }
  return result;
}

}  // namespace braid::fuzz
