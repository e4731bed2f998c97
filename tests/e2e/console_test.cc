// End-to-end: the web console (/console/, docs/design/0026-console.md) against a real faasd.
// The attacks come first: no session, a forged session, a wrong token at sign-in, a change
// without (or with another session's) CSRF token, and the admin token leaking into an answer or
// the log. Then the API must say what the control API says (faasctl -o json).
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

class Console : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Logs(); }

  // The faasd whose console the helpers below talk to (a cluster's gateway in ConsoleCluster).
  virtual FaasdProcess& Target() { return d_; }

  HttpResult Get(const std::string& target, const std::string& cookie = "", Headers headers = {}) {
    if (!cookie.empty()) {
      headers.emplace_back("Cookie", "faas_console=" + cookie);
    }
    return HttpRequest(Target().http_port(), "GET", target, "", headers);
  }

  HttpResult Send(const std::string& method, const std::string& target, const std::string& cookie,
                  const std::string& csrf, const std::string& body = "") {
    Headers h = {{"Cookie", "faas_console=" + cookie}};
    if (!csrf.empty()) {
      h.emplace_back("X-Faas-Csrf", csrf);
    }
    return HttpRequest(Target().http_port(), method, target, body, h);
  }

  HttpResult PostSignIn(const std::string& token, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    return HttpRequest(Target().http_port(), "POST", "/console/signin", "token=" + token, headers);
  }

  // Signs in with the admin token; the session cookie's value ("" on failure).
  std::string SignIn() {
    HttpResult r = PostSignIn(Target().AdminToken());
    EXPECT_EQ(r.status, 303) << r.body;
    const std::string cookie = r.Header("set-cookie");
    const std::string prefix = "faas_console=";
    if (!cookie.starts_with(prefix)) {
      ADD_FAILURE() << "no session cookie: " << cookie;
      return "";
    }
    return cookie.substr(prefix.size(), cookie.find(';') - prefix.size());
  }

  std::string Csrf(const std::string& cookie) {
    HttpResult r = Get("/console/api/session", cookie);
    EXPECT_EQ(r.status, 200) << r.body;
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("csrf_token", "") : "";
  }
};

const std::vector<std::string> kPages = {
    "/console/",        "/console/functions", "/console/function?name=hello",
    "/console/billing", "/console/queues",    "/console/cluster"};
const std::vector<std::string> kApi = {"/console/api/functions",
                                       "/console/api/functions/hello",
                                       "/console/api/functions/hello/versions",
                                       "/console/api/functions/hello/invocations",
                                       "/console/api/functions/hello/logs",
                                       "/console/api/bill?by=function",
                                       "/console/api/bill.csv",
                                       "/console/api/session",
                                       "/console/api/triggers",
                                       "/console/api/queues/jobs",
                                       "/console/api/queues/jobs/dead",
                                       "/console/api/nodes"};

TEST_F(Console, WithoutASessionPagesRedirectToSignInAndTheApiAnswers401) {
  for (const std::string& page : kPages) {
    HttpResult r = Get(page);
    EXPECT_EQ(r.status, 303) << page;
    EXPECT_EQ(r.Header("location"), "/console/signin") << page;
    EXPECT_EQ(r.body, "") << page;
  }
  for (const std::string& api : kApi) {
    HttpResult r = Get(api);
    ExpectError(r, 401, "unauthorized");
    EXPECT_EQ(r.Header("cache-control"), "no-store") << api;
  }
  // A change without a session is refused before its CSRF token is even looked at.
  ExpectError(HttpRequest(d_.http_port(), "DELETE", "/console/api/functions/hello"), 401,
              "unauthorized");
  ExpectError(HttpRequest(d_.http_port(), "POST", "/console/api/nodes/n1/drain"), 401,
              "unauthorized");
  EXPECT_EQ(Get("/console").status, 308);
  EXPECT_EQ(Get("/console").Header("location"), "/console/");
}

TEST_F(Console, AForgedOrSignedOutSessionIsRefused) {
  const std::string forged(64, 'a');
  for (const std::string& cookie : {forged, std::string("x"), d_.AdminToken()}) {
    ExpectError(Get("/console/api/functions", cookie), 401, "unauthorized");
    EXPECT_EQ(Get("/console/", cookie).status, 303);
  }
  // The admin token itself as a bearer header is no session either: the console has its own.
  ExpectError(Get("/console/api/functions", "", {{"Authorization", "Bearer " + d_.AdminToken()}}),
              401, "unauthorized");
  const std::string cookie = SignIn();
  ASSERT_EQ(Get("/console/api/functions", cookie).status, 200);
  HttpResult out = Send("POST", "/console/signout", cookie, Csrf(cookie));
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_NE(out.Header("set-cookie").find("Max-Age=0"), std::string::npos);
  ExpectError(Get("/console/api/functions", cookie), 401, "unauthorized");
}

TEST_F(Console, AWrongTokenAtSignInMakesNoSession) {
  const std::string token = d_.AdminToken();
  for (const std::string& wrong : {std::string(""), std::string("nope"), token.substr(1),
                                   token + "0", token.substr(0, token.size() - 1) + "g"}) {
    HttpResult r = PostSignIn(wrong);
    EXPECT_EQ(r.status, 401) << wrong;
    EXPECT_EQ(r.Header("set-cookie"), "") << wrong;
    EXPECT_NE(r.body.find("signin-error"), std::string::npos) << r.body;
  }
  // GET never signs in, whatever its query says.
  HttpResult g = Get("/console/signin?token=" + token);
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.Header("set-cookie"), "");
}

