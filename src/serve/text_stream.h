// The text of a generated sequence as it streams out, token piece by token piece: never a
// broken UTF-8 character (Utf8StreamDecoder holds back an incomplete one), and never text
// that belongs to a stop string, even one that spans several tokens: text that could be
// the start of a stop string is held back until the next pieces show whether it is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "braid/utf8_stream.h"

namespace braid::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Adds a token's bytes; returns the text that is now safe to send. After a stop string
  // has appeared, stopped() is true, the text before it has been returned and everything
  // later is dropped.
  std::string push(std::string_view piece);
  // The end of the sequence (not by a stop string): what is still held back.
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return sent_; }  // everything returned so far

 private:
  std::vector<std::string> stops_;
  Utf8StreamDecoder utf8_;
  std::string held_;  // complete characters that may begin a stop string
  std::string sent_;
  bool stopped_ = false;
};

}  // namespace braid::serve
