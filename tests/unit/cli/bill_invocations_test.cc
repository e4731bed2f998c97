// faasctl bill and invocations: flag parsing, --since/--until times, money and table output.
#include <stdlib.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/base/time.h"
#include "faas/cli/command.h"
#include "faas/cli/render.h"

#include "parse_fixture.h"

namespace faas::cli {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kNov29 = 1795910400000;  // 2026-11-29T00:00:00Z

class BillParseTest : public ParseFixture {};

// --- bill: parsing -------------------------------------------------------------------------

TEST_F(BillParseTest, BillDefaultsAreAllFunctionsAllTimeOneTotal) {
  auto b = ParseAs<BillCommand>({"bill"});
  EXPECT_EQ(b.function, "");
  EXPECT_EQ(b.since_unix_ms, 0);
  EXPECT_EQ(b.until_unix_ms, 0);
  EXPECT_EQ(b.by, "");
}

TEST_F(BillParseTest, BillAllFlags) {
  auto b = ParseAs<BillCommand>({"bill", "--function", "x", "--since", "2026-11-29", "--until",
                                 "2026-11-30T13:00:00Z", "--by", "day"});
  EXPECT_EQ(b.function, "x");
  EXPECT_EQ(b.since_unix_ms, kNov29);
  EXPECT_EQ(b.until_unix_ms, kNov29 + kDayMs + 13 * kHourMs);
  EXPECT_EQ(b.by, "day");
}

TEST_F(BillParseTest, BillByAcceptsFunctionDayHour) {
  EXPECT_EQ(ParseAs<BillCommand>({"bill", "--by", "function"}).by, "function");
  EXPECT_EQ(ParseAs<BillCommand>({"bill", "--by", "day"}).by, "day");
  EXPECT_EQ(ParseAs<BillCommand>({"bill", "--by", "hour"}).by, "hour");
}

TEST_F(BillParseTest, BillRelativeTimesCountBackFromNow) {
  int64_t before = UnixMillisNow();
  auto b = ParseAs<BillCommand>({"bill", "--since", "7d", "--until", "30m"});
  int64_t after = UnixMillisNow();
  EXPECT_GE(b.since_unix_ms, before - 7 * kDayMs);
  EXPECT_LE(b.since_unix_ms, after - 7 * kDayMs);
  // Both relative values use the same "now".
  EXPECT_EQ(b.until_unix_ms - b.since_unix_ms, 7 * kDayMs - 30 * kMinuteMs);
}

TEST_F(BillParseTest, BillEqualSinceAndUntilIsAllowed) {
  auto b = ParseAs<BillCommand>({"bill", "--since", "2026-11-29", "--until", "2026-11-29T00:00"});
  EXPECT_EQ(b.since_unix_ms, b.until_unix_ms);
}

TEST_F(BillParseTest, BillBadByIsUsageErrorNamingFlagAndValue) {
  std::string e = ErrorOf({"bill", "--by", "week"});
  EXPECT_THAT(e, HasSubstr("--by"));
  EXPECT_THAT(e, HasSubstr("week"));
}

TEST_F(BillParseTest, BillBadSinceOrUntilNamesFlagAndValue) {
  EXPECT_THAT(ErrorOf({"bill", "--since", "yesterday"}), HasSubstr("--since \"yesterday\""));
  EXPECT_THAT(ErrorOf({"bill", "--until", "2026-13-01"}), HasSubstr("--until \"2026-13-01\""));
  EXPECT_THAT(ErrorOf({"bill", "--since", "30"}), HasSubstr("needs a unit"));
  EXPECT_THAT(ErrorOf({"bill", "--since", ""}), HasSubstr("--since \"\""));
}

TEST_F(BillParseTest, BillSinceAfterUntilIsUsageError) {
  EXPECT_EQ(ErrorOf({"bill", "--since", "2026-11-30", "--until", "2026-11-29"}),
            "--since \"2026-11-30\" is after --until \"2026-11-29\"");
  EXPECT_THAT(ErrorOf({"bill", "--since", "1h", "--until", "2h"}),
              HasSubstr("--since \"1h\" is after --until \"2h\""));
}

TEST_F(BillParseTest, BillEmptyFunctionIsUsageError) {
  EXPECT_THAT(ErrorOf({"bill", "--function", ""}), HasSubstr("--function \"\": must not be empty"));
}

TEST_F(BillParseTest, BillReportsAllBadValuesAtOnce) {
  std::string e = ErrorOf({"bill", "--function", "", "--since", "soon", "--until", "later"});
  EXPECT_THAT(e, HasSubstr("--function \"\""));
  EXPECT_THAT(e, HasSubstr("--since \"soon\""));
  EXPECT_THAT(e, HasSubstr("--until \"later\""));
}

TEST_F(BillParseTest, BillTakesNoPositionals) {
  EXPECT_FALSE(ErrorOf({"bill", "x"}).empty());
}

// --- invocations: parsing ------------------------------------------------------------------

TEST_F(BillParseTest, InvocationsDefaults) {
  auto i = ParseAs<InvocationsCommand>({"invocations", "hello"});
  EXPECT_EQ(i.name, "hello");
  EXPECT_EQ(i.last, 20u);
  EXPECT_EQ(i.outcome, "");
}

TEST_F(BillParseTest, InvocationsAllFlags) {
  auto i = ParseAs<InvocationsCommand>(
      {"invocations", "hello", "--last", "5", "--outcome", "function_timeout"});
  EXPECT_EQ(i.last, 5u);
  EXPECT_EQ(i.outcome, "function_timeout");
}

TEST_F(BillParseTest, InvocationsLastBounds) {
  EXPECT_EQ(ParseAs<InvocationsCommand>({"invocations", "f", "--last", "1"}).last, 1u);
  EXPECT_EQ(ParseAs<InvocationsCommand>({"invocations", "f", "--last", "1000"}).last, 1000u);
  EXPECT_EQ(ErrorOf({"invocations", "f", "--last", "0"}), "--last \"0\": must be 1..1000");
  EXPECT_EQ(ErrorOf({"invocations", "f", "--last", "1001"}), "--last \"1001\": must be 1..1000");
}

TEST_F(BillParseTest, InvocationsLastMustBeANumber) {
  EXPECT_THAT(ErrorOf({"invocations", "f", "--last", "-1"}),
              HasSubstr("--last \"-1\": must be a non-negative integer"));
  EXPECT_THAT(ErrorOf({"invocations", "f", "--last", "ten"}), HasSubstr("--last \"ten\""));
  EXPECT_THAT(ErrorOf({"invocations", "f", "--last", "5x"}), HasSubstr("--last \"5x\""));
  EXPECT_THAT(ErrorOf({"invocations", "f", "--last", ""}),
              HasSubstr("--last \"\": must not be empty"));
  EXPECT_THAT(ErrorOf({"invocations", "f", "--last", "99999999999"}), HasSubstr("too large"));
}

TEST_F(BillParseTest, InvocationsBadOutcomeIsUsageError) {
  EXPECT_THAT(ErrorOf({"invocations", "f", "--outcome", "Time Out"}),
              HasSubstr("--outcome \"Time Out\""));
  EXPECT_THAT(ErrorOf({"invocations", "f", "--outcome", ""}), HasSubstr("--outcome \"\""));
}

TEST_F(BillParseTest, InvocationsNeedsName) {
  EXPECT_THAT(ErrorOf({"invocations"}), HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"invocations", "--last", "5"}), HasSubstr("NAME"));
  EXPECT_FALSE(ErrorOf({"invocations", "a", "b"}).empty());
}