TEST_F(Console, TheSessionCookieIsHttpOnlyStrictAndScopedToTheConsole) {
  HttpResult r = PostSignIn(d_.AdminToken());
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.Header("location"), "/console/");
  const std::string cookie = r.Header("set-cookie");
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Path=/console"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "plain HTTP: " << cookie;
  // 256 random bits, hex.
  EXPECT_EQ(cookie.find(';'), std::string("faas_console=").size() + 64) << cookie;
  // Behind a TLS-terminating proxy the cookie is Secure.
  HttpResult tls = PostSignIn(d_.AdminToken(), {{"X-Forwarded-Proto", "https"}});
  EXPECT_NE(tls.Header("set-cookie").find("; Secure"), std::string::npos);
  // Two sign-ins are two sessions.
  EXPECT_NE(cookie, tls.Header("set-cookie"));
}

TEST_F(Console, AChangeNeedsThisSessionsCsrfToken) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  const std::string a = SignIn();
  const std::string b = SignIn();
  const std::string csrf_a = Csrf(a);
  const std::string csrf_b = Csrf(b);
  ASSERT_EQ(csrf_a.size(), 64u);
  ASSERT_NE(csrf_a, csrf_b);
  ExpectError(Send("DELETE", "/console/api/functions/hello", a, ""), 403, "csrf_failed");
  // One character changed; always a different one, whatever the token starts with.
  std::string altered = csrf_a;
  altered[0] = altered[0] == '0' ? '1' : '0';
  ExpectError(Send("DELETE", "/console/api/functions/hello", a, altered), 403, "csrf_failed");
  ExpectError(Send("DELETE", "/console/api/functions/hello", a, csrf_b), 403, "csrf_failed");
  ExpectError(Send("POST", "/console/api/functions/hello/rollback?version=1", a, ""), 403,
              "csrf_failed");
  ExpectError(Send("POST", "/console/api/functions/hello/versions", a, "", "not a library"), 403,
              "csrf_failed");
  ExpectError(Send("POST", "/console/signout", a, csrf_b), 403, "csrf_failed");
  // None of them changed anything.
  EXPECT_EQ(CtlJson({"versions", "hello"})["versions"].size(), 1u);
  EXPECT_EQ(Get("/console/api/functions", a).status, 200);
  // With its own token the same change goes through.
  HttpResult del = Send("DELETE", "/console/api/functions/hello", a, csrf_a);
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_NE(d_.Ctl({"describe", "hello"}).exit_code, 0);
}

TEST_F(Console, TheAdminTokenNeverAppearsInAnswersOrTheLog) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(HttpRequest(d_.http_port(), "GET", "/function/hello").status, 200);
  const std::string token = d_.AdminToken();
  std::vector<HttpResult> answers = {PostSignIn(token), PostSignIn(token + "x"),
                                     PostSignIn("x" + token), Get("/console/signin")};
  const std::string cookie = SignIn();
  for (const std::string& target : kPages) {
    answers.push_back(Get(target, cookie));
  }
  for (const std::string& target : kApi) {
    answers.push_back(Get(target, cookie));
  }
  answers.push_back(Send("DELETE", "/console/api/functions/nope", cookie, Csrf(cookie)));
  for (const HttpResult& r : answers) {
    EXPECT_GT(r.status, 0);
    EXPECT_EQ(r.body.find(token), std::string::npos) << r.body;
    for (const auto& [k, v] : r.headers) {
      EXPECT_EQ(v.find(token), std::string::npos) << k << ": " << v;
    }
  }
  EXPECT_EQ(d_.Logs().find(token), std::string::npos);
  EXPECT_NE(d_.Logs().find("console.signin_failed"), std::string::npos);
}

