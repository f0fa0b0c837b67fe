// Text streamed token by token: a byte-level BPE or SentencePiece byte token may carry
// only part of a multi-byte UTF-8 character (an emoji can take four tokens).
// Utf8StreamDecoder holds back an incomplete character at the end of what it was given
// until the rest arrives, so that what it passes on can be printed piece by piece
// without a broken character ever reaching the terminal.
#pragma once

#include <string>
#include <string_view>

namespace braid {

class Utf8StreamDecoder {
 public:
  // The bytes held back before plus `bytes`, less an incomplete character at the end
  // (a lead byte followed by fewer continuation bytes than it announces), which waits
  // for the next push. Bytes that can never form a character (a stray continuation
  // byte, 0xFF) pass through as they are: holding them would stall the stream.
  std::string push(std::string_view bytes);
  // What is still held back (the stream ended inside a character), as it is.
  std::string flush();
  bool pending() const { return !held_.empty(); }

 private:
  std::string held_;
};

}  // namespace braid
