#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/cli/command.h"
#include "faas/cli/render.h"

#include "parse_fixture.h"

namespace faas::cli {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

// Keeps FAAS_SERVER / FAAS_TOKEN from the developer's shell out of the tests.
class ParseTest : public ParseFixture {};

TEST_F(ParseTest, GlobalDefaults) {
  ParseAs<ListCommand>({"list"});
  EXPECT_EQ(last_global_.server, "127.0.0.1:9090");
  EXPECT_EQ(last_global_.token, "");
  EXPECT_EQ(last_global_.output, OutputFormat::kTable);
  EXPECT_EQ(last_global_.rpc_timeout, 60s);
}

TEST_F(ParseTest, GlobalFlagsBeforeOrAfterTheSubcommand) {
  ParseAs<ListCommand>(
      {"--server", "10.0.0.1:1", "list", "-o", "json", "--rpc-timeout", "5s", "--token", "t0k"});
  EXPECT_EQ(last_global_.server, "10.0.0.1:1");
  EXPECT_EQ(last_global_.token, "t0k");
  EXPECT_EQ(last_global_.output, OutputFormat::kJson);
  EXPECT_EQ(last_global_.rpc_timeout, 5s);
}

TEST_F(ParseTest, ServerAndTokenFromEnvironment) {
  setenv("FAAS_SERVER", "192.0.2.1:9999", 1);
  setenv("FAAS_TOKEN", "secret", 1);
  ParseAs<ListCommand>({"list"});
  EXPECT_EQ(last_global_.server, "192.0.2.1:9999");
  EXPECT_EQ(last_global_.token, "secret");
  // The flag beats the environment.
  ParseAs<ListCommand>({"--server", "127.0.0.1:1", "list"});
  EXPECT_EQ(last_global_.server, "127.0.0.1:1");
}

TEST_F(ParseTest, BadOutputFormatIsUsageError) {
  EXPECT_THAT(ErrorOf({"-o", "yaml", "list"}), HasSubstr("yaml"));
}

TEST_F(ParseTest, BadRpcTimeoutNamesFlagAndValue) {
  std::string e = ErrorOf({"--rpc-timeout", "soon", "list"});
  EXPECT_THAT(e, HasSubstr("--rpc-timeout"));
  EXPECT_THAT(e, HasSubstr("soon"));
}

TEST_F(ParseTest, NoSubcommandIsUsageError) {
  EXPECT_FALSE(ErrorOf({}).empty());
}

TEST_F(ParseTest, UnknownSubcommandIsUsageError) {
  EXPECT_FALSE(ErrorOf({"frobnicate"}).empty());
  EXPECT_FALSE(ErrorOf({"trigger", "frobnicate"}).empty());
  EXPECT_FALSE(ErrorOf({"key"}).empty());
  EXPECT_FALSE(ErrorOf({"queue"}).empty());
}

TEST_F(ParseTest, HelpListsEveryCommandGroup) {
  Result<Invocation> inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  const auto* help = std::get_if<HelpCommand>(&inv->command);
  ASSERT_NE(help, nullptr);
  for (const char* cmd : {"deploy", "invoke", "route", "key", "trigger", "queue", "bench"}) {
    EXPECT_THAT(help->text, HasSubstr(std::string("\n  ") + cmd + " ")) << cmd;
  }
  inv = Parse({"trigger", "add", "--help"});
  ASSERT_TRUE(inv.ok());
  help = std::get_if<HelpCommand>(&inv->command);
  ASSERT_NE(help, nullptr);
  EXPECT_THAT(help->text, HasSubstr("--visibility-timeout"));
}

TEST_F(ParseTest, HelpIsACommandWithText) {
  Result<Invocation> inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  const auto* help = std::get_if<HelpCommand>(&inv->command);
  ASSERT_NE(help, nullptr);
  EXPECT_THAT(help->text, HasSubstr("deploy"));
  EXPECT_THAT(help->text, HasSubstr("--server"));

  inv = Parse({"deploy", "-h"});
  ASSERT_TRUE(inv.ok());
  help = std::get_if<HelpCommand>(&inv->command);
  ASSERT_NE(help, nullptr);
  EXPECT_THAT(help->text, HasSubstr("--isolation"));
}

TEST_F(ParseTest, DeployMinimal) {
  auto d = ParseAs<DeployCommand>({"deploy", "hello", "./libhello.so"});
  EXPECT_EQ(d.name, "hello");
  EXPECT_EQ(d.library_path, "./libhello.so");
  EXPECT_FALSE(d.options.memory_mb);
  EXPECT_FALSE(d.options.timeout);
  EXPECT_FALSE(d.options.min_warm);
  EXPECT_EQ(d.options.isolation, "");
  EXPECT_FALSE(d.options.is_public);
  EXPECT_TRUE(d.options.env.empty());
}

TEST_F(ParseTest, DeployAllFlags) {
  auto d = ParseAs<DeployCommand>(
      {"deploy",     "hello",       "h.so",  "--memory",    "256",   "--timeout",
       "2s",         "--cpu-limit", "500ms", "--min-warm",  "0",     "--max-instances",
       "4",          "--idle-ttl",  "5m",    "--isolation", "fresh", "--network",
       "outbound",   "--env",       "A=1",   "--env",       "B=x=y", "--public",
       "--max-body", "1048576"});
  EXPECT_EQ(d.options.memory_mb, 256u);
  EXPECT_EQ(d.options.timeout, 2000ms);
  EXPECT_EQ(d.options.cpu_limit, 500ms);
  ASSERT_TRUE(d.options.min_warm);  // given as 0: still "given"
  EXPECT_EQ(*d.options.min_warm, 0u);
  EXPECT_EQ(d.options.max_instances, 4u);
  EXPECT_EQ(d.options.idle_ttl, 300'000ms);
  EXPECT_EQ(d.options.isolation, "fresh");
  EXPECT_EQ(d.options.network, "outbound");
  EXPECT_EQ(d.options.env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "x=y"}}));
  EXPECT_TRUE(d.options.is_public);
  EXPECT_EQ(d.options.max_body_bytes, 1048576u);
}

