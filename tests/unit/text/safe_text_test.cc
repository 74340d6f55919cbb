#include "sanitizers/text/safe_text.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace mugai {
namespace {

using namespace std::string_literals;

TEST(IsValidUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ASCII\r\n"));
  EXPECT_TRUE(IsValidUtf8("日本語のテキスト、①②③ 髙橋"));
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("a\0b\0"s));           // NUL is well-formed, if unwanted
}

TEST(IsValidUtf8, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xE6\x97"));  // truncated 日
  EXPECT_FALSE(IsValidUtf8("ok\x80"));    // lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\0\xFF"s));   // past a NUL too
}

TEST(ValidUtf8Prefix, StopsAtTheFirstBadByte) {
  EXPECT_EQ(ValidUtf8Prefix(""), 0u);
  EXPECT_EQ(ValidUtf8Prefix("ab\xC0\x80"), 2u);
  EXPECT_EQ(ValidUtf8Prefix("a\0b\xE6\x97"s), 3u);
  EXPECT_EQ(ValidUtf8Prefix("日本"), 6u);
}

TEST(MakeSafeText, RemovesBidiOverrides) {
  SafeText safe = MakeSafeText("invoice\u202Etxt.exe");
  EXPECT_EQ(safe.text, "invoicetxt.exe");
  EXPECT_EQ(safe.removed, 1u);
  safe = MakeSafeText("\u202Aa\u202Bb\u202Cc\u202Dd\u2066e\u2067f\u2068g\u2069");
  EXPECT_EQ(safe.text, "abcdefg");
  EXPECT_EQ(safe.removed, 8u);
}

TEST(MakeSafeText, RemovesControlsButKeepsTabAndLineFeed) {
  SafeText safe = MakeSafeText("a\tb\nc\x1B[31md\x07\x7F\0e"s);
  EXPECT_EQ(safe.text, "a\tb\nc[31mde");
  EXPECT_EQ(safe.removed, 4u);  // ESC, BEL, DEL, NUL
  safe = MakeSafeText("x\u0085y\u009Bz\u0080");
  EXPECT_EQ(safe.text, "xyz");
  EXPECT_EQ(safe.removed, 3u);
}

TEST(MakeSafeText, NormalisesLineEnds) {
  SafeText safe = MakeSafeText("one\r\ntwo\rthree\r\r\nfour\r");
  EXPECT_EQ(safe.text, "one\ntwo\nthree\n\nfour\n");
  EXPECT_EQ(safe.removed, 0u);
}

TEST(MakeSafeText, RemovesByteOrderMarksAndAnnotations) {
  SafeText safe = MakeSafeText("\uFEFFtext\uFEFF \uFFF9base\uFFFAruby\uFFFB");
  EXPECT_EQ(safe.text, "text baseruby");
  EXPECT_EQ(safe.removed, 5u);
}

TEST(MakeSafeText, KeepsOrdinaryText) {
  std::string text = "日本語のテキスト、①②③ 髙橋\n\u00A0«quoted» \U0001F600\n";
  SafeText safe = MakeSafeText(text);
  EXPECT_EQ(safe.text, text);
  EXPECT_EQ(safe.removed, 0u);
}

TEST(MakeSafeText, RefusesInvalidUtf8) {
  EXPECT_THROW(MakeSafeText("ok\xE6\x97"), std::invalid_argument);
  EXPECT_THROW(MakeSafeText("\xED\xA0\x80"), std::invalid_argument);
}

}  // namespace
}  // namespace mugai
