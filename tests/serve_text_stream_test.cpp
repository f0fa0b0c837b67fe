// Streamed text: stop strings across token boundaries, held-back prefixes, whole UTF-8.
#include <gtest/gtest.h>

#include "serve/text_stream.h"

namespace braid::serve {
namespace {

TEST(ServeTextStreamTest, WithoutStopStringsTextPassesAtOnce) {
  TextStream t;
  EXPECT_EQ(t.push("Once"), "Once");
  EXPECT_EQ(t.push(" upon"), " upon");
  EXPECT_EQ(t.finish(), "");
  EXPECT_EQ(t.text(), "Once upon");
}

TEST(ServeTextStreamTest, StopStringSpanningTokensIsNeverSent) {
  TextStream t({"the end"});
  EXPECT_EQ(t.push("It was th"), "It was ");  // "th" may begin the stop string
  EXPECT_EQ(t.push("e e"), "");
  EXPECT_EQ(t.push("nd. More"), "");
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.push("after"), "");
  EXPECT_EQ(t.finish(), "");
  EXPECT_EQ(t.text(), "It was ");
}

TEST(ServeTextStreamTest, HeldTextIsReleasedWhenItTurnsOutHarmless) {
  TextStream t({"\n\n", "STOP"});
  EXPECT_EQ(t.push("a\n"), "a");
  EXPECT_EQ(t.push("b"), "\nb");
  EXPECT_EQ(t.push("ST"), "");
  EXPECT_EQ(t.push("OP"), "");
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.text(), "a\nb");
  TextStream u({"xyz"});
  EXPECT_EQ(u.push("wx"), "w");
  EXPECT_EQ(u.finish(), "x");  // the end of the sequence releases what was held
  EXPECT_FALSE(u.stopped());
}

TEST(ServeTextStreamTest, EarliestStopStringWins) {
  TextStream t({"cd", "b"});
  EXPECT_EQ(t.push("abcd"), "a");
  EXPECT_TRUE(t.stopped());
}

TEST(ServeTextStreamTest, NeverSendsHalfACharacter) {
  TextStream t({"!"});
  const std::string smile = "\xF0\x9F\x98\x80";
  EXPECT_EQ(t.push(smile.substr(0, 1)), "");
  EXPECT_EQ(t.push(smile.substr(1, 2)), "");
  EXPECT_EQ(t.push(smile.substr(3) + "ok"), smile + "ok");
  EXPECT_EQ(t.push("\xC3"), "");
  EXPECT_EQ(t.push("\xA9!"), "\xC3\xA9");
  EXPECT_TRUE(t.stopped());
}

TEST(ServeTextStreamTest, MultiByteStopString) {
  TextStream t({"\xC3\xA9t\xC3\xA9"});  // "été"
  EXPECT_EQ(t.push("l'\xC3"), "l'");
  EXPECT_EQ(t.push("\xA9t"), "");
  EXPECT_EQ(t.push("\xC3\xA9"), "");
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.text(), "l'");
}

}  // namespace
}  // namespace braid::serve