TEST_F(ParseTest, DeployEnvTakesOneValuePerFlag) {
  auto d = ParseAs<DeployCommand>({"deploy", "--env", "A=1", "hello", "h.so"});
  EXPECT_EQ(d.name, "hello");
  EXPECT_EQ(d.library_path, "h.so");
  EXPECT_EQ(d.options.env.at("A"), "1");
}

TEST_F(ParseTest, DeployBadDurationIsUsageErrorNamingFlag) {
  std::string e = ErrorOf({"deploy", "hello", "h.so", "--timeout", "2x"});
  EXPECT_THAT(e, HasSubstr("--timeout \"2x\""));
  EXPECT_THAT(e, HasSubstr("unknown unit"));
}

TEST_F(ParseTest, DeployReportsAllBadValuesAtOnce) {
  std::string e = ErrorOf({"deploy", "hello", "h.so", "--idle-ttl", "forever", "--cpu-limit", "-1s",
                           "--memory", "-5", "--env", "=x"});
  EXPECT_THAT(e, HasSubstr("--idle-ttl \"forever\""));
  EXPECT_THAT(e, HasSubstr("--cpu-limit \"-1s\""));
  EXPECT_THAT(e, HasSubstr("--memory \"-5\""));
  EXPECT_THAT(e, HasSubstr("--env \"=x\""));
}

TEST_F(ParseTest, DeploySubMillisecondDurationIsRejected) {
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--timeout", "0"}), HasSubstr("at least 1ms"));
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--timeout", "1500us"}),
              HasSubstr("whole number of milliseconds"));
}

TEST_F(ParseTest, DeployMissingNameIsUsageError) {
  EXPECT_THAT(ErrorOf({"deploy"}), HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"deploy", "hello"}), HasSubstr("LIB.so"));
}

