// Utf8SequenceLength, IsValidUtf8, JsonEscape and AppendJsonBytes: the one copy of each, which
// the gateway (error bodies), the CLI (rendering) and the store (ledger journal, queue headers)
// share. The expected bytes are the ones each user wrote before they moved here.
#include "faas/base/text.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace faas {
namespace {

using std::string_view_literals::operator""sv;

TEST(Utf8SequenceLength, CountsWellFormedSequences) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1U);
  EXPECT_EQ(Utf8SequenceLength("\0"sv, 0), 1U);
  EXPECT_EQ(Utf8SequenceLength("\xc3\xa9", 0), 2U);          // é
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac", 0), 3U);      // €
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x98\x80", 0), 4U);  // U+1F600
  EXPECT_EQ(Utf8SequenceLength("\xf4\x8f\xbf\xbf", 0), 4U);  // U+10FFFF, the last
  EXPECT_EQ(Utf8SequenceLength("x\xc3\xa9", 1), 2U);         // from an offset
}

TEST(Utf8SequenceLength, ZeroForIllFormedSequences) {
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0U);              // lone continuation
  EXPECT_EQ(Utf8SequenceLength("\xc0\xaf", 0), 0U);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xc1\xbf", 0), 0U);          // overlong
  EXPECT_EQ(Utf8SequenceLength("\xe0\x9f\xbf", 0), 0U);      // overlong 3-byte
  EXPECT_EQ(Utf8SequenceLength("\xed\xa0\x80", 0), 0U);      // UTF-16 surrogate
  EXPECT_EQ(Utf8SequenceLength("\xf0\x8f\xbf\xbf", 0), 0U);  // overlong 4-byte
  EXPECT_EQ(Utf8SequenceLength("\xf4\x90\x80\x80", 0), 0U);  // past U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xf5\x80\x80\x80", 0), 0U);  // lead byte RFC 3629 forbids
  EXPECT_EQ(Utf8SequenceLength("\xff", 0), 0U);
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82", 0), 0U);  // truncated
  EXPECT_EQ(Utf8SequenceLength("\xc3z", 0), 0U);     // not a continuation byte
}

TEST(IsValidUtf8, AgreesWithUtf8SequenceLength) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain \x7f"));
  EXPECT_TRUE(IsValidUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("ok\xe2\x82"));  // truncated at the end
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));
  EXPECT_FALSE(IsValidUtf8("a\x80z"));
}

TEST(JsonEscape, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonEscape(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(JsonEscape("\n\r\t\b\f\x01\x1f\0"sv), R"(\n\r\t\b\f\u0001\u001f\u0000)");
  EXPECT_EQ(JsonEscape("\x7f"), "\x7f");  // DEL is legal in JSON strings
  EXPECT_EQ(JsonEscape(""), "");
}

TEST(JsonEscape, KeepsValidUtf8AndReplacesEachInvalidByte) {
  EXPECT_EQ(JsonEscape("h\xc3\xa9llo \xe2\x82\xac"), "h\xc3\xa9llo \xe2\x82\xac");
  EXPECT_EQ(JsonEscape("a\xffz"), R"(a\ufffdz)");
  EXPECT_EQ(JsonEscape("\xc0\xaf"), R"(\ufffd\ufffd)");
  EXPECT_EQ(JsonEscape("\xe2\x82!"), R"(\ufffd\ufffd!)");
}

TEST(AppendJsonBytes, OneCodePointPerByteInQuotes) {
  std::string out = "x=";
  AppendJsonBytes(out, "a\"b\\c");
  EXPECT_EQ(out, R"(x="a\"b\\c")");
  out.clear();
  // No short forms: \n is \u000a, DEL and every byte >= 0x80 is \u00XX, even valid UTF-8.
  AppendJsonBytes(out, "\n\x7f\xc3\xa9\xff\0"sv);
  EXPECT_EQ(out, R"("\u000a\u007f\u00c3\u00a9\u00ff\u0000")");
  out.clear();
  AppendJsonBytes(out, "");
  EXPECT_EQ(out, R"("")");
}

}  // namespace
}  // namespace faas