TEST_F(BillParseTest, InvocationsReportsAllBadValuesAtOnce) {
  std::string e = ErrorOf({"invocations", "f", "--last", "0", "--outcome", "NO"});
  EXPECT_THAT(e, HasSubstr("--last \"0\""));
  EXPECT_THAT(e, HasSubstr("--outcome \"NO\""));
}

TEST_F(BillParseTest, HelpListsBothCommands) {
  Result<Invocation> inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  const auto* help = std::get_if<HelpCommand>(&inv->command);
  ASSERT_NE(help, nullptr);
  EXPECT_THAT(help->text, HasSubstr("bill"));
  EXPECT_THAT(help->text, HasSubstr("invocations"));
}

// --- ParseTimeArg --------------------------------------------------------------------------

constexpr int64_t kNow = kNov29 + 12 * kHourMs;  // 2026-11-29T12:00:00Z

int64_t TimeOf(const std::string& text) {
  Result<int64_t> t = ParseTimeArg(text, kNow);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status().ToString();
  return t.ok() ? *t : -1;
}

std::string TimeError(const std::string& text) {
  Result<int64_t> t = ParseTimeArg(text, kNow);
  EXPECT_FALSE(t.ok()) << text << " parsed as " << (t.ok() ? *t : 0);
  if (t.ok()) {
    return "";
  }
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  // Every message names the value.
  EXPECT_THAT(t.status().message(), HasSubstr("\"" + text + "\"")) << text;
  return t.status().message();
}