TEST_F(ParseTest, DeployUnknownIsolationIsUsageError) {
  std::string e = ErrorOf({"deploy", "hello", "h.so", "--isolation", "shared"});
  EXPECT_THAT(e, HasSubstr("--isolation"));
  EXPECT_THAT(e, HasSubstr("shared"));
  EXPECT_THAT(ErrorOf({"deploy", "hello", "h.so", "--network", "full"}), HasSubstr("full"));
}

TEST_F(ParseTest, DeployDuplicateEnvKeyIsUsageError) {
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--env", "A=1", "--env", "A=2"}),
              HasSubstr("\"A\" given more than once"));
}

TEST_F(ParseTest, DeployZeroMemoryOrMaxInstancesIsUsageError) {
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--memory", "0"}), HasSubstr("--memory"));
  EXPECT_THAT(ErrorOf({"deploy", "f", "f.so", "--max-instances", "0"}),
              HasSubstr("--max-instances"));
}

TEST_F(ParseTest, RegistryCommands) {
  EXPECT_EQ(ParseAs<DescribeCommand>({"describe", "f"}).name, "f");
  EXPECT_EQ(ParseAs<DeleteCommand>({"delete", "f"}).name, "f");
  EXPECT_EQ(ParseAs<VersionsCommand>({"versions", "f"}).name, "f");
  auto r = ParseAs<RollbackCommand>({"rollback", "f", "7"});
  EXPECT_EQ(r.name, "f");
  EXPECT_EQ(r.version, 7u);
  ParseAs<VersionCommand>({"version"});
}

TEST_F(ParseTest, RegistryCommandsNeedTheirArguments) {
  EXPECT_THAT(ErrorOf({"describe"}), HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"delete"}), HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"versions"}), HasSubstr("NAME"));
  EXPECT_THAT(ErrorOf({"rollback", "f"}), HasSubstr("VERSION"));
  EXPECT_THAT(ErrorOf({"rollback", "f", "seven"}), HasSubstr("VERSION \"seven\""));
  EXPECT_FALSE(ErrorOf({"list", "extra"}).empty());
}

TEST_F(ParseTest, InvokeDefaults) {
  auto i = ParseAs<InvokeCommand>({"invoke", "f"});
  EXPECT_EQ(i.name, "f");
  EXPECT_EQ(i.data.kind, DataSource::Kind::kNone);
  EXPECT_EQ(i.method, "");
  EXPECT_FALSE(i.verbose);
}

TEST_F(ParseTest, InvokeAllFlags) {
  auto i = ParseAs<InvokeCommand>({"invoke", "f", "--data", "@body.json", "--method", "PUT",
                                   "--path", "/a/b", "--query", "x=1", "-v"});
  EXPECT_EQ(i.data.kind, DataSource::Kind::kFile);
  EXPECT_EQ(i.data.value, "body.json");
  EXPECT_EQ(i.method, "PUT");
  EXPECT_EQ(i.path, "/a/b");
  EXPECT_EQ(i.query, "x=1");
  EXPECT_TRUE(i.verbose);
}

TEST_F(ParseTest, InvokeMissingNameIsUsageError) {
  EXPECT_THAT(ErrorOf({"invoke", "--data", "x"}), HasSubstr("NAME"));
}

TEST(DataSource, ParsesTheThreeForms) {
  EXPECT_EQ(ParseDataSource("@in.bin").kind, DataSource::Kind::kFile);
  EXPECT_EQ(ParseDataSource("@in.bin").value, "in.bin");
  EXPECT_EQ(ParseDataSource("-").kind, DataSource::Kind::kStdin);
  EXPECT_EQ(ParseDataSource("hello").kind, DataSource::Kind::kLiteral);
  EXPECT_EQ(ParseDataSource("hello").value, "hello");
  EXPECT_EQ(ParseDataSource("").kind, DataSource::Kind::kLiteral);
}

