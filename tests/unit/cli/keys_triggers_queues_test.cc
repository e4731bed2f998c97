// Parsing and rendering of `deploy --rate/--burst`, `invoke --async`, `key ...`, `trigger ...`
// and `queue ...`.
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/cli/command.h"
#include "faas/cli/render.h"

#include "parse_fixture.h"

namespace faas::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

class KeysTriggersQueuesParseTest : public ParseFixture {};

// --- rates -----------------------------------------------------------------------------------

TEST(ParseRate, AcceptsPerSecondMinuteHourAndBareNumbers) {
  EXPECT_DOUBLE_EQ(*ParseRate("100/s"), 100.0);
  EXPECT_DOUBLE_EQ(*ParseRate("6000/m"), 100.0);
  EXPECT_DOUBLE_EQ(*ParseRate("10/h"), 10.0 / 3600);
  EXPECT_DOUBLE_EQ(*ParseRate("100"), 100.0);
  EXPECT_DOUBLE_EQ(*ParseRate("2.5"), 2.5);
  EXPECT_DOUBLE_EQ(*ParseRate("0.5/s"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseRate("1000000/s"), 1'000'000.0);
}

TEST(ParseRate, RefusesBadNumbersUnitsZeroAndHugeRates) {
  auto why = [](std::string_view text) {
    Result<double> r = ParseRate(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    return r.ok() ? std::string() : r.status().message();
  };
  for (std::string_view bad : {"abc/s", "abc", "/s", "-5/s", "+5", "1e3", "inf", "nan", "1.", ".5",
                               "1..2/s", " 5/s", "5 /s"}) {
    EXPECT_THAT(why(bad), HasSubstr("must be a number per second")) << bad;
  }
  EXPECT_EQ(why("100/d"), "unknown unit \"d\" (use /s, /m or /h)");
  EXPECT_THAT(why("100/sec"), HasSubstr("unknown unit \"sec\""));
  EXPECT_THAT(why("100/"), HasSubstr("unknown unit \"\""));
  EXPECT_THAT(why("0/s"), HasSubstr("must be more than 0"));
  EXPECT_THAT(why("0.0"), HasSubstr("must be more than 0"));
  EXPECT_THAT(why("1000001/s"), HasSubstr("too large"));
  EXPECT_THAT(why(std::string(400, '9')), HasSubstr("too large"));
  EXPECT_EQ(why(""), "must not be empty");
}

TEST(FormatRate, PicksTheUnitThatReadsBest) {
  EXPECT_EQ(FormatRate(0), "-");
  EXPECT_EQ(FormatRate(100), "100/s");
  EXPECT_EQ(FormatRate(2.5), "2.5/s");
  EXPECT_EQ(FormatRate(1'000'000), "1000000/s");
  EXPECT_EQ(FormatRate(*ParseRate("6000/m")), "100/s");
  EXPECT_EQ(FormatRate(*ParseRate("30/m")), "30/m");
  EXPECT_EQ(FormatRate(*ParseRate("1/m")), "1/m");
  EXPECT_EQ(FormatRate(*ParseRate("10/h")), "10/h");
}

TEST_F(KeysTriggersQueuesParseTest, DeployRateAndBurst) {
  auto d = ParseAs<DeployCommand>({"deploy", "f", "f.so", "--rate", "6000/m", "--burst", "50"});
  ASSERT_TRUE(d.options.rate_per_sec);
  EXPECT_DOUBLE_EQ(*d.options.rate_per_sec, 100.0);
  EXPECT_EQ(d.options.burst, 50u);
  auto c = ToProtoConfig(d.options);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->rate_per_sec(), 100.0);
  EXPECT_EQ(c->burst(), 50u);

  d = ParseAs<DeployCommand>({"deploy", "f", "f.so"});
  EXPECT_FALSE(d.options.rate_per_sec);
  EXPECT_FALSE(d.options.burst);
  c = ToProtoConfig(d.options);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rate_per_sec(), 0.0);
  EXPECT_EQ(c->burst(), 0u);
}