TEST_F(Console, PagesAndFilesAreServedWithTheirTypesAndAStrictPolicy) {
  const std::string cookie = SignIn();
  struct Want {
    std::string target, type;
  };
  for (const Want& w :
       std::vector<Want>{{"/console/", "text/html; charset=utf-8"},
                         {"/console/billing", "text/html; charset=utf-8"},
                         {"/console/signin", "text/html; charset=utf-8"},
                         {"/console/assets/console.css", "text/css; charset=utf-8"},
                         {"/console/assets/common.js", "text/javascript; charset=utf-8"},
                         {"/console/assets/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
                         {"/console/assets/uPlot.min.css", "text/css; charset=utf-8"},
                         {"/console/assets/uPlot-LICENSE.txt", "text/plain; charset=utf-8"},
                         {"/console/api/functions", "application/json"}}) {
    HttpResult r = Get(w.target, cookie);
    EXPECT_EQ(r.status, 200) << w.target << r.body;
    EXPECT_EQ(r.Header("content-type"), w.type) << w.target;
    const std::string csp = r.Header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << w.target;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << w.target;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << w.target;
    EXPECT_EQ(r.Header("x-content-type-options"), "nosniff") << w.target;
  }
  // No inline script anywhere: every <script> of every page names a file of its own.
  for (const std::string& page : kPages) {
    const std::string html = Get(page, cookie).body;
    for (std::size_t at = html.find("<script"); at != std::string::npos;
         at = html.find("<script", at + 1)) {
      EXPECT_EQ(html.compare(at, 13, "<script src=\""), 0) << page << ": " << html.substr(at, 60);
    }
  }
  EXPECT_NE(Get("/console/assets/uPlot-LICENSE.txt").body.find("MIT"), std::string::npos);
  ExpectError(Get("/console/assets/nope.js"), 404, "route_not_found");
  ExpectError(Get("/console/assets/../signin.html"), 404, "route_not_found");
  ExpectError(Get("/console/api/nope", cookie), 404, "route_not_found");
  // /console is the console's: a custom route cannot take it.
  EXPECT_NE(d_.Ctl({"route", "add", "GET", "/console/x", "hello"}).exit_code, 0);
}

// Every page is one shared head and navigation (console/web/_head.html, _nav.html) around its
// own content: exactly one of each, the page's own link marked, no slot left unfilled, and the
// fragments themselves are not served.
TEST_F(Console, EveryPageHasTheOneSharedHeadAndNavigation) {
  const std::string cookie = SignIn();
  auto count = [](const std::string& html, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = html.find(what); at != std::string::npos; at = html.find(what, at + 1)) {
      ++n;
    }
    return n;
  };
  const std::vector<std::pair<std::string, std::string>> current = {
      {"/console/", "/console/functions"},      {"/console/functions", "/console/functions"},
      {"/console/billing", "/console/billing"}, {"/console/queues", "/console/queues"},
      {"/console/cluster", "/console/cluster"}, {"/console/function?name=hello", ""}};
  for (const auto& [page, link] : current) {
    const std::string html = Get(page, cookie).body;
    EXPECT_TRUE(html.starts_with("<!doctype html>\n<html lang=\"en\">\n<head>\n")) << page;
    EXPECT_EQ(count(html, "<head>"), 1u) << page;
    EXPECT_EQ(count(html, "<title>"), 1u) << page;
    EXPECT_EQ(count(html, "<nav aria-label=\"Console\">"), 1u) << page;
    EXPECT_EQ(count(html, "class=\"skip\""), 1u) << page;
    EXPECT_EQ(count(html, "id=\"signout\""), 1u) << page;
    EXPECT_EQ(count(html, "/console/assets/common.js"), 1u) << page;
    EXPECT_EQ(count(html, "<!--faas:"), 0u) << page;
    EXPECT_EQ(count(html, "{id}"), 0u) << page;
    EXPECT_EQ(count(html, "<!--d-->"), 0u) << page;
    EXPECT_EQ(count(html, "aria-current=\"page\""), link.empty() ? 0u : 1u) << page;
    if (!link.empty()) {
      EXPECT_NE(html.find("href=\"" + link + "\" aria-current=\"page\""), std::string::npos)
          << page;
    }
    // The head comes first, then the page's own scripts: common.js before the page's.
    EXPECT_LT(html.find("common.js"), html.find("</head>")) << page;
  }
  // The function settings, one fragment in two forms: the new-function form with the defaults,
  // the deploy form (filled in with the current configuration) without.
  const std::string functions_html = Get("/console/functions", cookie).body;
  const std::string function_html = Get("/console/function?name=hello", cookie).body;
  for (const char* field : {"memory_mb", "timeout_ms", "max_instances", "min_warm", "idle_ttl_ms",
                            "isolation", "idempotent"}) {
    EXPECT_EQ(count(functions_html, std::string("id=\"new-") + field + "\""), 1u) << field;
    EXPECT_EQ(count(function_html, std::string("id=\"cfg-") + field + "\""), 1u) << field;
  }
  EXPECT_NE(functions_html.find("Memory (MiB, 16–8192; default 128)</label>"), std::string::npos);
  EXPECT_NE(function_html.find("Memory (MiB, 16–8192)</label>"), std::string::npos);
  EXPECT_NE(function_html.find(">Min warm</label>"), std::string::npos);
  for (const char* fragment :
       {"_head.html", "_nav.html", "_settings.html", "_head", "_nav", "_settings"}) {
    ExpectError(Get(std::string("/console/") + fragment, cookie), 404, "route_not_found");
  }
}

TEST_F(Console, TheApiSaysWhatTheControlApiSays) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(HttpRequest(d_.http_port(), "GET", "/function/hello").status, 200);
  }
  ASSERT_EQ(HttpRequest(d_.http_port(), "POST", "/function/echo", "hi").status, 200);
  const std::string cookie = SignIn();

  nlohmann::json fns = nlohmann::json::parse(Get("/console/api/functions", cookie).body);
  std::vector<std::string> names;
  for (const auto& f : fns["functions"]) {
    names.push_back(f["name"]);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "hello"}));

  nlohmann::json mine =
      nlohmann::json::parse(Get("/console/api/functions/hello/invocations?last=1000", cookie).body);
  nlohmann::json theirs = CtlJson({"invocations", "hello", "--last", "1000"});
  // Five invocations, and the rows the ledger may add (kind "background": CPU between them).
  ASSERT_GE(theirs["invocations"].size(), 5u);
  ASSERT_EQ(mine["invocations"].size(), theirs["invocations"].size());
  for (std::size_t i = 0; i < theirs["invocations"].size(); ++i) {
    EXPECT_EQ(mine["invocations"][i]["invocation_id"], theirs["invocations"][i]["invocation_id"]);
    EXPECT_EQ(std::stoull(mine["invocations"][i]["billed_ms"].get<std::string>()),
              theirs["invocations"][i]["billed_ms"].get<uint64_t>());
  }

  nlohmann::json bill = nlohmann::json::parse(Get("/console/api/bill?by=function", cookie).body);
  nlohmann::json ctl_bill = CtlJson({"bill", "--by", "function"});
  ASSERT_EQ(bill["rows"].size(), ctl_bill["rows"].size());
  for (std::size_t i = 0; i < bill["rows"].size(); ++i) {
    EXPECT_EQ(bill["rows"][i]["key"], ctl_bill["rows"][i]["key"]);
    EXPECT_EQ(std::stoull(bill["rows"][i]["billed_ms"].get<std::string>()),
              ctl_bill["rows"][i]["billed_ms"].get<uint64_t>());
  }
  HttpResult csv = Get("/console/api/bill.csv?by=function", cookie);
  EXPECT_EQ(csv.Header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body.rfind("function,invocations,cpu_ms,billed_ms,cost_micros,", 0), 0u)
      << csv.body;
  for (const auto& row : ctl_bill["rows"]) {
    const std::string line = row["key"].get<std::string>() + "," +
                             std::to_string(row["invocations"].get<uint64_t>()) + ",";
    EXPECT_NE(csv.body.find("\r\n" + line), std::string::npos) << line << " in " << csv.body;
  }

  // Errors keep the control API's code.
  ExpectError(Get("/console/api/functions/nope", cookie), 404, "function_not_found");
}

