// End-to-end: the web console (/console/, docs/design/0026-console.md) against a real faasd.
// The attacks come first: no session, a forged session, a wrong token at sign-in, a change
// without (or with another session's) CSRF token, and the admin token leaking into an answer or
// the log. Then the API must say what the control API says (faasctl -o json).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

class Console : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Logs(); }

  HttpResult Get(const std::string& target, const std::string& cookie = "", Headers headers = {}) {
    if (!cookie.empty()) {
      headers.emplace_back("Cookie", "faas_console=" + cookie);
    }
    return HttpRequest(d_.http_port(), "GET", target, "", headers);
  }

  HttpResult Send(const std::string& method, const std::string& target, const std::string& cookie,
                  const std::string& csrf, const std::string& body = "") {
    Headers h = {{"Cookie", "faas_console=" + cookie}};
    if (!csrf.empty()) {
      h.emplace_back("X-Faas-Csrf", csrf);
    }
    return HttpRequest(d_.http_port(), method, target, body, h);
  }

  HttpResult PostSignIn(const std::string& token, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    return HttpRequest(d_.http_port(), "POST", "/console/signin", "token=" + token, headers);
  }

  // Signs in with the admin token; the session cookie's value ("" on failure).
  std::string SignIn() {
    HttpResult r = PostSignIn(d_.AdminToken());
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

const std::vector<std::string> kPages = {"/console/", "/console/functions",
                                         "/console/function?name=hello", "/console/billing",
                                         "/console/queues"};
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
                                       "/console/api/queues/jobs/dead"};

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

}  // namespace
}  // namespace faas::testing
