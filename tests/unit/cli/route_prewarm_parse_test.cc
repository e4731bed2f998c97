// Parsing and rendering of `route add|list|delete` and `prewarm`.
#include <stdlib.h>

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

using ::testing::HasSubstr;

class RouteParseTest : public ParseFixture {};

TEST_F(RouteParseTest, RouteAdd) {
  auto cmd = ParseAs<RouteAddCommand>({"route", "add", "GET", "/users/{id}", "users"});
  EXPECT_EQ(cmd.method, "GET");
  EXPECT_EQ(cmd.path, "/users/{id}");
  EXPECT_EQ(cmd.function, "users");
  EXPECT_EQ(cmd.host, "");
}

TEST_F(RouteParseTest, RouteAddUpperCasesTheMethodAndTakesHostAndGlobalFlags) {
  auto cmd = ParseAs<RouteAddCommand>({"route", "add", "any", "/files/{rest...}", "files", "--host",
                                       "api.example.com", "-o", "json", "--server", "10.0.0.1:1"});
  EXPECT_EQ(cmd.method, "ANY");
  EXPECT_EQ(cmd.host, "api.example.com");
  EXPECT_EQ(last_global_.output, OutputFormat::kJson);
  EXPECT_EQ(last_global_.server, "10.0.0.1:1");
}

TEST_F(RouteParseTest, RouteAddBadMethodOrEmptyHostIsUsageErrorNamingAll) {
  std::string e = ErrorOf({"route", "add", "FETCH", "/x", "f", "--host", ""});
  EXPECT_THAT(e, HasSubstr("METHOD \"FETCH\": must be one of GET, HEAD, POST, PUT, PATCH, DELETE, "
                           "OPTIONS, ANY"));
  EXPECT_THAT(e, HasSubstr("--host \"\": must not be empty"));
}

TEST_F(RouteParseTest, RouteAddNeedsAllThreeArguments) {
  EXPECT_FALSE(ErrorOf({"route", "add", "GET", "/x"}).empty());
  EXPECT_FALSE(ErrorOf({"route", "add"}).empty());
  EXPECT_FALSE(ErrorOf({"route"}).empty());
  EXPECT_FALSE(ErrorOf({"route", "frob"}).empty());
}

TEST_F(RouteParseTest, RouteListAndDelete) {
  ParseAs<RouteListCommand>({"route", "list"});
  auto del = ParseAs<RouteDeleteCommand>({"route", "delete", "post", "/a/{b}"});
  EXPECT_EQ(del.method, "POST");
  EXPECT_EQ(del.path, "/a/{b}");
  EXPECT_EQ(del.host, "");
  del = ParseAs<RouteDeleteCommand>({"route", "delete", "GET", "/a", "--host", "h.example"});
  EXPECT_EQ(del.host, "h.example");
  EXPECT_THAT(ErrorOf({"route", "delete", "BREW", "/a"}), HasSubstr("METHOD \"BREW\""));
  EXPECT_FALSE(ErrorOf({"route", "delete", "GET"}).empty());
}

TEST_F(RouteParseTest, Prewarm) {
  auto cmd = ParseAs<PrewarmCommand>({"prewarm", "hello", "5"});
  EXPECT_EQ(cmd.name, "hello");
  EXPECT_EQ(cmd.count, 5u);
  EXPECT_EQ(ParseAs<PrewarmCommand>({"prewarm", "hello", "1000"}).count, 1000u);
  EXPECT_EQ(ParseAs<PrewarmCommand>({"prewarm", "hello", "1"}).count, 1u);
}

TEST_F(RouteParseTest, PrewarmCountMustBe1To1000) {
  EXPECT_THAT(ErrorOf({"prewarm", "hello", "0"}), HasSubstr("N \"0\": must be 1..1000"));
  EXPECT_THAT(ErrorOf({"prewarm", "hello", "1001"}), HasSubstr("N \"1001\": must be 1..1000"));
  EXPECT_THAT(ErrorOf({"prewarm", "hello", "-1"}), HasSubstr("N \"-1\""));
  EXPECT_THAT(ErrorOf({"prewarm", "hello", "x"}), HasSubstr("must be a non-negative integer"));
  EXPECT_FALSE(ErrorOf({"prewarm", "hello"}).empty());
}

TEST(RouteRender, RequestsCarryTheParsedValues) {
  faas::v1::AddRouteRequest add =
      ToAddRouteRequest({"GET", "/users/{id}", "users", "api.example.com"});
  EXPECT_EQ(add.route().method(), "GET");
  EXPECT_EQ(add.route().path(), "/users/{id}");
  EXPECT_EQ(add.route().function(), "users");
  EXPECT_EQ(add.route().host(), "api.example.com");
  faas::v1::RouteKey key = ToRouteKey({"DELETE", "/x", "h"});
  EXPECT_EQ(key.method(), "DELETE");
  EXPECT_EQ(key.path(), "/x");
  EXPECT_EQ(key.host(), "h");
  faas::v1::PrewarmRequest pre = ToPrewarmRequest({"hello", 7});
  EXPECT_EQ(pre.name(), "hello");
  EXPECT_EQ(pre.count(), 7u);
}

TEST(RouteRender, TableJsonAndPrewarmLine) {
  faas::v1::ListRoutesReply reply;
  faas::v1::Route* r = reply.add_routes();
  r->set_method("GET");
  r->set_path("/u/{id}");
  r->set_function("users");
  r->set_created_unix_ms(5);
  r = reply.add_routes();
  r->set_method("ANY");
  r->set_path("/f/{rest...}");
  r->set_host("h.example");
  r->set_function("files");
  EXPECT_EQ(RenderRoutesTable(reply),
            "METHOD  PATH          HOST       FUNCTION\n"
            "GET     /u/{id}       -          users\n"
            "ANY     /f/{rest...}  h.example  files\n");
  EXPECT_EQ(RenderRoutesTable(faas::v1::ListRoutesReply()), "METHOD  PATH  HOST  FUNCTION\n");
  EXPECT_EQ(DescribeRoute(reply.routes(0)), "GET /u/{id} -> users");
  EXPECT_EQ(DescribeRoute(reply.routes(1)), "ANY /f/{rest...} (host h.example) -> files");
  EXPECT_EQ(RouteToJson(reply.routes(0)), nlohmann::json({{"method", "GET"},
                                                          {"path", "/u/{id}"},
                                                          {"host", ""},
                                                          {"function", "users"},
                                                          {"created_unix_ms", 5}}));

  faas::v1::PrewarmReply pre;
  pre.set_started(3);
  pre.set_idle(4);
  EXPECT_EQ(RenderPrewarm("hello", pre), "started 3 instances of hello (4 idle)\n");
  EXPECT_EQ(PrewarmReplyToJson(pre), nlohmann::json({{"started", 3}, {"idle", 4}}));
}

}  // namespace
}  // namespace faas::cli