TEST_F(Console, UploadingALibraryMakesANewVersionAndRollbackMovesLatest) {
  Ctl0({"deploy", "hello", FunctionLib("hello"), "--memory", "64"});
  const std::string cookie = SignIn();
  const std::string csrf = Csrf(cookie);
  HttpResult up = Send("POST", "/console/api/functions/hello/versions", cookie, csrf,
                       ReadFileOrEmpty(FunctionLib("echo")));
  ASSERT_EQ(up.status, 200) << up.body;
  nlohmann::json v = nlohmann::json::parse(up.body);
  EXPECT_EQ(v["version"]["version"], 2);
  // The new version keeps the function's configuration.
  EXPECT_EQ(v["version"]["config"]["memory_mb"], "64");
  EXPECT_NE(
      HttpRequest(d_.http_port(), "POST", "/function/hello", "ping").body.find("\"body\":\"ping\""),
      std::string::npos)
      << "the uploaded library (echo) serves hello now";

  ExpectError(Send("POST", "/console/api/functions/hello/versions", cookie, csrf, "garbage"), 400,
              "invalid_artifact");

  HttpResult back = Send("POST", "/console/api/functions/hello/rollback?version=1", cookie, csrf);
  ASSERT_EQ(back.status, 200) << back.body;
  nlohmann::json versions = CtlJson({"versions", "hello"});
  for (const auto& ver : versions["versions"]) {
    EXPECT_EQ(ver["latest"].get<bool>(), ver["version"] == 1) << versions.dump();
  }
}

TEST_F(Console, CreatingAFunctionChecksItsNameAndNeverReplacesAnExistingOne) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  const std::string lib = ReadFileOrEmpty(FunctionLib("echo"));
  ASSERT_FALSE(lib.empty());
  // Attacks first: no session, no CSRF token, then names the control API refuses.
  ExpectError(HttpRequest(d_.http_port(), "POST", "/console/api/functions?name=made", lib), 401,
              "unauthorized");
  const std::string cookie = SignIn();
  const std::string csrf = Csrf(cookie);
  ExpectError(Send("POST", "/console/api/functions?name=made", cookie, "", lib), 403,
              "csrf_failed");
  for (const std::string& bad :
       {std::string(""), std::string("Made"), std::string("1made"), std::string("ma%2Fde"),
        std::string("ma..de"), std::string("m") + std::string(63, 'a')}) {
    ExpectError(Send("POST", "/console/api/functions?name=" + bad, cookie, csrf, lib), 400,
                "invalid_name");
  }
  // An existing name is refused, and its versions are untouched.
  ExpectError(Send("POST", "/console/api/functions?name=hello", cookie, csrf, lib), 409,
              "function_exists");
  EXPECT_EQ(CtlJson({"versions", "hello"})["versions"].size(), 1u);
  ExpectError(Send("POST", "/console/api/functions?name=made", cookie, csrf, ""), 400,
              "invalid_artifact");
  nlohmann::json listed = CtlJson({"list"});
  ASSERT_EQ(listed["functions"].size(), 1u) << "nothing above made a function: " << listed.dump();

  // The real thing, with settings from the form; bounds are the control API's.
  ExpectError(Send("POST", "/console/api/functions?name=made&memory_mb=1", cookie, csrf, lib), 400,
              "invalid_config");
  HttpResult made = Send("POST", "/console/api/functions?name=made&memory_mb=32&isolation=fresh",
                         cookie, csrf, lib);
  ASSERT_EQ(made.status, 200) << made.body;
  nlohmann::json v = nlohmann::json::parse(made.body);
  EXPECT_EQ(v["version"]["version"], 1);
  EXPECT_EQ(v["version"]["config"]["memory_mb"], "32");
  EXPECT_EQ(v["version"]["config"]["isolation"], "fresh");
  nlohmann::json fns = nlohmann::json::parse(Get("/console/api/functions", cookie).body);
  std::vector<std::string> names;
  for (const auto& f : fns["functions"]) {
    names.push_back(f["name"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"hello", "made"}));
  CommandResult called = d_.Ctl({"invoke", "made", "--data", "ping"});
  EXPECT_EQ(called.exit_code, 0) << called.err;
  EXPECT_NE(called.out.find("ping"), std::string::npos) << "the library (echo) serves made";
  EXPECT_NE(d_.Logs().find("console.create"), std::string::npos);
  // A second create of the same name is refused too.
  ExpectError(Send("POST", "/console/api/functions?name=made", cookie, csrf, lib), 409,
              "function_exists");
}