TEST_F(KeysTriggersQueuesParseTest, DeployBadRateAndBurstAreReportedTogether) {
  std::string e =
      ErrorOf({"deploy", "f", "f.so", "--rate", "abc/s", "--burst", "0", "--timeout", "2x"});
  EXPECT_THAT(e, HasSubstr("--rate \"abc/s\": must be a number per second"));
  EXPECT_THAT(e, HasSubstr("--burst \"0\": must be at least 1"));
  EXPECT_THAT(e, HasSubstr("--timeout \"2x\""));
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--burst", "10"}),
              HasSubstr("--burst \"10\": needs --rate"));
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--rate", "5/d"}),
              HasSubstr("--rate \"5/d\": unknown unit \"d\""));
}

// --- invoke --async --------------------------------------------------------------------------

TEST_F(KeysTriggersQueuesParseTest, InvokeAsyncWithCallback) {
  auto i = ParseAs<InvokeCommand>(
      {"invoke", "f", "--async", "--callback-url", "http://hooks.example.com/done", "-d", "x"});
  EXPECT_TRUE(i.async);
  EXPECT_EQ(i.callback_url, "http://hooks.example.com/done");
  faas::v1::InvokeRequest req = ToInvokeRequest(i, "body");
  EXPECT_TRUE(req.async());
  EXPECT_EQ(req.callback_url(), "http://hooks.example.com/done");
  EXPECT_EQ(req.body(), "body");
  EXPECT_EQ(req.name(), "f");

  i = ParseAs<InvokeCommand>({"invoke", "f"});
  EXPECT_FALSE(i.async);
  EXPECT_FALSE(ToInvokeRequest(i, "").async());
}

TEST_F(KeysTriggersQueuesParseTest, InvokeCallbackUrlNeedsAsync) {
  EXPECT_THAT(ErrorOf({"invoke", "f", "--callback-url", "http://h/x"}),
              HasSubstr("--callback-url \"http://h/x\": needs --async"));
}

// --- key -------------------------------------------------------------------------------------

TEST_F(KeysTriggersQueuesParseTest, KeyCreateMinimalAndFull) {
  auto k = ParseAs<KeyCreateCommand>({"key", "create", "--tenant", "acme"});
  EXPECT_EQ(k.tenant, "acme");
  EXPECT_TRUE(k.functions.empty());
  EXPECT_FALSE(k.rate_per_sec);
  EXPECT_FALSE(k.burst);

  k = ParseAs<KeyCreateCommand>({"key", "create", "--tenant", "acme", "--functions", "a,b-2",
                                 "--functions", "c", "--rate", "100/s", "--burst", "200"});
  EXPECT_THAT(k.functions, ElementsAre("a", "b-2", "c"));
  EXPECT_DOUBLE_EQ(*k.rate_per_sec, 100.0);
  EXPECT_EQ(k.burst, 200u);

  faas::v1::CreateKeyRequest req = ToCreateKeyRequest(k);
  EXPECT_EQ(req.tenant(), "acme");
  EXPECT_THAT(req.functions(), ElementsAre("a", "b-2", "c"));
  EXPECT_DOUBLE_EQ(req.rate_per_sec(), 100.0);
  EXPECT_EQ(req.burst(), 200u);
}

TEST_F(KeysTriggersQueuesParseTest, KeyCreateReportsEveryBadValue) {
  std::string e = ErrorOf({"key", "create", "--tenant", "", "--functions", "a,,Bad,a", "--rate",
                           "abc/s", "--burst", "-1"});
  EXPECT_THAT(e, HasSubstr("--tenant \"\": must not be empty"));
  EXPECT_THAT(e, HasSubstr("--functions \"a,,Bad,a\": has an empty name"));
  EXPECT_THAT(e, HasSubstr("--functions \"a,,Bad,a\": \"Bad\" must match [a-z][a-z0-9-]{0,62}"));
  EXPECT_THAT(e, HasSubstr("--functions \"a,,Bad,a\": \"a\" given more than once"));
  EXPECT_THAT(e, HasSubstr("--rate \"abc/s\""));
  EXPECT_THAT(e, HasSubstr("--burst \"-1\""));
  EXPECT_THAT(ErrorOf({"key", "create"}), HasSubstr("--tenant"));
  EXPECT_THAT(ErrorOf({"key", "create", "--tenant", "t", "--burst", "5"}),
              HasSubstr("--burst \"5\": needs --rate"));
}

