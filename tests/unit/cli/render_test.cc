#include "faas/cli/render.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace faas::cli {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

faas::v1::VersionInfo Version(uint32_t n, bool latest) {
  faas::v1::VersionInfo v;
  v.set_function("hello");
  v.set_version(n);
  v.set_artifact_sha256("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  v.set_content_hash("ffff0000");
  v.set_size_bytes(1536);
  v.set_created_unix_ms(1714564800000);  // 2024-05-01T12:00:00Z
  v.mutable_config()->set_memory_mb(128);
  v.mutable_config()->set_timeout_ms(10'000);
  v.set_latest(latest);
  return v;
}

TEST(ToProtoConfig, SetsOnlyGivenFieldsAndHasMinWarm) {
  DeployOptions o;
  o.memory_mb = 256;
  o.timeout = 2000ms;
  o.min_warm = 0;
  o.isolation = "fresh";
  o.env = {{"A", "1"}};
  o.is_public = true;
  auto c = ToProtoConfig(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->memory_mb(), 256u);
  EXPECT_EQ(c->timeout_ms(), 2000u);
  EXPECT_EQ(c->cpu_limit_ms(), 0u);
  EXPECT_TRUE(c->has_min_warm());
  EXPECT_EQ(c->min_warm(), 0u);
  EXPECT_EQ(c->isolation(), "fresh");
  EXPECT_EQ(c->network(), "");
  EXPECT_EQ(c->env().at("A"), "1");
  EXPECT_TRUE(c->is_public());

  auto defaults = ToProtoConfig(DeployOptions{});
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->has_min_warm());
}

TEST(ToProtoConfig, MaxBodyIsSent) {
  DeployOptions o;
  o.max_body_bytes = 1024;
  auto c = ToProtoConfig(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->max_body_bytes(), 1024u);
}

TEST(RenderDeploy, NewVersionAndUnchanged) {
  faas::v1::DeployReply r;
  *r.mutable_version() = Version(3, true);
  r.set_probe_ms(7.25);
  EXPECT_EQ(RenderDeploy(r), "deployed hello version 3 (sha256 abcdef01\u2026, probe 7.2 ms)\n");
  r.set_unchanged(true);
  EXPECT_EQ(RenderDeploy(r), "hello unchanged at version 3\n");
}

TEST(RenderFunctionTable, HasTheDocumentedColumns) {
  faas::v1::ListFunctionsReply reply;
  auto* f = reply.add_functions();
  f->set_name("hello");
  f->set_latest_version(3);
  f->set_version_count(3);
  *f->mutable_latest() = Version(3, true);
  f->set_instances_idle(2);
  f->set_invocations(1234);
  f->set_cold_starts(5);
  EXPECT_EQ(RenderFunctionTable(reply),
            "NAME   VERSION  VERSIONS  IDLE  BUSY  INVOCATIONS  COLD  MEMORY   TIMEOUT\n"
            "hello  3        3         2     0     1234         5     128 MiB  10s\n");
}

TEST(RenderVersionsTable, MarksLatestAndShortensHash) {
  faas::v1::ListVersionsReply reply;
  *reply.add_versions() = Version(1, false);
  *reply.add_versions() = Version(2, true);
  EXPECT_EQ(RenderVersionsTable(reply),
            "VERSION  CREATED               SHA256        SIZE     MEMORY   TIMEOUT  LATEST\n"
            "1        2024-05-01T12:00:00Z  abcdef012345  1.5 KiB  128 MiB  10s\n"
            "2        2024-05-01T12:00:00Z  abcdef012345  1.5 KiB  128 MiB  10s      *\n");
}

TEST(RenderDescribe, KeyValueLines) {
  faas::v1::FunctionInfo f;
  f.set_name("hello");
  f.set_latest_version(2);
  f.set_version_count(2);
  *f.mutable_latest() = Version(2, true);
  (*f.mutable_latest()->mutable_config()->mutable_env())["B"] = "2";
  (*f.mutable_latest()->mutable_config()->mutable_env())["A"] = "1";
  f.set_instances_busy(1);
  std::string text = RenderDescribe(f);
  EXPECT_THAT(text, HasSubstr("name: hello\n"));
  EXPECT_THAT(text, HasSubstr("latest version: 2\n"));
  EXPECT_THAT(text, HasSubstr("sha256: abcdef0123456789"));
  EXPECT_THAT(text, HasSubstr("memory: 128 MiB\n"));
  EXPECT_THAT(text, HasSubstr("timeout: 10s\n"));
  EXPECT_THAT(text, HasSubstr("env A: 1\nenv B: 2\n"));
  EXPECT_THAT(text, HasSubstr("instances busy: 1\n"));
}

TEST(RenderInvokeDetails, StatusTimingsCpuAndLogs) {
  faas::v1::InvokeReply r;
  r.set_status(200);
  r.set_invocation_id("inv-1");
  r.set_cold_start(true);
  auto* t = r.add_timings();
  t->set_phase("spawn");
  t->set_ms(1.234);
  r.set_cpu_ms(0.41);
  r.set_logs("hello from stderr");
  EXPECT_EQ(RenderInvokeDetails(r),
            "status: 200\n"
            "invocation: inv-1\n"
            "cold start: yes\n"
            "spawn: 1.23 ms\n"
            "cpu: 0.41 ms\n"
            "--- logs ---\n"
            "hello from stderr\n");
}

TEST(InvokeReplyToJson, BodyAsStringOrBase64) {
  faas::v1::InvokeReply r;
  r.set_status(200);
  r.set_body("caf\xc3\xa9");
  nlohmann::json j = InvokeReplyToJson(r);
  EXPECT_EQ(j["body"], "caf\xc3\xa9");
  EXPECT_FALSE(j.contains("body_base64"));

  r.set_body(std::string("\xff\x00\x01", 3));
  j = InvokeReplyToJson(r);
  EXPECT_FALSE(j.contains("body"));
  EXPECT_EQ(j["body_base64"], "/wAB");
  EXPECT_EQ(j["status"], 200);
}

TEST(DumpJson, ReplacesInvalidUtf8InsteadOfThrowing) {
  nlohmann::json j{{"k", std::string("a\xff")}};
  std::string out;
  ASSERT_NO_THROW(out = DumpJson(j));
  EXPECT_THAT(out, HasSubstr("\"k\": \"a\xef\xbf\xbd\""));
}

TEST(IsValidUtf8, AcceptsUtf8RejectsBrokenSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x80\xa6 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Base64Encode, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Formatters, BytesTimeAndMillis) {
  EXPECT_EQ(FormatBytes(812), "812 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3u << 20), "3.0 MiB");
  EXPECT_EQ(FormatUnixMillis(0), "-");
  EXPECT_EQ(FormatUnixMillis(1714564800123), "2024-05-01T12:00:00Z");
  EXPECT_EQ(FormatMillis(3.2), "3.20 ms");
}

}  // namespace
}  // namespace faas::cli