TEST(DataSource, ReadsLiteralStdinAndFile) {
  std::istringstream in(std::string("from\0stdin", 10));
  EXPECT_EQ(*ReadData(ParseDataSource("literal body"), in), "literal body");
  EXPECT_EQ(*ReadData(ParseDataSource("-"), in), std::string("from\0stdin", 10));
  EXPECT_EQ(*ReadData(DataSource{}, in), "");

  std::string path = ::testing::TempDir() + "faasctl_data_test.bin";
  std::string bytes("\x00\x01\xff payload", 11);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  EXPECT_EQ(*ReadData(ParseDataSource("@" + path), in), bytes);
  (void)std::remove(path.c_str());  // best effort: TempDir is per run
}

TEST(DataSource, MissingFileIsInvalidArgumentNamingIt) {
  std::istringstream in;
  Result<std::string> r = ReadData(ParseDataSource("@/nonexistent/faasctl/body"), in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("--data \"@/nonexistent/faasctl/body\""));
}

TEST(ParseEnv, SplitsAtFirstEquals) {
  auto env = ParseEnv({"A=", "B=c=d"});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->at("A"), "");
  EXPECT_EQ(env->at("B"), "c=d");
  EXPECT_FALSE(ParseEnv({"novalue"}).ok());
}

TEST_F(ParseTest, DeployQueueFlagsAndInvokeFresh) {
  auto d = ParseAs<DeployCommand>(
      {"deploy", "f", "/tmp/lib.so", "--queue-depth", "50", "--queue-timeout", "2s"});
  ASSERT_TRUE(d.options.queue_depth.has_value());
  EXPECT_EQ(*d.options.queue_depth, 50u);
  ASSERT_TRUE(d.options.queue_timeout.has_value());
  EXPECT_EQ(*d.options.queue_timeout, std::chrono::milliseconds(2000));
  auto c = ToProtoConfig(d.options);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->has_queue_depth());
  EXPECT_EQ(c->queue_depth(), 50u);
  EXPECT_EQ(c->queue_timeout_ms(), 2000u);
  EXPECT_NE(
      ErrorOf({"deploy", "f", "/tmp/lib.so", "--queue-timeout", "soon"}).find("--queue-timeout"),
      std::string::npos);
  auto inv = ParseAs<InvokeCommand>({"invoke", "f", "--fresh"});
  EXPECT_TRUE(inv.fresh);
}

TEST_F(ParseTest, BenchColdStartAndWarm) {
  auto cold = ParseAs<BenchCommand>({"bench", "cold-start", "f", "-n", "5"});
  EXPECT_TRUE(cold.cold);
  EXPECT_EQ(cold.name, "f");
  EXPECT_EQ(cold.n, 5u);
  auto warm = ParseAs<BenchCommand>({"bench", "warm", "f", "-n", "20", "-c", "4"});
  EXPECT_FALSE(warm.cold);
  EXPECT_EQ(warm.n, 20u);
  EXPECT_EQ(warm.concurrency, 4u);
  EXPECT_NE(ErrorOf({"bench", "warm", "f", "-n", "0"}).find("-n"), std::string::npos);
  EXPECT_NE(ErrorOf({"bench", "warm", "f", "-c", "300"}).find("-c"), std::string::npos);
  EXPECT_FALSE(Parse({"bench"}).ok());
  EXPECT_FALSE(cold.after_idle.has_value());
  auto idle = ParseAs<BenchCommand>({"bench", "cold-start", "f", "-n", "3", "--after-idle", "2s"});
  ASSERT_TRUE(idle.after_idle.has_value());
  EXPECT_EQ(*idle.after_idle, std::chrono::milliseconds(2000));
  EXPECT_NE(ErrorOf({"bench", "cold-start", "f", "--after-idle", "soon"}).find("--after-idle"),
            std::string::npos);
  EXPECT_FALSE(Parse({"bench", "warm", "f", "--after-idle", "1s"}).ok()) << "cold-start only";
}

}  // namespace
}  // namespace faas::cli
