// Utf8StreamDecoder: streamed pieces never end inside a character, and nothing is lost.
#include "braid/utf8_stream.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace braid {
namespace {

// Whether `text` ends inside a multi-byte character.
bool ends_inside_a_character(const std::string& text) {
  for (size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;
    const size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    return length > back;
  }
  return false;
}

TEST(Utf8StreamDecoder, HoldsAnUnfinishedCharacterUntilItCompletes) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("ab\xF0\x9F"), "ab");  // the first half of 🦙
  EXPECT_TRUE(d.pending());
  EXPECT_EQ(d.push("\xA6"), "");
  EXPECT_EQ(d.push("\x99!"), "\xF0\x9F\xA6\x99!");
  EXPECT_FALSE(d.pending());
  EXPECT_EQ(d.push("\xC3"), "");
  EXPECT_EQ(d.push("\xA9"), "\xC3\xA9");
  EXPECT_EQ(d.push(""), "");
}

TEST(Utf8StreamDecoder, PassesBytesThatCanNeverCompleteAndFlushesTheRest) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("\x80\xFF"), "\x80\xFF");       // no lead byte can wait for these
  EXPECT_EQ(d.push("a\xE6\x97"), "a");             // "日" cut after two of three bytes
  EXPECT_EQ(d.push("b"), "\xE6\x97" "b");          // broken for good: passed on, not lost
  EXPECT_EQ(d.push("\xE6\x97"), "");
  EXPECT_EQ(d.flush(), "\xE6\x97");                // the stream ended inside a character
  EXPECT_FALSE(d.pending());
  EXPECT_EQ(d.flush(), "");
}

TEST(Utf8StreamDecoder, RandomCutsOfValidTextNeverBreakACharacter) {
  const std::string text = "Hello \xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x99\xF0\x9F\x98\x80 end";
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    Utf8StreamDecoder d;
    std::string out;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min<size_t>(rng() % 4, text.size() - at);
      const std::string chunk = d.push(text.substr(at, n));
      EXPECT_FALSE(ends_inside_a_character(chunk)) << "trial " << trial << " at " << at;
      out += chunk;
      at += n;
    }
    out += d.flush();
    EXPECT_EQ(out, text);
  }
}

}  // namespace
}  // namespace braid