TEST(ParseTimeArg, DatesAreUtcMidnight) {
  EXPECT_EQ(TimeOf("2026-11-29"), kNov29);
  EXPECT_EQ(TimeOf("1970-01-02"), kDayMs);
  EXPECT_EQ(TimeOf("2028-02-29"), 1835395200000);  // leap day
}

TEST(ParseTimeArg, DateTimesInUtc) {
  EXPECT_EQ(TimeOf("2026-11-29T13:00"), kNov29 + 13 * kHourMs);
  EXPECT_EQ(TimeOf("2026-11-29T13:00:00Z"), kNov29 + 13 * kHourMs);
  EXPECT_EQ(TimeOf("2026-11-29t13:00:00z"), kNov29 + 13 * kHourMs);
  EXPECT_EQ(TimeOf("2026-11-29 13:00"), kNov29 + 13 * kHourMs);
  EXPECT_EQ(TimeOf("2026-11-29T13:04:05"), 1795957445000);
  EXPECT_EQ(TimeOf("2026-11-29T13:04:05.123Z"), 1795957445123);
  EXPECT_EQ(TimeOf("2026-11-29T13:04:05.1Z"), 1795957445100);
  EXPECT_EQ(TimeOf("2026-11-29T13:04:05.123999Z"), 1795957445123);  // finer than ms: dropped
  EXPECT_EQ(TimeOf("2026-11-29T23:59:59.999"), kNov29 + kDayMs - 1);
}

TEST(ParseTimeArg, ZoneOffsetsConvertToUtc) {
  EXPECT_EQ(TimeOf("2026-11-29T13:00:00+02:00"), kNov29 + 11 * kHourMs);
  EXPECT_EQ(TimeOf("2026-11-29T13:00-05:30"), kNov29 + 18 * kHourMs + 30 * kMinuteMs);
  EXPECT_EQ(TimeOf("2026-11-29T00:30:00+01:00"), kNov29 - 30 * kMinuteMs);
}

