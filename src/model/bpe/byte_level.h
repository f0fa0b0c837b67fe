// GPT-2's byte-level alphabet: every byte stands for one printable Unicode character, so
// that a vocabulary of strings can hold arbitrary bytes (a space is "Ġ", U+0120; a
// newline "Ċ", U+010A). The printable ASCII and Latin-1 bytes stand for themselves; the
// other 68 (controls, space, DEL, the no-break space, the soft hyphen) take the code
// points from U+0100 up, in byte order.
#pragma once

#include <string>
#include <string_view>

namespace braid::bpe {

// The UTF-8 of the character that stands for `byte`.
const std::string& byte_to_char(unsigned char byte);

// Appends the characters standing for the bytes of `bytes` to `out`.
void append_byte_level(std::string_view bytes, std::string& out);

// The bytes a byte-level piece stands for. A character outside the alphabet (in a
// piece added by hand, or a stray byte that is not UTF-8) is kept as it is, so that
// decoding never fails.
std::string bytes_of_byte_level(std::string_view piece);

}  // namespace braid::bpe