TEST_F(Console, QueuesShowTriggersAndDeadLettersWhichRedriveNeedsCsrfFor) {
  Ctl0({"deploy", "fail", FunctionLib("fail")});
  Ctl0({"trigger", "add", "poison", "--function", "fail", "--source", "embedded", "--queue",
        "poison", "--max-attempts", "1"});
  Ctl0({"queue", "publish", "poison", "bad"});
  const std::string cookie = SignIn();
  nlohmann::json dead;
  ASSERT_TRUE(PollUntil([&] {
    dead = nlohmann::json::parse(Get("/console/api/queues/poison.dlq/dead", cookie).body, nullptr,
                                 false);
    return dead.is_object() && dead["messages"].size() == 1;
  })) << dead.dump();
  EXPECT_EQ(dead["messages"][0]["attempts"], 1);
  nlohmann::json triggers = nlohmann::json::parse(Get("/console/api/triggers", cookie).body);
  ASSERT_EQ(triggers["triggers"].size(), 1u);
  EXPECT_EQ(triggers["triggers"][0]["trigger"]["name"], "poison");
  nlohmann::json stats = nlohmann::json::parse(Get("/console/api/queues/poison", cookie).body);
  nlohmann::json ctl_stats = CtlJson({"queue", "stats", "poison"});
  EXPECT_EQ(stats["published"], "1") << stats.dump();
  EXPECT_EQ(ctl_stats["published"], 1) << ctl_stats.dump();

  ExpectError(Send("POST", "/console/api/queues/poison.dlq/redrive", cookie, ""), 403,
              "csrf_failed");
  EXPECT_EQ(Get("/console/api/queues/poison.dlq/dead", cookie).body.find("\"messages\":[]"),
            std::string::npos)
      << "refused: still dead";
  HttpResult redrive = Send("POST", "/console/api/queues/poison.dlq/redrive", cookie, Csrf(cookie));
  ASSERT_EQ(redrive.status, 200) << redrive.body;
  EXPECT_EQ(nlohmann::json::parse(redrive.body)["replayed"], "1") << redrive.body;
  ExpectError(Send("GET", "/console/api/queues/poison.dlq/redrive", cookie, ""), 405,
              "method_not_allowed");
}

// The deploy form's settings travel as the query of the upload; each one given replaces the
// current value, and the control API's own validation decides (ValidateConfig): the console
// accepts exactly what `faasctl deploy` accepts, and says why not in the control API's words.
TEST_F(Console, TheDeployFormsSettingsAreCheckedByTheControlApi) {
  Ctl0({"deploy", "hello", FunctionLib("hello"), "--memory", "64"});
  const std::string cookie = SignIn();
  const std::string csrf = Csrf(cookie);
  const std::string lib = ReadFileOrEmpty(FunctionLib("echo"));
  auto versions = [&] { return CtlJson({"versions", "hello"})["versions"].size(); };

  // Refused, and no version made: not numbers; out of bounds (every problem named at once);
  // min_warm above max_instances; an unknown isolation; idempotent neither true nor false.
  struct Bad {
    std::string query;
    std::vector<std::string> named;
  };
  const std::vector<Bad> bad = {
      {"memory_mb=abc&timeout_ms=-5", {"memory_mb", "timeout_ms"}},
      {"memory_mb=4&timeout_ms=900001&max_instances=1001",
       {"memory_mb", "timeout", "max_instances"}},
      {"max_instances=2&min_warm=3", {"min_warm"}},
      {"isolation=hot", {"isolation"}},
      {"idempotent=yes", {"idempotent"}},
      {"memory_mb=99999999999999999999999", {"memory_mb"}},
  };
  for (const Bad& b : bad) {
    HttpResult r =
        Send("POST", "/console/api/functions/hello/versions?" + b.query, cookie, csrf, lib);
    ExpectError(r, 400, "invalid_config");
    for (const std::string& field : b.named) {
      EXPECT_NE(r.body.find(field), std::string::npos) << field << " in " << r.body;
    }
  }
  EXPECT_EQ(versions(), 1u) << "a refused deploy makes no version";
  // Without the session's CSRF token the settings change nothing either.
  ExpectError(Send("POST", "/console/api/functions/hello/versions?memory_mb=256", cookie, "", lib),
              403, "csrf_failed");
  EXPECT_EQ(versions(), 1u);

  HttpResult up = Send("POST",
                       "/console/api/functions/hello/versions?memory_mb=256&timeout_ms=2500&"
                       "max_instances=3&min_warm=1&idle_ttl_ms=60000&isolation=fresh&"
                       "idempotent=true",
                       cookie, csrf, lib);
  ASSERT_EQ(up.status, 200) << up.body;
  nlohmann::json cfg = CtlJson({"describe", "hello"});
  nlohmann::json got = nlohmann::json::parse(up.body)["version"]["config"];
  EXPECT_EQ(got["memory_mb"], "256") << up.body;
  EXPECT_EQ(got["timeout_ms"], "2500") << up.body;
  EXPECT_EQ(got["max_instances"], 3) << up.body;
  EXPECT_EQ(got["min_warm"], 1) << up.body;
  EXPECT_EQ(got["idle_ttl_ms"], "60000") << up.body;
  EXPECT_EQ(got["isolation"], "fresh") << up.body;
  EXPECT_EQ(got["idempotent"], true) << up.body;
  // The registry's latest version is that one: what faasctl describes.
  EXPECT_EQ(
      nlohmann::json::parse(Get("/console/api/functions/hello", cookie).body)["latest"]["config"],
      got);
  EXPECT_NE(cfg.dump().find("256"), std::string::npos) << cfg.dump();

  // Settings left out keep their current value.
  HttpResult again = Send("POST", "/console/api/functions/hello/versions?timeout_ms=3000", cookie,
                          csrf, ReadFileOrEmpty(FunctionLib("hello")));
  ASSERT_EQ(again.status, 200) << again.body;
  nlohmann::json kept = nlohmann::json::parse(again.body)["version"]["config"];
  EXPECT_EQ(kept["memory_mb"], "256");
  EXPECT_EQ(kept["timeout_ms"], "3000");
  EXPECT_EQ(kept["isolation"], "fresh");
}

