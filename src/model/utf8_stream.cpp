#include "braid/utf8_stream.h"

namespace braid {
namespace {

// Bytes in the character a lead byte starts; 0 when `byte` starts none.
size_t announced_length(unsigned char byte) {
  if (byte >= 0xC2 && byte <= 0xDF) return 2;
  if (byte >= 0xE0 && byte <= 0xEF) return 3;
  if (byte >= 0xF0 && byte <= 0xF4) return 4;
  return 0;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  std::string text = std::move(held_);
  held_.clear();
  text.append(bytes);
  // Only the last three bytes can belong to an unfinished character: find its lead.
  const size_t size = text.size();
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const auto byte = static_cast<unsigned char>(text[size - back]);
    if (is_continuation(byte)) continue;
    if (announced_length(byte) > back) {
      held_ = text.substr(size - back);
      text.resize(size - back);
    }
    break;
  }
  return text;
}

std::string Utf8StreamDecoder::flush() {
  std::string rest = std::move(held_);
  held_.clear();
  return rest;
}

}  // namespace braid
