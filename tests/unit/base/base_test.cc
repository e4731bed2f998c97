#include <chrono>
#include <set>

#include <gtest/gtest.h>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/status.h"
#include "faas/base/text.h"
#include "faas/base/time.h"

namespace faas {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsUnitsAndBareMilliseconds) {
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("2s"), milliseconds(2000));
  EXPECT_EQ(*ParseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(*ParseDuration("1h"), milliseconds(3600000));
  EXPECT_EQ(*ParseDuration("40"), milliseconds(40));
  EXPECT_EQ(*ParseDuration("7us"), std::chrono::microseconds(7));
}

TEST(ParseDuration, RejectsGarbageWithTheValueInTheMessage) {
  auto r = ParseDuration("2x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"2x\""), std::string::npos);
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("-1s").ok());
  EXPECT_FALSE(ParseDuration("99999999999999999h").ok());
}

TEST(FormatDuration, RoundTrips) {
  for (const char* s : {"250ms", "2s", "5m", "1h"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(s)), s);
  }
}

TEST(InvocationId, IsUniqueSortableAndWellFormed) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string id = NewInvocationId();
    ASSERT_EQ(id.size(), 26u);
    for (char c : id) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) << id;
    }
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Status, ErrnoErrorNamesCallObjectAndErrno) {
  Status s = ErrnoError(ENOENT, "open", "/x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "open(/x): No such file or directory [ENOENT]");
}

Result<int> Half(int x) {
  if (x % 2 != 0) {
    return InvalidArgumentError("odd");
  }
  return x / 2;
}

Status UseHalf(int x, int* out) {
  FAAS_ASSIGN_OR_RETURN(*out, Half(x));
  return OkStatus();
}

TEST(Status, AssignOrReturnPropagates) {
  int out = 0;
  EXPECT_TRUE(UseHalf(4, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(UseHalf(3, &out).code(), StatusCode::kInvalidArgument);
}

TEST(LogField, QuotesAndEscapesUntrustedValues) {
  EXPECT_EQ(log::Format("ev", {{"fn", "hello"}, {"n", 3}}), "ev fn=hello n=3");
  EXPECT_EQ(log::Format("ev", {{"v", "a b\"c\n"}}), "ev v=\"a b\\\"c\\x0a\"");
  EXPECT_EQ(log::Format("ev", {{"v", "k=v"}}), "ev v=\"k=v\"");
}

TEST(Text, QuoteForMessageShowsOnlyPrintableAsciiAndBoundsTheLength) {
  EXPECT_EQ(QuoteForMessage("orders"), "\"orders\"");
  EXPECT_EQ(QuoteForMessage(std::string("a\"b\\c\nd\0e\xff", 10)), "\"a?b?c?d?e?\"");
  EXPECT_EQ(QuoteForMessage("abcdef", 3), "\"abc...\"");
  EXPECT_EQ(QuoteForMessage("abc", 3), "\"abc\"");
  EXPECT_EQ(QuoteForMessage(""), "\"\"");
}

}  // namespace
}  // namespace faas