// The Cluster page on a faasd without a cluster: the page loads and the API says not_clustered
// (what `faasctl node list` says); a drain still needs the CSRF token first.
TEST_F(Console, WithoutAClusterTheNodesApiSaysNotClustered) {
  const std::string cookie = SignIn();
  HttpResult page = Get("/console/cluster", cookie);
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("id=\"no-cluster\""), std::string::npos);
  ExpectError(Get("/console/api/nodes", cookie), 409, "not_clustered");
  ExpectError(Send("POST", "/console/api/nodes/n1/drain", cookie, ""), 403, "csrf_failed");
  ExpectError(Send("POST", "/console/api/nodes/n1/drain", cookie, Csrf(cookie)), 409,
              "not_clustered");
  EXPECT_EQ(d_.Ctl({"node", "list"}).exit_code, 1);
}

// Bills per tenant: invocations under two tenants' API keys (and one without a key, through the
// control API), summed per tenant by the console exactly as the ledger's rows sum.
class ConsoleTenants : public Console {
 protected:
  void SetUp() override {
    d_.set_public_deploys(false);
    ASSERT_TRUE(d_.Start()) << d_.Logs();
  }
  std::string NewKey(const std::string& tenant) {
    nlohmann::json j = CtlJson({"key", "create", "--tenant", tenant});
    return j.value("key", "");
  }
  void Call(const std::string& fn, const std::string& key, int times) {
    for (int i = 0; i < times; ++i) {
      HttpResult r = HttpRequest(d_.http_port(), "POST", "/function/" + fn, "x",
                                 {{"Authorization", "Bearer " + key}});
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
};

TEST_F(ConsoleTenants, BillsPerTenantMatchTheLedger) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  const std::string acme = NewKey("acme");
  const std::string globex = NewKey("globex");
  ASSERT_FALSE(acme.empty());
  ASSERT_FALSE(globex.empty());
  Call("hello", acme, 3);
  Call("echo", acme, 2);
  Call("echo", globex, 4);
  Ctl0({"invoke", "hello"});  // no tenant

  // What the ledger holds, row by row, per tenant (its writes are batched: poll until all ten
  // invocations are in).
  std::map<std::string, uint64_t> billed;
  std::map<std::string, uint64_t> invocations;
  ASSERT_TRUE(PollUntil([&] {
    billed.clear();
    invocations.clear();
    for (const std::string fn : {"hello", "echo"}) {
      // Kept in a variable: a range-for over a member of a temporary would dangle.
      const nlohmann::json rows = CtlJson({"invocations", fn, "--last", "1000"});
      for (const auto& r : rows["invocations"]) {
        const std::string tenant = r.value("tenant", "");
        billed[tenant] += r["billed_ms"].get<uint64_t>();
        if (r.value("kind", "invocation") == "invocation") {
          ++invocations[tenant];
        }
      }
    }
    return invocations["acme"] + invocations["globex"] + invocations[""] == 10;
  }));
  EXPECT_EQ(invocations["acme"], 5u);
  EXPECT_EQ(invocations["globex"], 4u);
  EXPECT_EQ(invocations[""], 1u);

  const std::string cookie = SignIn();
  HttpResult r = Get("/console/api/bill?by=tenant", cookie);
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json bill = nlohmann::json::parse(r.body);
  std::map<std::string, nlohmann::json> rows;
  for (const auto& row : bill["rows"]) {
    rows[row["key"].get<std::string>()] = row;
  }
  ASSERT_EQ(rows.size(), 3u) << r.body;
  for (const std::string tenant : {"acme", "globex", ""}) {
    ASSERT_TRUE(rows.contains(tenant)) << tenant << " in " << r.body;
    EXPECT_EQ(std::stoull(rows[tenant]["billed_ms"].get<std::string>()), billed[tenant]) << tenant;
    EXPECT_EQ(std::stoull(rows[tenant]["invocations"].get<std::string>()), invocations[tenant])
        << tenant;
  }
  // One tenant's bill for one function.
  nlohmann::json one =
      nlohmann::json::parse(Get("/console/api/bill?by=tenant&function=echo", cookie).body);
  // (A "" row may hold echo's billed CPU outside invocations: init, background.)
  std::map<std::string, std::string> echo_invocations;
  for (const auto& row : one["rows"]) {
    echo_invocations[row["key"].get<std::string>()] = row["invocations"].get<std::string>();
  }
  EXPECT_EQ(echo_invocations["acme"], "2") << one.dump();
  EXPECT_EQ(echo_invocations["globex"], "4") << one.dump();
  EXPECT_EQ(echo_invocations[""], one["rows"].size() == 3 ? "0" : "") << one.dump();
  // The CSV export has one line per tenant under a "tenant" header.
  HttpResult csv = Get("/console/api/bill.csv?by=tenant", cookie);
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("tenant,invocations,cpu_ms,billed_ms,", 0), 0u) << csv.body;
  EXPECT_NE(csv.body.find("\r\nacme,5,"), std::string::npos) << csv.body;
  EXPECT_NE(csv.body.find("\r\nglobex,4,"), std::string::npos) << csv.body;
  EXPECT_NE(csv.body.find("\r\n,1,"), std::string::npos) << csv.body;
}