TEST_F(KeysTriggersQueuesParseTest, KeyListAndRevoke) {
  ParseAs<KeyListCommand>({"key", "list", "-o", "json"});
  EXPECT_EQ(last_global_.output, OutputFormat::kJson);
  EXPECT_EQ(ParseAs<KeyRevokeCommand>({"key", "revoke", "k_123"}).id, "k_123");
  EXPECT_FALSE(ErrorOf({"key", "revoke"}).empty());
  EXPECT_THAT(ErrorOf({"key", "revoke", ""}), HasSubstr("ID \"\": must not be empty"));
  EXPECT_FALSE(ErrorOf({"key", "list", "extra"}).empty());
}

// --- trigger ---------------------------------------------------------------------------------

TEST_F(KeysTriggersQueuesParseTest, TriggerAddRedisWithEveryFlag) {
  auto t = ParseAs<TriggerAddCommand>({"trigger",
                                       "add",
                                       "orders",
                                       "--function",
                                       "process-order",
                                       "--source",
                                       "redis://127.0.0.1:6379/2",
                                       "--stream",
                                       "orders",
                                       "--group",
                                       "g1",
                                       "--batch",
                                       "32",
                                       "--concurrency",
                                       "4",
                                       "--max-attempts",
                                       "7",
                                       "--backoff",
                                       "250ms..1m",
                                       "--dlq",
                                       "orders-dead",
                                       "--visibility-timeout",
                                       "45s"});
  EXPECT_EQ(t.name, "orders");
  EXPECT_EQ(t.function, "process-order");
  EXPECT_EQ(t.source, "redis://127.0.0.1:6379/2");
  EXPECT_EQ(t.stream, "orders");
  EXPECT_EQ(t.group, "g1");
  EXPECT_EQ(t.queue, "");
  EXPECT_EQ(t.batch, 32u);
  EXPECT_EQ(t.concurrency, 4u);
  EXPECT_EQ(t.max_attempts, 7u);
  EXPECT_EQ(t.backoff_min, 250ms);
  EXPECT_EQ(t.backoff_max, 60'000ms);
  EXPECT_EQ(t.dlq, "orders-dead");
  EXPECT_EQ(t.visibility_timeout, 45'000ms);

  faas::v1::AddTriggerRequest req = ToAddTriggerRequest(t);
  const faas::v1::Trigger& tr = req.trigger();
  EXPECT_EQ(tr.name(), "orders");
  EXPECT_EQ(tr.function(), "process-order");
  EXPECT_EQ(tr.source(), "redis://127.0.0.1:6379/2");
  EXPECT_EQ(tr.stream(), "orders");
  EXPECT_EQ(tr.group(), "g1");
  EXPECT_EQ(tr.batch(), 32u);
  EXPECT_EQ(tr.concurrency(), 4u);
  EXPECT_EQ(tr.max_attempts(), 7u);
  EXPECT_EQ(tr.backoff_min_ms(), 250u);
  EXPECT_EQ(tr.backoff_max_ms(), 60'000u);
  EXPECT_EQ(tr.dlq(), "orders-dead");
  EXPECT_EQ(tr.visibility_timeout_ms(), 45'000u);
  EXPECT_FALSE(tr.paused());
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddEmbeddedLeavesDefaultsUnset) {
  auto t = ParseAs<TriggerAddCommand>({"trigger", "add", "emails", "--function", "send", "--source",
                                       "embedded", "--queue", "mail"});
  EXPECT_EQ(t.source, "embedded");
  EXPECT_EQ(t.queue, "mail");
  EXPECT_FALSE(t.batch);
  EXPECT_FALSE(t.concurrency);
  EXPECT_FALSE(t.max_attempts);
  EXPECT_FALSE(t.backoff_min);
  EXPECT_FALSE(t.visibility_timeout);
  const faas::v1::Trigger tr = ToAddTriggerRequest(t).trigger();
  EXPECT_EQ(tr.queue(), "mail");
  EXPECT_EQ(tr.concurrency(), 0u);
  EXPECT_EQ(tr.backoff_min_ms(), 0u);
  EXPECT_EQ(tr.backoff_max_ms(), 0u);
  EXPECT_EQ(tr.dlq(), "");
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddAcceptsRedisHostForms) {
  for (const char* src : {"redis://localhost:6379", "redis://redis-1.internal:6380/0",
                          "redis://[::1]:6379", "redis://[::1]:6379/15"}) {
    EXPECT_EQ(ParseAs<TriggerAddCommand>(
                  {"trigger", "add", "t", "--function", "f", "--source", src, "--stream", "s"})
                  .source,
              src);
  }
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddSourceNeedsItsStreamOrQueue) {
  EXPECT_THAT(ErrorOf({"trigger", "add", "t", "--function", "f", "--source", "redis://h:6379"}),
              HasSubstr("--source \"redis://h:6379\": needs --stream"));
  EXPECT_THAT(ErrorOf({"trigger", "add", "t", "--function", "f", "--source", "embedded"}),
              HasSubstr("--source \"embedded\": needs --queue"));
  std::string e = ErrorOf({"trigger", "add", "t", "--function", "f", "--source", "embedded",
                           "--queue", "q", "--stream", "s", "--group", "g"});
  EXPECT_THAT(e, HasSubstr("--stream \"s\": is only for a redis:// source"));
  EXPECT_THAT(e, HasSubstr("--group \"g\": is only for a redis:// source"));
  EXPECT_THAT(ErrorOf({"trigger", "add", "t", "--function", "f", "--source", "redis://h:1",
                       "--stream", "s", "--queue", "q"}),
              HasSubstr("--queue \"q\": is only for --source embedded"));
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddBadSources) {
  auto error_for = [this](const std::string& src) {
    return ErrorOf({"trigger", "add", "t", "--function", "f", "--source", src, "--stream", "s"});
  };
  EXPECT_THAT(error_for("kafka://h:1"),
              HasSubstr("--source \"kafka://h:1\": must be redis://HOST:PORT[/DB] or embedded"));
  EXPECT_THAT(error_for("Embedded"), HasSubstr("must be redis://HOST:PORT[/DB] or embedded"));
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddBackoffMustBeMinDotDotMaxInOrder) {
  auto error_for = [this](const std::string& backoff) {
    return ErrorOf({"trigger", "add", "t", "--function", "f", "--source", "embedded", "--queue",
                    "q", "--backoff", backoff});
  };
  EXPECT_THAT(error_for("30s..1s"), HasSubstr("--backoff \"30s..1s\": minimum 30s is above "
                                              "maximum 1s"));
  EXPECT_THAT(error_for("100ms"), HasSubstr("--backoff \"100ms\": must be MIN..MAX"));
  EXPECT_THAT(error_for("1x..2s"), HasSubstr("--backoff minimum \"1x\""));
  EXPECT_THAT(error_for("1s.."), HasSubstr("--backoff maximum \"\""));
  EXPECT_THAT(error_for("0..1s"), HasSubstr("at least 1ms"));
  auto t = ParseAs<TriggerAddCommand>({"trigger", "add", "t", "--function", "f", "--source",
                                       "embedded", "--queue", "q", "--backoff", "1s..1s"});
  EXPECT_EQ(t.backoff_min, 1000ms);
  EXPECT_EQ(t.backoff_max, 1000ms);
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddReportsEveryBadValueAtOnce) {
  std::string e = ErrorOf({"trigger", "add", "Bad_Name", "--function", "F", "--source", "embedded",
                           "--queue", "q", "--batch", "0", "--concurrency", "2000",
                           "--max-attempts", "0", "--dlq", "", "--visibility-timeout", "soon"});
  EXPECT_THAT(e, HasSubstr("NAME \"Bad_Name\": must match [a-z][a-z0-9-]{0,62}"));
  EXPECT_THAT(e, HasSubstr("--function \"F\": must match"));
  EXPECT_THAT(e, HasSubstr("--batch \"0\": must be at least 1"));
  EXPECT_THAT(e, HasSubstr("--concurrency \"2000\": must be 1..1024"));
  EXPECT_THAT(e, HasSubstr("--max-attempts \"0\": must be 1..100"));
  EXPECT_THAT(e, HasSubstr("--dlq \"\": must not be empty"));
  EXPECT_THAT(e, HasSubstr("--visibility-timeout \"soon\""));
}

TEST_F(KeysTriggersQueuesParseTest, TriggerAddNeedsNameFunctionAndSource) {
  EXPECT_THAT(
      ErrorOf({"trigger", "add", "--function", "f", "--source", "embedded", "--queue", "q"}),
      HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"trigger", "add", "t", "--source", "embedded", "--queue", "q"}),
              HasSubstr("--function"));
  EXPECT_THAT(ErrorOf({"trigger", "add", "t", "--function", "f"}), HasSubstr("--source"));
}

TEST_F(KeysTriggersQueuesParseTest, TriggerListPauseResumeDelete) {
  ParseAs<TriggerListCommand>({"trigger", "list"});
  EXPECT_EQ(ParseAs<TriggerPauseCommand>({"trigger", "pause", "orders"}).name, "orders");
  EXPECT_EQ(ParseAs<TriggerResumeCommand>({"trigger", "resume", "orders"}).name, "orders");
  EXPECT_EQ(ParseAs<TriggerDeleteCommand>({"trigger", "delete", "orders"}).name, "orders");
  EXPECT_FALSE(ErrorOf({"trigger", "pause"}).empty());
  EXPECT_THAT(ErrorOf({"trigger", "delete", "Orders"}), HasSubstr("NAME \"Orders\""));
  EXPECT_FALSE(ErrorOf({"trigger"}).empty());
}

// --- queue -----------------------------------------------------------------------------------

TEST_F(KeysTriggersQueuesParseTest, QueuePublishTakesTheThreeDataForms) {
  auto p = ParseAs<QueuePublishCommand>({"queue", "publish", "emails", "{\"to\":\"a@b\"}"});
  EXPECT_EQ(p.queue, "emails");
  EXPECT_EQ(p.data.kind, DataSource::Kind::kLiteral);
  EXPECT_EQ(p.data.value, "{\"to\":\"a@b\"}");
  p = ParseAs<QueuePublishCommand>({"queue", "publish", "emails", "@msg.json"});
  EXPECT_EQ(p.data.kind, DataSource::Kind::kFile);
  EXPECT_EQ(p.data.value, "msg.json");
  p = ParseAs<QueuePublishCommand>({"queue", "publish", "emails", "-"});
  EXPECT_EQ(p.data.kind, DataSource::Kind::kStdin);
  EXPECT_FALSE(ErrorOf({"queue", "publish", "emails"}).empty());
  EXPECT_THAT(ErrorOf({"queue", "publish", "", "x"}), HasSubstr("Q \"\": must not be empty"));
  EXPECT_THAT(ErrorOf({"queue", "publish", std::string(201, 'q'), "x"}),
              HasSubstr("must be at most 200 bytes"));
}

TEST_F(KeysTriggersQueuesParseTest, AsyncInvocationStatus) {
  EXPECT_EQ(ParseAs<AsyncStatusCommand>({"invocation", "01jdq3abc"}).id, "01jdq3abc");
  EXPECT_FALSE(ErrorOf({"invocation"}).empty());
}

TEST_F(KeysTriggersQueuesParseTest, QueueStats) {
  EXPECT_EQ(ParseAs<QueueStatsCommand>({"queue", "stats", "emails"}).queue, "emails");
  EXPECT_FALSE(ErrorOf({"queue", "stats"}).empty());
}

TEST_F(KeysTriggersQueuesParseTest, QueueDlqNameLimitAndReplay) {
  auto d = ParseAs<QueueDlqCommand>({"queue", "dlq", "emails"});
  EXPECT_EQ(d.queue, "emails");
  EXPECT_EQ(d.dlq, "emails.dlq");
  EXPECT_EQ(d.limit, 0u);
  EXPECT_FALSE(d.replay);
  d = ParseAs<QueueDlqCommand>({"queue", "dlq", "emails.dlq", "--limit", "5"});
  EXPECT_EQ(d.dlq, "emails.dlq");
  EXPECT_EQ(d.limit, 5u);
  d = ParseAs<QueueDlqCommand>({"queue", "dlq", "emails", "--replay"});
  EXPECT_TRUE(d.replay);

  faas::v1::ListDeadRequest req = ToListDeadRequest(d);
  EXPECT_EQ(req.queue(), "emails.dlq");
  EXPECT_TRUE(req.replay());
  EXPECT_EQ(req.limit(), 0u);

  EXPECT_THAT(ErrorOf({"queue", "dlq", "emails", "--limit", "0"}),
              HasSubstr("--limit \"0\": must be 1..1000"));
  EXPECT_THAT(ErrorOf({"queue", "dlq", "emails", "--limit", "1001"}),
              HasSubstr("--limit \"1001\": must be 1..1000"));
  EXPECT_THAT(ErrorOf({"queue", "dlq", "emails", "--replay", "--limit", "5"}),
              HasSubstr("--limit \"5\": cannot be used with --replay"));
}

TEST(DeadLetterQueueName, AppendsDotDlqOnce) {
  EXPECT_EQ(DeadLetterQueueName("emails"), "emails.dlq");
  EXPECT_EQ(DeadLetterQueueName("emails.dlq"), "emails.dlq");
  EXPECT_EQ(DeadLetterQueueName("dlq"), "dlq.dlq");
  EXPECT_EQ(DeadLetterQueueName("a.dlq.x"), "a.dlq.x.dlq");
}

TEST(ReadData, NamesTheArgumentItWasGiven) {
  std::istringstream in;
  Result<std::string> r = ReadData(ParseDataSource("@/nonexistent/faasctl/msg"), in, "DATA");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("DATA \"@/nonexistent/faasctl/msg\""));
}

// --- rendering -------------------------------------------------------------------------------

TEST(PreviewBytes, EscapesControlsAndTruncatesWithoutSplittingCharacters) {
  EXPECT_EQ(PreviewBytes("", 60), "");
  EXPECT_EQ(PreviewBytes("plain text", 60), "plain text");
  EXPECT_EQ(PreviewBytes("a\nb\r\tc\\d", 60), "a\\nb\\r\\tc\\\\d");
  EXPECT_EQ(PreviewBytes(std::string("\x00\x1b[31m\x7f\xff", 8), 60), "\\x00\\x1B[31m\\x7F\\xFF");
  EXPECT_EQ(PreviewBytes("caf\xc3\xa9", 60), "caf\xc3\xa9");
  EXPECT_EQ(PreviewBytes("x\xc2\x85y\xe2\x80\xaez", 60), "x\\u0085y\\u202Ez");
  EXPECT_EQ(PreviewBytes(std::string(61, 'a'), 60), std::string(60, 'a') + "\u2026");
  EXPECT_EQ(PreviewBytes(std::string(60, 'a'), 60), std::string(60, 'a'));
  // "é" is bytes 4..5 of the input; with a 5-byte cut it is left out whole.
  EXPECT_EQ(PreviewBytes("abcd\xc3\xa9", 5), "abcd\u2026");
  EXPECT_EQ(PreviewBytes("abcd\xc3\xa9", 6), "abcd\xc3\xa9");
  // A truncated sequence at the very end is not UTF-8: escaped.
  EXPECT_EQ(PreviewBytes("ab\xc3", 60), "ab\\xC3");
}

faas::v1::ApiKey Key(const std::string& id, bool revoked) {
  faas::v1::ApiKey k;
  k.set_id(id);
  k.set_tenant("acme");
  k.set_created_unix_ms(1714564800000);  // 2024-05-01T12:00:00Z
  if (revoked) {
    k.set_revoked_unix_ms(1714564900000);
  }
  return k;
}

TEST(RenderKeys, CreatedKeyShowsTheSecretOnceWithAWarning) {
  faas::v1::CreateKeyReply reply;
  *reply.mutable_key() = Key("k1", false);
  reply.mutable_key()->add_functions("a");
  reply.mutable_key()->add_functions("b");
  reply.mutable_key()->set_rate_per_sec(100);
  reply.mutable_key()->set_burst(200);
  reply.set_secret("faas_k1_s3cr3t");
  EXPECT_EQ(RenderKeyCreated(reply),
            "id: k1\ntenant: acme\nfunctions: a,b\nrate: 100/s\nburst: 200\nkey: faas_k1_s3cr3t\n"
            "warning: this is the only time the key is shown; store it now (faasd keeps only its "
            "hash)\n");
  EXPECT_EQ(CreateKeyReplyToJson(reply),
            nlohmann::json({{"id", "k1"},
                            {"tenant", "acme"},
                            {"functions", nlohmann::json::array({"a", "b"})},
                            {"rate_per_sec", 100.0},
                            {"burst", 200},
                            {"key", "faas_k1_s3cr3t"}}));
}

TEST(RenderKeys, TableHasStateAndNoSecret) {
  faas::v1::ListKeysReply reply;
  *reply.add_keys() = Key("k1", false);
  faas::v1::ApiKey* k = reply.add_keys();
  *k = Key("k2", true);
  k->add_functions("resize");
  k->add_functions("thumbs");
  k->set_rate_per_sec(10.0 / 3600);
  k->set_burst(3);
  EXPECT_EQ(RenderKeysTable(reply),
            "ID  TENANT  FUNCTIONS      RATE  BURST  CREATED               STATE\n"
            "k1  acme    *              -     -      2024-05-01T12:00:00Z  active\n"
            "k2  acme    resize,thumbs  10/h  3      2024-05-01T12:00:00Z  revoked\n");
  nlohmann::json j = ApiKeyToJson(reply.keys(1));
  EXPECT_EQ(j["state"], "revoked");
  EXPECT_EQ(j["functions"], nlohmann::json::array({"resize", "thumbs"}));
  EXPECT_EQ(j["revoked_unix_ms"], 1714564900000);
  EXPECT_FALSE(j.contains("key"));
  EXPECT_FALSE(j.contains("secret"));
  EXPECT_EQ(ApiKeyToJson(reply.keys(0))["functions"], nlohmann::json::array());
}

faas::v1::TriggerStatus RedisTrigger() {
  faas::v1::TriggerStatus s;
  faas::v1::Trigger* t = s.mutable_trigger();
  t->set_name("orders");
  t->set_function("process");
  t->set_source("redis://127.0.0.1:6379");
  t->set_stream("orders");
  t->set_backoff_min_ms(100);
  t->set_backoff_max_ms(30'000);
  s.set_state("running");
  s.set_lag(12);
  s.set_in_flight(2);
  s.set_delivered(40);
  s.set_failed(3);
  s.set_dead_lettered(1);
  return s;
}

TEST(RenderTriggers, AddedStateLinesTableAndJson) {
  faas::v1::TriggerStatus redis = RedisTrigger();
  EXPECT_EQ(RenderTriggerAdded(redis),
            "added trigger orders: redis://127.0.0.1:6379 stream orders -> process (running)\n");
  faas::v1::TriggerStatus embedded;
  embedded.mutable_trigger()->set_name("mail");
  embedded.mutable_trigger()->set_function("send");
  embedded.mutable_trigger()->set_source("embedded");
  embedded.mutable_trigger()->set_queue("emails");
  embedded.set_state("paused");
  embedded.set_lag(-1);
  embedded.set_last_error("redis: connection refused\nretrying");
  EXPECT_EQ(DescribeTriggerSource(embedded.trigger()), "embedded queue emails");
  EXPECT_EQ(RenderTriggerState("paused", embedded),
            "paused trigger mail: paused (redis: connection refused\\nretrying)\n");
  EXPECT_EQ(RenderTriggerState("resumed", redis), "resumed trigger orders: running\n");

  faas::v1::ListTriggersReply reply;
  *reply.add_triggers() = redis;
  *reply.add_triggers() = embedded;
  EXPECT_EQ(RenderTriggersTable(reply),
            "NAME    FUNCTION  SOURCE                  STREAM/QUEUE  STATE    LAG  IN FLIGHT  "
            "DELIVERED  FAILED  DEAD  LAST ERROR\n"
            "orders  process   redis://127.0.0.1:6379  orders        running  12   2          "
            "40         3       1     -\n"
            "mail    send      embedded                emails        paused   -    0          "
            "0          0       0     redis: connection refused\\nretrying\n");

  nlohmann::json j = TriggerStatusToJson(redis);
  EXPECT_EQ(j["name"], "orders");
  EXPECT_EQ(j["source"], "redis://127.0.0.1:6379");
  EXPECT_EQ(j["stream"], "orders");
  EXPECT_EQ(j["backoff_min_ms"], 100);
  EXPECT_EQ(j["backoff_max_ms"], 30'000);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["lag"], 12);
  EXPECT_EQ(j["dead_lettered"], 1);
  EXPECT_EQ(j["paused"], false);
  EXPECT_EQ(TriggerStatusToJson(embedded)["lag"], -1);
}

TEST(RenderQueues, StatsLinesAndJson) {
  faas::v1::QueueStats q;
  q.set_queue("emails");
  q.set_ready(3);
  q.set_delayed(1);
  q.set_in_flight(2);
  q.set_published(10);
  q.set_acked(4);
  q.set_oldest_ready_unix_ms(1714564800000);
  EXPECT_EQ(RenderQueueStats(q),
            "queue: emails\nready: 3\ndelayed: 1\nin flight: 2\ndead: 0\npublished: 10\n"
            "acked: 4\noldest ready: 2024-05-01T12:00:00Z\n");
  EXPECT_EQ(QueueStatsToJson(q), nlohmann::json({{"queue", "emails"},
                                                 {"ready", 3},
                                                 {"delayed", 1},
                                                 {"in_flight", 2},
                                                 {"dead", 0},
                                                 {"published", 10},
                                                 {"acked", 4},
                                                 {"oldest_ready_unix_ms", 1714564800000}}));
  q.set_oldest_ready_unix_ms(0);
  EXPECT_THAT(RenderQueueStats(q), HasSubstr("oldest ready: -\n"));
}

TEST(RenderQueues, DeadLettersTablePreviewsBodyAndError) {
  faas::v1::ListDeadReply reply;
  faas::v1::DeadMessage* m = reply.add_messages();
  m->set_message_id("17");
  m->set_origin_queue("emails");
  m->set_attempts(5);
  m->set_error("function_error: exit 1\n");
  m->set_dead_unix_ms(1714564800000);
  m->set_body(std::string(70, 'x'));
  m = reply.add_messages();
  m->set_message_id("18");
  m->set_origin_queue("emails");
  m->set_attempts(1);
  m->set_error("undecodable");
  m->set_dead_unix_ms(1714564800000);
  m->set_body(std::string("\xff\x00", 2));
  EXPECT_EQ(
      RenderDeadTable(reply),
      "ID  ORIGIN  ATTEMPTS  ERROR                     TIME                  BODY\n"
      "17  emails  5         function_error: exit 1\\n  2024-05-01T12:00:00Z  " +
          std::string(60, 'x') +
          "\u2026\n"
          "18  emails  1         undecodable               2024-05-01T12:00:00Z  \\xFF\\x00\n");
  reply.set_replayed(2);
  EXPECT_EQ(RenderReplayed("emails.dlq", reply), "replayed 2 messages from emails.dlq\n");
  reply.set_replayed(1);
  EXPECT_EQ(RenderReplayed("emails.dlq", reply), "replayed 1 message from emails.dlq\n");

  nlohmann::json j = ListDeadReplyToJson("emails.dlq", reply);
  EXPECT_EQ(j["dlq"], "emails.dlq");
  EXPECT_EQ(j["replayed"], 1);
  ASSERT_EQ(j["messages"].size(), 2u);
  EXPECT_EQ(j["messages"][0]["message_id"], "17");
  EXPECT_EQ(j["messages"][0]["body"], std::string(70, 'x'));
  EXPECT_EQ(j["messages"][0]["attempts"], 5);
  EXPECT_EQ(j["messages"][0]["error"], "function_error: exit 1\n");
  EXPECT_EQ(j["messages"][1]["body_base64"], "/wA=");
  EXPECT_FALSE(j["messages"][1].contains("body"));
}

TEST(RenderDescribe, ShowsRateAndBurst) {
  faas::v1::FunctionInfo f;
  f.set_name("hello");
  f.mutable_latest()->mutable_config()->set_rate_per_sec(100);
  f.mutable_latest()->mutable_config()->set_burst(150);
  std::string text = RenderDescribe(f);
  EXPECT_THAT(text, HasSubstr("rate: 100/s\nburst: 150\n"));
  nlohmann::json c = ConfigToJson(f.latest().config());
  EXPECT_EQ(c["rate_per_sec"], 100.0);
  EXPECT_EQ(c["burst"], 150);
  f.mutable_latest()->mutable_config()->clear_rate_per_sec();
  f.mutable_latest()->mutable_config()->clear_burst();
  EXPECT_THAT(RenderDescribe(f), HasSubstr("rate: -\nburst: -\n"));
  EXPECT_THAT(RenderDescribe(f), Not(HasSubstr("rate: 0")));
}

}  // namespace
}  // namespace faas::cli
