// The byte-level alphabet (byte_level.h), built once as two tables.
#include "model/bpe/byte_level.h"

#include <array>
#include <cstdint>

namespace braid::bpe {
namespace {

std::string utf8_of(uint32_t code_point) {
  // All code points here are below U+0800: one or two bytes.
  if (code_point < 0x80) return std::string(1, static_cast<char>(code_point));
  return {static_cast<char>(0xC0 | (code_point >> 6)), static_cast<char>(0x80 | (code_point & 0x3F))};
}

bool stands_for_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

constexpr uint32_t kAlphabetEnd = 0x100 + 68;  // one past the highest code point used

struct Alphabet {
  std::array<std::string, 256> char_of_byte;
  std::array<int16_t, kAlphabetEnd> byte_of_code_point;  // -1: not in the alphabet

  Alphabet() {
    byte_of_code_point.fill(-1);
    uint32_t next_extra = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const uint32_t code_point = stands_for_itself(byte) ? static_cast<uint32_t>(byte) : next_extra++;
      char_of_byte[static_cast<size_t>(byte)] = utf8_of(code_point);
      byte_of_code_point[code_point] = static_cast<int16_t>(byte);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

}  // namespace

const std::string& byte_to_char(unsigned char byte) { return alphabet().char_of_byte[byte]; }

void append_byte_level(std::string_view bytes, std::string& out) {
  const Alphabet& a = alphabet();
  for (char c : bytes) out += a.char_of_byte[static_cast<unsigned char>(c)];
}

std::string bytes_of_byte_level(std::string_view piece) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(piece.size());
  for (size_t at = 0; at < piece.size();) {
    const auto lead = static_cast<unsigned char>(piece[at]);
    // Alphabet characters take one byte (below U+0080) or two (a lead byte 0xC2..0xC5).
    uint32_t code_point = kAlphabetEnd;
    size_t length = 1;
    if (lead < 0x80) {
      code_point = lead;
    } else if ((lead & 0xE0) == 0xC0 && at + 1 < piece.size() &&
               (static_cast<unsigned char>(piece[at + 1]) & 0xC0) == 0x80) {
      code_point = ((lead & 0x1Fu) << 6) | (static_cast<unsigned char>(piece[at + 1]) & 0x3Fu);
      length = 2;
    }
    const int byte = code_point < kAlphabetEnd ? a.byte_of_code_point[code_point] : -1;
    if (byte >= 0) {
      out += static_cast<char>(byte);
    } else {
      out.append(piece.substr(at, length));
    }
    at += length;
  }
  return out;
}

}  // namespace braid::bpe