// The Cluster page's API on a real cluster: one gateway and two nodes on PostgreSQL. The list is
// `faasctl node list`'s; a drain needs this session's CSRF token, and then the node is draining
// for the gateway and for faasctl.
class ConsoleCluster : public Console {
 protected:
  void SetUp() override {
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    const std::string store = pg_.Url("faas");
    ASSERT_TRUE(n1_.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1_.Logs();
    ASSERT_TRUE(n2_.Start({"--role", "node", "--store", store, "--node-id", "n2"})) << n2_.Logs();
    ASSERT_TRUE(gw_.Start({"--role", "gateway", "--store", store, "--nodes",
                           n1_.NodesEntry("n1") + "," + n2_.NodesEntry("n2")}))
        << gw_.Logs();
  }
  FaasdProcess& Target() override { return gw_; }

  nlohmann::json CtlNodes() {
    CommandResult r = gw_.Ctl({"node", "list", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
  }
  static std::map<std::string, nlohmann::json> ById(const nlohmann::json& nodes) {
    std::map<std::string, nlohmann::json> out;
    for (const auto& n : nodes["nodes"]) {
      out[n["id"].get<std::string>()] = n;
    }
    return out;
  }

  PostgresProcess pg_;
  FaasdProcess n1_, n2_, gw_;
};

TEST_F(ConsoleCluster, NodesAreListedAndADrainNeedsTheSessionsCsrfToken) {
  const std::string cookie = SignIn();
  const std::string csrf = Csrf(cookie);
  nlohmann::json mine;
  // Both nodes registered and heartbeating (their first heartbeat reports a load).
  ASSERT_TRUE(PollUntil([&] {
    mine = nlohmann::json::parse(Get("/console/api/nodes", cookie).body, nullptr, false);
    auto by = ById(mine);
    return by.size() == 2 && by["n1"]["state"] == "up" && by["n2"]["state"] == "up";
  })) << mine.dump();
  auto theirs = ById(CtlNodes());
  for (const auto& [id, n] : ById(mine)) {
    ASSERT_TRUE(theirs.contains(id)) << id;
    EXPECT_EQ(n["address"], theirs[id]["address"]) << id;
    EXPECT_EQ(n["http_address"], theirs[id]["http_address"]) << id;
    EXPECT_EQ(n["state"], theirs[id]["state"]) << id;
    EXPECT_EQ(std::stoull(n["epoch"].get<std::string>()), theirs[id]["epoch"].get<uint64_t>());
  }
  EXPECT_EQ(mine["nodes"][0]["address"].get<std::string>().empty(), false);

  // Each node's instances, as the node itself answers the gateway: the node that served hello
  // has an instance of it (warm), the other has none.
  CommandResult deployed = gw_.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err;
  HttpResult called = HttpRequest(gw_.http_port(), "GET", "/function/hello");
  ASSERT_EQ(called.status, 200) << called.body;
  const std::string served = called.Header("x-faas-node");
  const std::string idle = served == "n1" ? "n2" : "n1";
  nlohmann::json with_stats;
  ASSERT_TRUE(PollUntil([&] {
    with_stats = nlohmann::json::parse(Get("/console/api/nodes", cookie).body, nullptr, false);
    auto by = ById(with_stats);
    return by[served]["stats_known"] == true && by[served]["functions"].size() == 1;
  })) << with_stats.dump();
  auto by = ById(with_stats);
  EXPECT_EQ(by[served]["functions"][0]["function"], "hello") << with_stats.dump();
  EXPECT_EQ(by[served]["instances_idle"].get<int>() + by[served]["instances_busy"].get<int>(),
            by[served]["functions"][0]["idle"].get<int>() +
                by[served]["functions"][0]["busy"].get<int>());
  EXPECT_GE(by[served]["instances_idle"].get<int>(), 1) << with_stats.dump();
  EXPECT_EQ(by[idle]["stats_known"], true) << with_stats.dump();
  EXPECT_EQ(by[idle]["functions"].size(), 0u) << with_stats.dump();

  // Attacks: no token, a wrong one, another session's, and a GET: nothing is drained.
  const std::string other = SignIn();
  const std::string other_csrf = Csrf(other);
  ASSERT_NE(other_csrf, csrf);
  ExpectError(Send("POST", "/console/api/nodes/n1/drain", cookie, ""), 403, "csrf_failed");
  ExpectError(Send("POST", "/console/api/nodes/n1/drain", cookie, std::string(csrf.size(), 'f')),
              403, "csrf_failed");
  ExpectError(Send("POST", "/console/api/nodes/n1/drain", cookie, other_csrf), 403, "csrf_failed");
  ExpectError(Get("/console/api/nodes/n1/drain", cookie), 405, "method_not_allowed");
  EXPECT_EQ(ById(CtlNodes())["n1"]["state"], "up");

  ExpectError(Send("POST", "/console/api/nodes/nope/drain", cookie, csrf), 404, "node_not_found");
  HttpResult drained = Send("POST", "/console/api/nodes/n1/drain", cookie, csrf);
  ASSERT_EQ(drained.status, 200) << drained.body;
  EXPECT_EQ(nlohmann::json::parse(drained.body)["state"], "draining") << drained.body;
  EXPECT_EQ(ById(CtlNodes())["n1"]["state"], "draining");
  EXPECT_EQ(ById(nlohmann::json::parse(Get("/console/api/nodes", cookie).body))["n2"]["state"],
            "up");
  EXPECT_NE(gw_.Logs().find("console.drain"), std::string::npos);
}

// Two gateways on one PostgreSQL store, with no node: the console's sessions must be the
// store's, not one gateway's memory (docs/design/0026-console.md "Sessions across gateways").
// Behind a load balancer without affinity, each request may land on either gateway.
class ConsoleSharedSessions : public Console {
 protected:
  void SetUp() override {
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    const std::string store = pg_.Url("faas");
    ASSERT_TRUE(gw1_.Start({"--role", "gateway", "--store", store})) << gw1_.Logs();
    ASSERT_TRUE(gw2_.Start({"--role", "gateway", "--store", store})) << gw2_.Logs();
  }
  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- gateway 1 ----\n%s\n---- gateway 2 ----\n%s\n",
                   gw1_.Logs().c_str(), gw2_.Logs().c_str());
    }
  }
  FaasdProcess& Target() override { return *target_; }
  void On(FaasdProcess& gw) { target_ = &gw; }

  // The console_sessions table, one line per row ("" when it is empty or cannot be read).
  std::string SessionRows() {
    std::string out;
    std::string error;
    EXPECT_TRUE(pg_.Sql("faas", "SELECT * FROM console_sessions", &out, &error)) << error;
    return out;
  }

