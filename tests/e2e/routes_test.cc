// End-to-end: custom HTTP routes (issue #6 item 1) with a real faasd, faasctl and HTTP.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;

class Routes : public FaasdTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Logs();
    CommandResult r = d_.Ctl({"deploy", "echo", FunctionLib("echo")});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  // The echo function's JSON for one request; an empty object if the status was not 200.
  Json Echo(const std::string& method, const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    HttpResult r = HttpRequest(d_.http_port(), method, target, "", headers);
    EXPECT_EQ(r.status, 200) << method << " " << target << ": " << r.body;
    if (r.status != 200) {
      return Json::object();
    }
    Json j = Json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  // A request with our own Host header (HttpConnection::Request always sends 127.0.0.1).
  HttpResult GetWithHost(const std::string& target, const std::string& host) {
    HttpConnection c("127.0.0.1", d_.http_port());
    return c.Raw("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  }
};

TEST_F(Routes, ParamsReachTheFunctionAsHeadersAndCannotBeSpoofed) {
  Ctl0({"route", "add", "GET", "/users/{id}", "echo"});
  Ctl0({"route", "add", "ANY", "/files/{rest...}", "echo"});

  Json j = Echo("GET", "/users/42?x=1", {{"X-Faas-Param-Id", "forged"}, {"X-Custom", "kept"}});
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/users/42");
  EXPECT_EQ(j["query"], "x=1");
  EXPECT_EQ(j["headers"]["x-faas-param-id"], "42");
  EXPECT_EQ(j["headers"]["x-custom"], "kept");
  // Only one x-faas-param-id reached the function: ours. (The echo JSON keeps the last of
  // duplicate names, so count them in the raw body.)
  HttpResult raw =
      HttpRequest(d_.http_port(), "GET", "/users/42", "", {{"X-Faas-Param-Id", "forged"}});
  EXPECT_EQ(raw.body.find("forged"), std::string::npos) << raw.body;
  EXPECT_EQ(raw.body.find("x-faas-param-id"), raw.body.rfind("x-faas-param-id")) << raw.body;

  j = Echo("POST", "/files/a/b%20c/d.txt");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/files/a/b%20c/d.txt");
  EXPECT_EQ(j["headers"]["x-faas-param-rest"], "a/b c/d.txt");
  EXPECT_EQ(j["trigger"], "http");

  // Percent-decoded parameters; a method without a route; no route at all.
  EXPECT_EQ(Echo("GET", "/users/a%2Fb")["headers"]["x-faas-param-id"], "a/b");
  ExpectError(HttpRequest(d_.http_port(), "POST", "/users/42"), 404, "route_not_found");
  ExpectError(HttpRequest(d_.http_port(), "GET", "/users/%zz"), 404, "route_not_found");
  ExpectError(HttpRequest(d_.http_port(), "GET", "/nowhere"), 404, "route_not_found");
  // The built-in routes are unchanged.
  EXPECT_EQ(HttpRequest(d_.http_port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(Echo("GET", "/function/echo/users/1")["path"], "/users/1");
}

TEST_F(Routes, HostRoutesBeatHostlessOnes) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  Ctl0({"route", "add", "GET", "/whoami", "hello", "--host", "api.example.com"});
  Ctl0({"route", "add", "GET", "/whoami", "echo"});
  HttpResult api = GetWithHost("/whoami", "API.example.com:8080");
  EXPECT_EQ(api.status, 200) << api.body;
  EXPECT_EQ(api.body, "Hello from faas!\n");
  HttpResult other = GetWithHost("/whoami", "www.example.com");
  EXPECT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(other.Header("content-type"), "application/json");
}

TEST_F(Routes, ConflictsAndInvalidRoutesAreRefusedWithAMessage) {
  Ctl0({"route", "add", "GET", "/users/{id}", "echo"});
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"GET", "/users/{uid}", "echo"}, 1, "route_conflict"},
      {{"GET", "/users/{uid}", "echo"}, 1, "GET /users/{id} -> echo"},
      {{"GET", "/users/{id}", "echo"}, 1, "route_conflict"},
      {{"GET", "/function/echo", "echo"}, 1, "route_conflict"},
      {{"GET", "/function/echo", "echo"}, 1, "built-in route"},
      {{"GET", "/healthz", "echo"}, 1, "route_conflict"},
      {{"GET", "users", "echo"}, 1, "invalid_route"},
      {{"GET", "users", "echo"}, 1, "must start with '/'"},
      {{"GET", "/{rest...}/x", "echo"}, 1, "invalid_route"},
      {{"GET", "/{Id}", "echo"}, 1, "parameter name \"Id\""},
      {{"GET", "/x", "Bad_Fn"}, 1, "invalid_route"},
      {{"FETCH", "/x", "echo"}, 2, "METHOD \"FETCH\""},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"route", "add"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CommandResult r = d_.Ctl(args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args[1] << ": " << r.err;
  }
  CommandResult list = d_.Ctl({"route", "list", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(Json::parse(list.out)["routes"].size(), 1u) << list.out;
  // Same shape, other method: fine.
  Ctl0({"route", "add", "POST", "/users/{uid}", "echo"});
}

TEST_F(Routes, ListShowsEveryRoute) {
  Ctl0({"route", "add", "GET", "/users/{id}", "echo"});
  Ctl0({"route", "add", "any", "/files/{rest...}", "echo", "--host", "Files.Example.com"});
  CommandResult table = d_.Ctl({"route", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("METHOD"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("FUNCTION"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("/users/{id}"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("files.example.com"), std::string::npos) << table.out;

  CommandResult json = d_.Ctl({"route", "list", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json j = Json::parse(json.out);
  ASSERT_EQ(j["routes"].size(), 2u) << json.out;
  EXPECT_EQ(j["routes"][0]["method"], "ANY");  // sorted by path
  EXPECT_EQ(j["routes"][0]["path"], "/files/{rest...}");
  EXPECT_EQ(j["routes"][0]["host"], "files.example.com");
  EXPECT_EQ(j["routes"][0]["function"], "echo");
  EXPECT_GT(j["routes"][0]["created_unix_ms"].get<int64_t>(), 0);
  EXPECT_EQ(j["routes"][1]["path"], "/users/{id}");
}

TEST_F(Routes, DeleteMakesTheRouteAnswer404) {
  Ctl0({"route", "add", "GET", "/users/{id}", "echo"});
  EXPECT_EQ(HttpRequest(d_.http_port(), "GET", "/users/1").status, 200);
  Ctl0({"route", "delete", "GET", "/users/{id}"});
  ExpectError(HttpRequest(d_.http_port(), "GET", "/users/1"), 404, "route_not_found");
  CommandResult again = d_.Ctl({"route", "delete", "GET", "/users/{id}"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("route_not_found"), std::string::npos) << again.err;
}

TEST_F(Routes, ARouteToADeletedFunctionAnswersFunctionNotFound) {
  Ctl0({"deploy", "gone", FunctionLib("hello")});
  Ctl0({"route", "add", "GET", "/gone", "gone"});
  EXPECT_EQ(HttpRequest(d_.http_port(), "GET", "/gone").status, 200);
  Ctl0({"delete", "gone"});
  ExpectError(HttpRequest(d_.http_port(), "GET", "/gone", "",
                          {{"Authorization", "Bearer " + d_.CreateKey()}}),
              404, "function_not_found");
  CommandResult list = d_.Ctl({"route", "list", "-o", "json"});
  EXPECT_EQ(Json::parse(list.out)["routes"].size(), 1u) << list.out;
}

TEST_F(Routes, RoutesSurviveARestart) {
  Ctl0({"route", "add", "GET", "/users/{id}", "echo"});
  Ctl0({"route", "add", "ANY", "/files/{rest...}", "echo"});
  ASSERT_EQ(d_.Stop(), 0) << d_.Logs();
  ASSERT_TRUE(d_.Start()) << d_.Logs();
  EXPECT_EQ(Echo("GET", "/users/7")["headers"]["x-faas-param-id"], "7");
  EXPECT_EQ(Echo("DELETE", "/files/x/y")["headers"]["x-faas-param-rest"], "x/y");
  CommandResult list = d_.Ctl({"route", "list", "-o", "json"});
  EXPECT_EQ(Json::parse(list.out)["routes"].size(), 2u) << list.out;
}

}  // namespace
}  // namespace faas::testing