TEST(ParseTimeArg, RelativeDurationsBackFromNow) {
  EXPECT_EQ(TimeOf("1h"), kNow - kHourMs);
  EXPECT_EQ(TimeOf("30m"), kNow - 30 * kMinuteMs);
  EXPECT_EQ(TimeOf("7d"), kNow - 7 * kDayMs);
  EXPECT_EQ(TimeOf("0d"), kNow);
  EXPECT_EQ(TimeOf("90s"), kNow - 90'000);
  EXPECT_EQ(TimeOf("250ms"), kNow - 250);
  EXPECT_EQ(TimeOf("1500us"), kNow - 1);  // whole milliseconds
}

TEST(ParseTimeArg, BadInputIsInvalidArgumentNamingTheValue) {
  EXPECT_THAT(TimeError(""), HasSubstr("must not be empty"));
  EXPECT_THAT(TimeError("yesterday"), HasSubstr("not a date"));
  EXPECT_THAT(TimeError("30"), HasSubstr("needs a unit"));
  EXPECT_THAT(TimeError("2026"), HasSubstr("needs a unit"));
  TimeError("-1h");
  TimeError("1w");
  TimeError("d");
  TimeError("1.5h");
  TimeError("h");
  TimeError("7dd");
  TimeError("7 d");
  TimeError("2026-11");
  TimeError("2026-1-01");
  TimeError("2026/11/29");
  TimeError("26-11-29");
  EXPECT_THAT(TimeError("2026-00-10"), HasSubstr("month"));
  EXPECT_THAT(TimeError("2026-13-01"), HasSubstr("month"));
  EXPECT_THAT(TimeError("2026-11-31"), HasSubstr("no such day"));
  EXPECT_THAT(TimeError("2026-02-29"), HasSubstr("no such day"));
  EXPECT_THAT(TimeError("2026-11-00"), HasSubstr("no such day"));
  TimeError("2026-11-29T24:00");
  TimeError("2026-11-29T13:60");
  TimeError("2026-11-29T13:00:60");
  TimeError("2026-11-29T13");
  TimeError("2026-11-29T1:00");
  TimeError("2026-11-29T");
  TimeError("2026-11-29X13:00");
  TimeError("2026-11-29T13:00:00.Z");
  TimeError("2026-11-29T13:00Zjunk");
  TimeError("2026-11-29T13:00:00 ");
  TimeError("2026-11-29T13:00+2");
  TimeError("2026-11-29T13:00+02");
  TimeError("2026-11-29T13:00+24:00");
  TimeError("2026-11-29junk");
}

TEST(ParseTimeArg, BeforeTheEpochOrTooLargeIsRefused) {
  EXPECT_THAT(TimeError("1969-12-31"), HasSubstr("before 1970"));
  EXPECT_THAT(TimeError("1970-01-01"), HasSubstr("before 1970"));  // 0 means "no bound"
  EXPECT_EQ(TimeOf("1970-01-01T00:00:00.001Z"), 1);
  EXPECT_THAT(TimeError("100000d"), HasSubstr("before 1970"));
  EXPECT_THAT(TimeError("99999999999999d"), HasSubstr("too large"));
  EXPECT_THAT(TimeError("99999999999h"), HasSubstr("too large"));
}

// --- money and other formatters ------------------------------------------------------------

TEST(FormatMicros, IntegerMicroUnitsAsSixDecimals) {
  EXPECT_EQ(FormatMicros(0), "0.000000");
  EXPECT_EQ(FormatMicros(1), "0.000001");
  EXPECT_EQ(FormatMicros(1234), "0.001234");
  EXPECT_EQ(FormatMicros(999999), "0.999999");
  EXPECT_EQ(FormatMicros(1000000), "1.000000");
  EXPECT_EQ(FormatMicros(1000001), "1.000001");
  EXPECT_EQ(FormatMicros(123456789), "123.456789");
  EXPECT_EQ(FormatMicros(INT64_MAX), "9223372036854.775807");
}

TEST(FormatMicros, Negative) {
  EXPECT_EQ(FormatMicros(-1), "-0.000001");
  EXPECT_EQ(FormatMicros(-1234), "-0.001234");
  EXPECT_EQ(FormatMicros(-1000000), "-1.000000");
  EXPECT_EQ(FormatMicros(-123456789), "-123.456789");
  EXPECT_EQ(FormatMicros(INT64_MIN), "-9223372036854.775808");
}

TEST(CurrencyName, LastWordOfTheUnit) {
  EXPECT_EQ(CurrencyName("micro-USD"), "USD");
  EXPECT_EQ(CurrencyName("micro EUR"), "EUR");
  EXPECT_EQ(CurrencyName("USD"), "USD");
  EXPECT_EQ(CurrencyName("micro-USD "), "USD");
  EXPECT_EQ(CurrencyName(""), "");
  EXPECT_EQ(CurrencyName("micro-"), "");
}

TEST(FormatNanosAsMillis, TwoDecimalsRoundedHalfUp) {
  EXPECT_EQ(FormatNanosAsMillis(0), "0.00");
  EXPECT_EQ(FormatNanosAsMillis(4'999), "0.00");
  EXPECT_EQ(FormatNanosAsMillis(5'000), "0.01");
  EXPECT_EQ(FormatNanosAsMillis(1'234'567), "1.23");
  EXPECT_EQ(FormatNanosAsMillis(1'235'000), "1.24");
  EXPECT_EQ(FormatNanosAsMillis(1'999'999), "2.00");
  EXPECT_EQ(FormatNanosAsMillis(12'000'000'000), "12000.00");
  EXPECT_EQ(FormatNanosAsMillis(UINT64_MAX), "18446744073709.55");
}

TEST(FormatUnixMillisPrecise, UtcWithMilliseconds) {
  EXPECT_EQ(FormatUnixMillisPrecise(0), "-");
  EXPECT_EQ(FormatUnixMillisPrecise(1795957445123), "2026-11-29T13:04:05.123Z");
  EXPECT_EQ(FormatUnixMillisPrecise(1795957445007), "2026-11-29T13:04:05.007Z");
  EXPECT_EQ(FormatUnixMillisPrecise(-1), "1969-12-31T23:59:59.999Z");
}

// --- rendering -----------------------------------------------------------------------------

faas::v1::BillRow Row(const std::string& key, uint64_t invocations, double cpu_ms,
                      uint64_t billed_ms, int64_t cost_micros, uint64_t cold, uint64_t errors) {
  faas::v1::BillRow r;
  r.set_key(key);
  r.set_invocations(invocations);
  r.set_cpu_ms(cpu_ms);
  r.set_billed_ms(billed_ms);
  r.set_cost_micros(cost_micros);
  r.set_cold_starts(cold);
  r.set_errors(errors);
  return r;
}

faas::v1::BillReply ByDayReply() {
  faas::v1::BillReply reply;
  *reply.add_rows() = Row("2026-11-29", 10, 12.34, 15, 1234, 2, 1);
  *reply.add_rows() = Row("2026-11-30", 3, 0.5, 3, 56, 0, 0);
  *reply.mutable_total() = Row("", 13, 12.84, 18, 1290, 2, 1);
  reply.set_currency_unit("micro-USD");
  return reply;
}

TEST(RenderBillTable, TotalOnlyWithoutBy) {
  faas::v1::BillReply reply;
  *reply.mutable_total() = Row("", 1234, 5678.96, 6000, 123456789, 7, 3);
  reply.set_currency_unit("micro-USD");
  EXPECT_EQ(RenderBillTable(reply, ""),
            "INVOCATIONS  CPU MS  BILLED MS  COST (USD)  COLD STARTS  ERRORS\n"
            "1234         5679.0  6000       123.456789  7            3\n");
}

TEST(RenderBillTable, RowsThenTotalWithBy) {
  EXPECT_EQ(RenderBillTable(ByDayReply(), "day"),
            "DAY         INVOCATIONS  CPU MS  BILLED MS  COST (USD)  COLD STARTS  ERRORS\n"
            "2026-11-29  10           12.3    15         0.001234    2            1\n"
            "2026-11-30  3            0.5     3          0.000056    0            0\n"
            "TOTAL       13           12.8    18         0.001290    2            1\n");
}

TEST(RenderBillTable, KeyHeaderFollowsBy) {
  faas::v1::BillReply reply = ByDayReply();
  EXPECT_THAT(RenderBillTable(reply, "function"), testing::StartsWith("FUNCTION    INVOCATIONS"));
  EXPECT_THAT(RenderBillTable(reply, "hour"), testing::StartsWith("HOUR        INVOCATIONS"));
}

TEST(RenderBillTable, NoCurrencyUnitAndNoRows) {
  faas::v1::BillReply reply;
  EXPECT_EQ(RenderBillTable(reply, "function"),
            "FUNCTION  INVOCATIONS  CPU MS  BILLED MS  COST      COLD STARTS  ERRORS\n"
            "TOTAL     0            0.0     0          0.000000  0            0\n");
}

TEST(BillReplyToJson, CostAsIntegerMicrosAndDecimalString) {
  nlohmann::json j = BillReplyToJson(ByDayReply());
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["key"], "2026-11-29");
  EXPECT_TRUE(j["rows"][0]["cost_micros"].is_number_integer());
  EXPECT_EQ(j["rows"][0]["cost_micros"], 1234);
  EXPECT_EQ(j["rows"][0]["cost"], "0.001234");
  EXPECT_EQ(j["rows"][0]["invocations"], 10);
  EXPECT_DOUBLE_EQ(j["rows"][0]["cpu_ms"].get<double>(), 12.34);
  EXPECT_EQ(j["rows"][0]["billed_ms"], 15);
  EXPECT_EQ(j["rows"][0]["cold_starts"], 2);
  EXPECT_EQ(j["rows"][0]["errors"], 1);
  EXPECT_EQ(j["total"]["cost_micros"], 1290);
  EXPECT_EQ(j["total"]["cost"], "0.001290");
  EXPECT_EQ(j["currency_unit"], "micro-USD");
}

faas::v1::InvocationRecord Record() {
  faas::v1::InvocationRecord r;
  r.set_invocation_id("inv-1");
  r.set_function("hello");
  r.set_version(3);
  r.set_trigger("http");
  r.set_kind("invocation");
  r.set_start_unix_ms(1795957445123);
  r.set_wall_ns(12'345'678);
  r.set_cpu_ns(1'004'999);
  r.set_billed_ms(2);
  r.set_cost_micros(42);
  r.set_peak_memory_bytes(3'355'443);  // 3.2 MiB
  r.set_cold_start(true);
  r.set_outcome("ok");
  r.set_queue_ns(1);
  r.set_spawn_ns(2);
  r.set_load_ns(3);
  r.set_init_ns(4);
  r.set_exec_ns(5);
  return r;
}

TEST(RenderInvocationsTable, HasTheDocumentedColumns) {
  faas::v1::ListInvocationsReply reply;
  *reply.add_invocations() = Record();
  faas::v1::InvocationRecord warm;
  warm.set_invocation_id("inv-2");
  warm.set_start_unix_ms(1795957446000);
  warm.set_outcome("function_timeout");
  warm.set_wall_ns(10'000'000'000);
  warm.set_cpu_ns(9'999'995'000);
  warm.set_billed_ms(10'000);
  warm.set_kind("background");
  *reply.add_invocations() = warm;
  EXPECT_EQ(RenderInvocationsTable(reply),
            "ID     START                     OUTCOME           COLD  WALL MS   CPU MS    "
            "BILLED MS  PEAK MEM  KIND\n"
            "inv-1  2026-11-29T13:04:05.123Z  ok                yes   12.35     1.00      "
            "2          3.2 MiB   invocation\n"
            "inv-2  2026-11-29T13:04:06.000Z  function_timeout  no    10000.00  10000.00  "
            "10000      -         background\n");
}

TEST(RenderInvocationsTable, EmptyListIsTheHeader) {
  EXPECT_EQ(RenderInvocationsTable(faas::v1::ListInvocationsReply()),
            "ID  START  OUTCOME  COLD  WALL MS  CPU MS  BILLED MS  PEAK MEM  KIND\n");
}

TEST(InvocationRecordToJson, EveryField) {
  nlohmann::json j = InvocationRecordToJson(Record());
  EXPECT_EQ(j["invocation_id"], "inv-1");
  EXPECT_EQ(j["function"], "hello");
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["trigger"], "http");
  EXPECT_EQ(j["kind"], "invocation");
  EXPECT_EQ(j["start_unix_ms"], 1795957445123);
  EXPECT_EQ(j["wall_ns"], 12'345'678);
  EXPECT_EQ(j["cpu_ns"], 1'004'999);
  EXPECT_EQ(j["billed_ms"], 2);
  EXPECT_EQ(j["cost_micros"], 42);
  EXPECT_EQ(j["cost"], "0.000042");
  EXPECT_EQ(j["peak_memory_bytes"], 3'355'443);
  EXPECT_EQ(j["cold_start"], true);
  EXPECT_EQ(j["outcome"], "ok");
  EXPECT_EQ(j["error_code"], "");
  EXPECT_EQ(j["queue_ns"], 1);
  EXPECT_EQ(j["spawn_ns"], 2);
  EXPECT_EQ(j["load_ns"], 3);
  EXPECT_EQ(j["init_ns"], 4);
  EXPECT_EQ(j["exec_ns"], 5);
  EXPECT_EQ(j["tenant"], "");
  EXPECT_EQ(j["queue"], "");
  EXPECT_EQ(j["message_id"], "");
  // 22 proto fields plus "cost".
  EXPECT_EQ(j.size(), 23u);
}

TEST(Requests, FromCommands) {
  BillCommand b;
  b.function = "x";
  b.since_unix_ms = kNov29;
  b.by = "day";
  faas::v1::BillRequest br = ToBillRequest(b);
  EXPECT_EQ(br.function(), "x");
  EXPECT_EQ(br.since_unix_ms(), kNov29);
  EXPECT_EQ(br.until_unix_ms(), 0);
  EXPECT_EQ(br.by(), "day");

  InvocationsCommand i;
  i.name = "x";
  i.outcome = "ok";
  faas::v1::ListInvocationsRequest ir = ToListInvocationsRequest(i);
  EXPECT_EQ(ir.function(), "x");
  EXPECT_EQ(ir.last(), 20u);
  EXPECT_EQ(ir.outcome(), "ok");
}

}  // namespace
}  // namespace faas::cli