  PostgresProcess pg_;
  FaasdProcess gw1_, gw2_;
  FaasdProcess* target_ = &gw1_;
};

TEST_F(ConsoleSharedSessions, ASessionMadeOnOneGatewayWorksOnTheOther) {
  On(gw1_);
  const std::string cookie = SignIn();
  ASSERT_FALSE(cookie.empty());
  const std::string csrf = Csrf(cookie);
  On(gw2_);
  HttpResult listed = Get("/console/api/functions", cookie);
  EXPECT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(Get("/console/functions", cookie).status, 200);
  EXPECT_EQ(Csrf(cookie), csrf) << "one session, one CSRF token, whichever gateway answers";
  // A change through gateway 2 with the token gateway 1 handed out.
  ExpectError(Send("DELETE", "/console/api/functions/nope", cookie, csrf), 404,
              "function_not_found");
  // The id is kept only as its hash: the cookie's value is nowhere in the table.
  const std::string rows = SessionRows();
  EXPECT_NE(rows, "");
  EXPECT_EQ(rows.find(cookie), std::string::npos) << rows;
}

TEST_F(ConsoleSharedSessions, SignOutOnOneGatewayEndsTheSessionOnBoth) {
  On(gw1_);
  const std::string cookie = SignIn();
  const std::string csrf = Csrf(cookie);
  On(gw2_);
  ASSERT_EQ(Get("/console/api/functions", cookie).status, 200);  // gateway 2 knows it
  On(gw1_);
  HttpResult out = Send("POST", "/console/signout", cookie, csrf);
  ASSERT_EQ(out.status, 204) << out.body;
  for (FaasdProcess* gw : {&gw1_, &gw2_}) {
    On(*gw);
    ExpectError(Get("/console/api/functions", cookie), 401, "unauthorized");
    EXPECT_EQ(Get("/console/functions", cookie).status, 303);
  }
  EXPECT_EQ(SessionRows(), "") << "sign-out deletes the row";
}

TEST_F(ConsoleSharedSessions, ForgedAndAlteredCookiesAreRefusedOnBoth) {
  On(gw1_);
  const std::string cookie = SignIn();
  std::string altered = cookie;
  altered[10] = altered[10] == 'a' ? 'b' : 'a';
  for (FaasdProcess* gw : {&gw1_, &gw2_}) {
    On(*gw);
    for (const std::string& bad :
         {std::string(64, 'a'), altered, cookie.substr(1), cookie + "0", gw->AdminToken()}) {
      ExpectError(Get("/console/api/functions", bad), 401, "unauthorized");
      EXPECT_EQ(Get("/console/", bad).status, 303);
    }
  }
}

TEST_F(ConsoleSharedSessions, AnExpiredSessionIsRefusedAndSwept) {
  On(gw1_);
  const std::string cookie = SignIn();
  On(gw2_);
  ASSERT_EQ(Get("/console/api/functions", cookie).status, 200);
  // Expiry is the database's clock, one for every gateway: move this session's into the past.
  std::string error;
  ASSERT_TRUE(pg_.Sql("faas",
                      "UPDATE console_sessions SET expires_at = now() - interval '1 second'",
                      nullptr, &error))
      << error;
  for (FaasdProcess* gw : {&gw1_, &gw2_}) {
    On(*gw);
    ExpectError(Get("/console/api/functions", cookie), 401, "unauthorized");
  }
  // The next sign-in sweeps expired rows: only the new session is left.
  const std::string fresh = SignIn();
  std::string count;
  ASSERT_TRUE(pg_.Sql("faas", "SELECT count(*) FROM console_sessions", &count, &error)) << error;
  EXPECT_EQ(count.substr(0, count.find_first_of("\r\n")), "1");
  EXPECT_EQ(Get("/console/api/functions", fresh).status, 200);
}

TEST_F(ConsoleSharedSessions, OneSessionsCsrfTokenDoesNotAuthoriseAnother) {
  On(gw1_);
  const std::string a = SignIn();
  const std::string csrf_a = Csrf(a);
  On(gw2_);
  const std::string b = SignIn();
  const std::string csrf_b = Csrf(b);
  ASSERT_NE(csrf_a, csrf_b);
  for (FaasdProcess* gw : {&gw1_, &gw2_}) {
    On(*gw);
    ExpectError(Send("DELETE", "/console/api/functions/nope", b, csrf_a), 403, "csrf_failed");
    ExpectError(Send("POST", "/console/signout", b, csrf_a), 403, "csrf_failed");
    ExpectError(Send("DELETE", "/console/api/functions/nope", a, csrf_b), 403, "csrf_failed");
  }
  EXPECT_EQ(Get("/console/api/functions", a).status, 200);
  EXPECT_EQ(Get("/console/api/functions", b).status, 200);
}

TEST_F(ConsoleSharedSessions, WithoutItsStoreAGatewaySignsNobodyInAndAnswers503) {
  On(gw1_);
  const std::string cookie = SignIn();
  ASSERT_EQ(Get("/console/api/functions", cookie).status, 200);
  pg_.Stop();
  // Neither "signed out" (401, which would send the browser to sign-in) nor served: the store
  // that knows the session cannot be asked.
  HttpResult r = Get("/console/api/session", cookie);
  ExpectError(r, 503, "store_unavailable");
  EXPECT_EQ(r.body.find(cookie), std::string::npos);
  HttpResult in = PostSignIn(gw1_.AdminToken());
  ExpectError(in, 503, "store_unavailable");
  EXPECT_EQ(in.Header("set-cookie"), "");
}

}  // namespace
}  // namespace faas::testing
