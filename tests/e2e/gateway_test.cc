// End-to-end: the gateway's edge (issue #6): API keys, rate limits, the admin token, trace
// context, the access log, async invocations with callbacks, and hostile HTTP sent as raw bytes.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "e2e/http_sink.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of the first sample of `name` whose labels contain `labels`, or -1.
double Metric(const std::string& text, const std::string& name, const std::string& labels = "") {
  std::size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    std::size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol - pos);
    pos = eol;
    if (line.size() > name.size() && (line[name.size()] == '{' || line[name.size()] == ' ') &&
        line.find(labels) != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

class Gateway : public FaasdTest {
 protected:
  void SetUp() override {
    d_.set_public_deploys(false);
    ASSERT_TRUE(d_.Start(extra_args_)) << d_.Logs();
    Ctl0({"deploy", "echo", FunctionLib("echo")});
    Ctl0({"deploy", "hello", FunctionLib("hello")});
  }
  // Creates a key and returns the whole key string.
  std::string NewKey(const std::vector<std::string>& flags, std::string* id = nullptr) {
    std::vector<std::string> args = {"key", "create", "-o", "json"};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult r = d_.Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    if (!j.is_object()) {
      return "";
    }
    if (id != nullptr) {
      *id = j.value("id", "");
    }
    return j.value("key", "");
  }
  HttpResult Call(const std::string& method, const std::string& target, const std::string& key,
                  const std::string& body = "", Headers headers = {}) {
    if (!key.empty()) {
      headers.emplace_back("Authorization", "Bearer " + key);
    }
    return HttpRequest(d_.http_port(), method, target, body, headers);
  }
  std::string Metrics() { return HttpRequest(d_.http_port(), "GET", "/metrics").body; }

  std::vector<std::string> extra_args_;
};

TEST_F(Gateway, PrivateFunctionsNeedAValidKeyBeforeAnySchedulingWork) {
  std::string key = NewKey({"--tenant", "acme"});
  ASSERT_FALSE(key.empty());
  std::string revoked_id;
  std::string revoked = NewKey({"--tenant", "acme"}, &revoked_id);
  Ctl0({"key", "revoke", revoked_id});
  std::string scoped = NewKey({"--tenant", "other", "--functions", "hello"});

  std::string before = Metrics();
  // Missing, malformed, wrong secret, revoked, out of scope: all 401, with a JSON body.
  HttpResult missing = Call("POST", "/function/echo", "");
  ExpectError(missing, 401, "unauthorized");
  EXPECT_EQ(missing.Header("www-authenticate"), "Bearer");
  ExpectError(Call("POST", "/function/echo", "", "", {{"Authorization", "Basic Zm9vOmJhcg=="}}),
              401, "unauthorized");
  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  ExpectError(Call("POST", "/function/echo", wrong), 401, "unauthorized");
  ExpectError(Call("POST", "/function/echo", "faas_nonsense"), 401, "unauthorized");
  ExpectError(Call("POST", "/function/echo", revoked), 401, "unauthorized");
  ExpectError(Call("POST", "/function/echo", scoped), 401, "unauthorized");
  // Without a key a missing function looks like a private one.
  ExpectError(Call("POST", "/function/nope", ""), 401, "unauthorized");
  std::string after = Metrics();
  // No invocation was scheduled for any of them; every refusal was counted.
  EXPECT_EQ(Metric(before, "faas_invocations_total", "function=\"echo\""),
            Metric(after, "faas_invocations_total", "function=\"echo\""));
  EXPECT_EQ(
      Metric(after, "faas_http_rejections_total", "reason=\"unauthorized\"") -
          std::max(0.0, Metric(before, "faas_http_rejections_total", "reason=\"unauthorized\"")),
      7);

  // A good key works, the function never sees it, and the tenant is recorded.
  HttpResult ok = Call("POST", "/function/echo", key, "hi");
  ASSERT_EQ(ok.status, 200) << ok.body;
  Json echo = Json::parse(ok.body);
  EXPECT_FALSE(echo["headers"].contains("authorization")) << ok.body;
  EXPECT_EQ(Call("GET", "/function/hello", scoped).status, 200);
  ExpectError(Call("POST", "/function/nope", key), 404, "function_not_found");
  EXPECT_EQ(Metric(Metrics(), "faas_tenant_invocations_total", "tenant=\"acme\",function=\"echo\""),
            1);
  CommandResult inv = d_.Ctl({"invocations", "echo", "-o", "json"});
  ASSERT_EQ(inv.exit_code, 0) << inv.err;
  EXPECT_NE(inv.out.find("\"acme\""), std::string::npos) << inv.out;
  CommandResult bill = d_.Ctl({"bill", "--by", "tenant", "-o", "json"});
  EXPECT_EQ(bill.exit_code, 0) << bill.out << bill.err;
  EXPECT_NE(bill.out.find("acme"), std::string::npos) << bill.out;

  // Revoking takes effect at once.
  std::string id;
  std::string soon_revoked = NewKey({"--tenant", "acme"}, &id);
  EXPECT_EQ(Call("POST", "/function/echo", soon_revoked).status, 200);
  Ctl0({"key", "revoke", id});
  ExpectError(Call("POST", "/function/echo", soon_revoked), 401, "unauthorized");

  // Keys are listed without secrets.
  CommandResult list = d_.Ctl({"key", "list", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  // The secret follows "faas_<12 hex id>_"; base64url may itself contain '_'.
  const std::string secret = key.substr(std::string("faas_").size() + 12 + 1);
  ASSERT_EQ(secret.size(), 43u) << key;
  EXPECT_EQ(list.out.find(secret), std::string::npos) << list.out;
}

TEST_F(Gateway, PublicFunctionsNeedNoKey) {
  Ctl0({"deploy", "open", FunctionLib("hello"), "--public"});
  EXPECT_EQ(Call("GET", "/function/open", "").status, 200);
}

TEST_F(Gateway, RateLimitsAnswer429WithRetryAfter) {
  std::string key = NewKey({"--tenant", "acme", "--rate", "1/s", "--burst", "3"});
  int ok = 0;
  HttpResult limited;
  for (int i = 0; i < 10 && limited.status == 0; ++i) {
    HttpResult r = Call("GET", "/function/hello", key);
    if (r.status == 200) {
      ++ok;
    } else {
      limited = r;
    }
  }
  // The burst of 3 passes (a 4th token may refill if the machine is slow), then 429.
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 4);
  ExpectError(limited, 429, "rate_limited");
  EXPECT_GE(std::stoi(limited.Header("retry-after")), 1);

  // Per function: over all callers.
  Ctl0({"deploy", "limited", FunctionLib("hello"), "--public", "--rate", "1/s", "--burst", "2"});
  int fn_ok = 0;
  HttpResult fn_limited;
  for (int i = 0; i < 10 && fn_limited.status == 0; ++i) {
    HttpResult r = Call("GET", "/function/limited", "");
    if (r.status == 200) {
      ++fn_ok;
    } else {
      fn_limited = r;
    }
  }
  EXPECT_GE(fn_ok, 2);
  EXPECT_LE(fn_ok, 3);
  ExpectError(fn_limited, 429, "rate_limited");
  EXPECT_GT(Metric(Metrics(), "faas_http_rejections_total", "reason=\"rate_limited\""), 1);
}

TEST_F(Gateway, TheControlApiNeedsTheAdminToken) {
  CommandResult none = d_.CtlRaw({"list"});
  EXPECT_EQ(none.exit_code, 1) << none.out << none.err;
  EXPECT_NE(none.err.find("admin token"), std::string::npos) << none.err;
  CommandResult wrong = d_.CtlRaw({"--token", "not-the-token-at-all", "list"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  CommandResult keys = d_.CtlRaw({"key", "create", "--tenant", "evil"});
  EXPECT_EQ(keys.exit_code, 1) << keys.out << keys.err;
  EXPECT_EQ(d_.CtlRaw({"version"}).exit_code, 0);  // harmless, and useful to check connectivity
}

TEST_F(Gateway, TraceContextIsContinuedOrStartedAndLogged) {
  std::string key = NewKey({"--tenant", "acme"});
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  HttpResult r = Call("POST", "/function/echo", key, "",
                      {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string seen = Json::parse(r.body)["headers"].value("traceparent", "");
  EXPECT_TRUE(std::regex_match(seen, std::regex("00-" + trace + "-[0-9a-f]{16}-01"))) << seen;
  EXPECT_EQ(seen.find("00f067aa0ba902b7"), std::string::npos) << "the parent id must be ours";
  EXPECT_EQ(r.Header("x-faas-trace-id"), trace);

  HttpResult fresh = Call("POST", "/function/echo", key, "", {{"traceparent", "garbage"}});
  std::string started = Json::parse(fresh.body)["headers"].value("traceparent", "");
  EXPECT_TRUE(std::regex_match(started, std::regex("00-[0-9a-f]{32}-[0-9a-f]{16}-00"))) << started;
  EXPECT_EQ(started.substr(3, 32), fresh.Header("x-faas-trace-id"));

  // One access-log line per request, with the fields operators need.
  std::string inv = r.Header("x-invocation-id");
  std::string logs;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline;) {
    logs = d_.Logs();
    if (logs.find("inv=" + inv) != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the log file
  }
  std::size_t at = logs.find("inv=" + inv);
  ASSERT_NE(at, std::string::npos) << logs;
  std::string line =
      logs.substr(logs.rfind('\n', at) + 1, logs.find('\n', at) - logs.rfind('\n', at));
  for (const char* field : {"request", "method=POST", "route=/function/{name}", "fn=echo",
                            "status=200", "tenant=acme", "cold=", "ms=", "trace="}) {
    EXPECT_NE(line.find(field), std::string::npos) << field << " missing in: " << line;
  }
}

// Polls GET /invocations/{id} until it is final; returns its JSON.
Json AwaitAsync(int port, const std::string& id, const std::string& key,
                std::chrono::seconds timeout = std::chrono::seconds(30)) {
  Json j;
  for (auto deadline = std::chrono::steady_clock::now() + timeout;
       std::chrono::steady_clock::now() < deadline;) {
    HttpResult r =
        HttpRequest(port, "GET", "/invocations/" + id, "", {{"Authorization", "Bearer " + key}});
    if (r.status != 200) {
      return Json{{"http_status", r.status}, {"body", r.body}};
    }
    j = Json::parse(r.body);
    if (j["status"] == "succeeded" || j["status"] == "failed") {
      return j;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return j;
}

TEST_F(Gateway, AsyncInvocationsRunAndKeepTheirResult) {
  std::string key = NewKey({"--tenant", "acme"});
  std::string other = NewKey({"--tenant", "other"});
  HttpResult accepted = Call("POST", "/async-function/echo/sub?x=1", key, "payload");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  Json a = Json::parse(accepted.body);
  std::string id = a["invocation_id"];
  EXPECT_EQ(accepted.Header("location"), "/invocations/" + id);
  Json done = AwaitAsync(d_.http_port(), id, key);
  ASSERT_EQ(done["status"], "succeeded") << done.dump();
  EXPECT_EQ(done["attempts"], 1);
  EXPECT_EQ(done["result"]["status"], 200);
  Json echo = Json::parse(done["result"]["body"].get<std::string>());
  EXPECT_EQ(echo["trigger"], "async");
  EXPECT_EQ(echo["body"], "payload");
  EXPECT_EQ(echo["path"], "/sub");
  EXPECT_EQ(echo["query"], "x=1");
  EXPECT_EQ(echo["invocation_id"], id);
  EXPECT_EQ(echo["attempt"], 1);

  // Another tenant cannot see it; without a key: 401; unknown id: 404.
  ExpectError(Call("GET", "/invocations/" + id, other), 404, "invocation_not_found");
  ExpectError(Call("GET", "/invocations/" + id, ""), 401, "unauthorized");
  ExpectError(Call("GET", "/invocations/00000000000000000000000000", key), 404,
              "invocation_not_found");
  // Edge checks apply to async too.
  ExpectError(Call("POST", "/async-function/echo", ""), 401, "unauthorized");
  ExpectError(Call("GET", "/async-function/echo", key), 405, "method_not_allowed");
  for (const char* bad : {"ftp://x", "https://h/x", "http://", "http://user@h/x", "http://h:0/",
                          "http://h:99999/", "http://h/a b", "http://[::1/x"}) {
    ExpectError(Call("POST", "/async-function/echo", key, "", {{"X-Callback-Url", bad}}), 400,
                "invalid_callback_url");
  }

  // A failing function ends "failed" after its retries, with the error.
  Ctl0({"deploy", "fail", FunctionLib("fail")});
  HttpResult f = Call("POST", "/async-function/fail", key);
  ASSERT_EQ(f.status, 202);
  Json failed = AwaitAsync(d_.http_port(), Json::parse(f.body)["invocation_id"], key,
                           std::chrono::seconds(60));
  EXPECT_EQ(failed["status"], "failed") << failed.dump();
  EXPECT_EQ(failed["attempts"], 3) << failed.dump();
  EXPECT_EQ(failed["error"]["code"], "function_error") << failed.dump();

  // faasctl invoke --async queues too.
  CommandResult cli = d_.Ctl({"invoke", "echo", "--async", "--data", "x", "-o", "json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  std::string cli_id = Json::parse(cli.out)["invocation_id"];
  EXPECT_EQ(AwaitAsync(d_.http_port(), cli_id, key)["http_status"], 404)
      << "queued by the admin: no tenant, so an API key of acme must not see it";
  // The admin reads it with faasctl.
  Json seen;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       std::chrono::steady_clock::now() < deadline;) {
    CommandResult st = d_.Ctl({"invocation", cli_id, "-o", "json"});
    ASSERT_EQ(st.exit_code, 0) << st.out << st.err;
    seen = Json::parse(st.out);
    if (seen["status"] == "succeeded") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(seen["status"], "succeeded") << seen.dump();
  CommandResult unknown = d_.Ctl({"invocation", "00000000000000000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no async invocation"), std::string::npos) << unknown.err;
}

// A callback receiver whose first answer is a 500, so that the retry is exercised too; then 204.
std::string FailOnceThen204(int n) {
  return n == 1 ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                : "HTTP/1.1 204 No Content\r\n\r\n";
}

// The e2e callback receivers listen on 127.0.0.1, which faasd refuses unless allowed.
class GatewayCallbacksAllowed : public Gateway {
 protected:
  GatewayCallbacksAllowed() { extra_args_ = {"--callback-allow", "127.0.0.0/8"}; }
};

// A non-loopback IPv4 address of this host ("" when it has none).
std::string OwnAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return "";
  }
  std::string out;
  for (ifaddrs* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET) {
      char buf[INET_ADDRSTRLEN];
      const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (ntohl(a->sin_addr.s_addr) >> 24 != 127 &&
          ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf) != nullptr) {
        out = buf;
      }
    }
  }
  ::freeifaddrs(list);
  return out;
}

// SSRF (issue #13): faasd runs as root on the host network, so a callback URL must not make it
// POST to the host's loopback, its own addresses, cloud metadata or private ranges, however the
// address is spelt.
TEST_F(Gateway, CallbacksToInternalAddressesAreRefusedAtAccept) {
  std::string key = NewKey({"--tenant", "acme"});
  HttpSink sink(FailOnceThen204);
  const std::string port = std::to_string(sink.port());
  std::vector<std::string> hosts = {"127.0.0.1",
                                    "localhost",
                                    "0x7f000001",
                                    "2130706433",
                                    "0177.0.0.1",
                                    "127.1",
                                    "[::ffff:127.0.0.1]",
                                    "[::ffff:7f00:1]",
                                    "[::1]",
                                    "0.0.0.0",
                                    "0",
                                    "[::]",
                                    "169.254.169.254",
                                    "[fe80::1]",
                                    "10.1.2.3",
                                    "172.16.0.1",
                                    "192.168.1.1",
                                    "100.64.0.1",
                                    "[fd00::1]",
                                    "224.0.0.1",
                                    "255.255.255.255",
                                    "[ff02::1]",
                                    "[::ffff:169.254.169.254]"};
  if (std::string own = OwnAddress(); !own.empty()) {
    hosts.push_back(own);
  }
  for (const std::string& host : hosts) {
    HttpResult r = Call("POST", "/async-function/echo", key, "",
                        {{"X-Callback-Url", "http://" + host + ":" + port + "/hook"}});
    SCOPED_TRACE(host);
    ExpectError(r, 400, "invalid_callback");
  }
  EXPECT_EQ(sink.calls(), 0);
}

TEST_F(GatewayCallbacksAllowed, AnAllowedRangeAdmitsOnlyItself) {
  std::string key = NewKey({"--tenant", "acme"});
  for (const char* host : {"127.0.0.1", "0x7f000001", "[::ffff:127.0.0.1]"}) {
    HttpResult r = Call("POST", "/async-function/echo", key, "",
                        {{"X-Callback-Url", std::string("http://") + host + ":9/hook"}});
    EXPECT_EQ(r.status, 202) << host << ": " << r.body;
  }
  for (const char* host : {"[::1]", "169.254.169.254", "10.0.0.1"}) {
    ExpectError(Call("POST", "/async-function/echo", key, "",
                     {{"X-Callback-Url", std::string("http://") + host + "/hook"}}),
                400, "invalid_callback");
  }
}

TEST_F(GatewayCallbacksAllowed, AsyncCallbacksAreRetriedUntilDelivered) {
  std::string key = NewKey({"--tenant", "acme"});
  HttpSink sink(FailOnceThen204);
  HttpResult accepted =
      Call("POST", "/async-function/echo", key, "cb",
           {{"X-Callback-Url", "http://127.0.0.1:" + std::to_string(sink.port()) + "/hook"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  std::string id = Json::parse(accepted.body)["invocation_id"];
  std::string req = sink.AwaitNth(2, std::chrono::seconds(30));
  ASSERT_FALSE(req.empty()) << "no callback arrived";
  EXPECT_TRUE(req.starts_with("POST /hook HTTP/1.1")) << req;
  Json body = Json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["invocation_id"], id);
  EXPECT_EQ(body["status"], "succeeded");
  Json done;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline;) {
    done = AwaitAsync(d_.http_port(), id, key);
    if (done["callback"]["status"] == "delivered") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(done["callback"]["status"], "delivered") << done.dump();
  EXPECT_EQ(sink.calls(), 2);
}

TEST(GatewayRestart, AnAcceptedAsyncInvocationSurvivesKill9) {
  FaasdProcess d;
  d.set_public_deploys(true);
  ASSERT_TRUE(d.Start({"--async-concurrency", "1"})) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "sleep", FunctionLib("sleep")}).exit_code, 0);
  ASSERT_EQ(d.Ctl({"deploy", "echo", FunctionLib("echo")}).exit_code, 0);
  // With one async slot busy sleeping, the echo invocation is accepted but not yet run.
  HttpResult busy = HttpRequest(d.http_port(), "POST", "/async-function/sleep?ms=3000");
  ASSERT_EQ(busy.status, 202) << busy.body;
  HttpResult waiting = HttpRequest(d.http_port(), "POST", "/async-function/echo", "kept");
  ASSERT_EQ(waiting.status, 202) << waiting.body;
  std::string busy_id = Json::parse(busy.body)["invocation_id"];
  std::string id = Json::parse(waiting.body)["invocation_id"];
  HttpResult before = HttpRequest(d.http_port(), "GET", "/invocations/" + id);
  EXPECT_EQ(Json::parse(before.body)["status"], "queued") << before.body;
  d.Kill9();

  ASSERT_TRUE(d.Start({"--async-concurrency", "1"})) << d.Logs();
  Json done = AwaitAsync(d.http_port(), id, "");
  EXPECT_EQ(done["status"], "succeeded") << done.dump() << d.Logs();
  EXPECT_EQ(Json::parse(done["result"]["body"].get<std::string>())["body"], "kept");
  // The one that was running when faasd died runs again (at least once).
  Json rerun = AwaitAsync(d.http_port(), busy_id, "");
  EXPECT_EQ(rerun["status"], "succeeded") << rerun.dump();
}

// The address is checked again when the callback is delivered (and only the checked address is
// connected to): accepted under one policy, a callback is not delivered under a stricter one.
TEST(GatewayRestart, ACallbackIsCheckedAgainWhenItIsDelivered) {
  HttpSink sink(FailOnceThen204);
  FaasdProcess d;
  d.set_public_deploys(true);
  ASSERT_TRUE(d.Start({"--callback-allow", "127.0.0.0/8"})) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "sleep", FunctionLib("sleep")}).exit_code, 0);
  HttpResult accepted =
      HttpRequest(d.http_port(), "POST", "/async-function/sleep?ms=1000", "",
                  {{"X-Callback-Url", "http://127.0.0.1:" + std::to_string(sink.port()) + "/"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  d.Kill9();  // before the invocation (1 s) is done and its callback is sent

  ASSERT_TRUE(d.Start()) << d.Logs();  // no --callback-allow now
  std::string id = Json::parse(accepted.body)["invocation_id"];
  EXPECT_EQ(AwaitAsync(d.http_port(), id, "")["status"], "succeeded");
  bool refused = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       !refused && std::chrono::steady_clock::now() < deadline;) {
    std::string logs = d.Logs();
    refused =
        logs.find("async.callback inv=" + id) != std::string::npos &&
        logs.find("delivered=false", logs.find("async.callback inv=" + id)) != std::string::npos &&
        logs.find("loopback") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(refused) << d.Logs();
  EXPECT_EQ(sink.calls(), 0) << "the callback reached a loopback address after the restart";
}

// --- hostile HTTP as raw bytes ---

class RawHttp : public Gateway {
 protected:
  RawHttp() { extra_args_ = {"--http-read-timeout", "500ms", "--max-connections-per-ip", "20"}; }
  HttpResult Raw(const std::string& bytes) {
    HttpConnection c("127.0.0.1", d_.http_port());
    return c.Raw(bytes, std::chrono::seconds(10));
  }
};

TEST_F(RawHttp, OversizedHeadersAndTargetsAreRefused) {
  ExpectError(Raw("GET /function/hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') +
                  "\r\n\r\n"),
              431, "header_too_large");
  HttpResult long_target =
      Raw("GET /function/hello?" + std::string(12000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(long_target.status == 414 || long_target.status == 431) << long_target.status;
}

TEST_F(RawHttp, BodiesOverTheLimitAreRefusedBeforeTheyAreRead) {
  // Only the headers are sent: the 413 must come without the body.
  ExpectError(Raw("POST /function/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"),
              413, "payload_too_large");
}

TEST_F(RawHttp, SmugglingShapesAreRejected) {
  ExpectError(Raw("POST /function/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
              400, "bad_request");
  ExpectError(Raw("POST /function/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  "Content-Length: 4\r\n\r\nabcd"),
              400, "bad_request");
}

TEST_F(RawHttp, SlowClientsGet408) {
  HttpConnection c("127.0.0.1", d_.http_port());
  auto t0 = std::chrono::steady_clock::now();
  HttpResult r =
      c.Raw("GET /function/hello HTTP/1.1\r\nHost: x\r\nX-Slow: ", std::chrono::seconds(10));
  auto took = std::chrono::steady_clock::now() - t0;
  ExpectError(r, 408, "request_timeout");
  EXPECT_LT(took, std::chrono::seconds(5));
  HttpConnection b("127.0.0.1", d_.http_port());
  ExpectError(b.Raw("POST /function/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
                    std::chrono::seconds(10)),
              408, "request_timeout");
}

TEST_F(RawHttp, PlatformHeadersCannotBeSpoofed) {
  std::string key = NewKey({"--tenant", "acme"});
  HttpResult r = Raw("POST /function/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
                     "\r\nX-Faas-Cold-Start: forged\r\nX-Invocation-Id: forged\r\n"
                     "X-Faas-Param-Id: forged\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, 200) << r.body;
  Json echo = Json::parse(r.body);
  for (const auto& [k, v] : echo["headers"].items()) {
    EXPECT_FALSE(k.starts_with("x-faas-")) << k;
  }
  EXPECT_NE(r.Header("x-invocation-id"), "forged");
  EXPECT_TRUE(r.Header("x-faas-cold-start") == "true" || r.Header("x-faas-cold-start") == "false");
}

class ConnectionCap : public Gateway {
 protected:
  ConnectionCap() { extra_args_ = {"--max-connections-per-ip", "20"}; }
};

TEST_F(ConnectionCap, OneClientCannotHoldEveryConnection) {
  std::vector<std::unique_ptr<HttpConnection>> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<HttpConnection>("127.0.0.1", d_.http_port()));
    ASSERT_TRUE(held.back()->Connected());
  }
  // The 20 connections are accepted before the next is counted; poll until the cap answers.
  HttpResult r;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline && r.status != 429;) {
    HttpConnection extra("127.0.0.1", d_.http_port());
    r = extra.Raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::seconds(5));
  }
  ExpectError(r, 429, "rate_limited");
  EXPECT_GE(std::stoi(r.Header("retry-after")), 1);
  held.clear();
  // The server learns of the 20 closes asynchronously: until it has, /metrics is over the cap too.
  HttpResult m;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline && m.status != 200;) {
    m = HttpRequest(d_.http_port(), "GET", "/metrics");
  }
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_GT(Metric(m.body, "faas_http_rejections_total", "reason=\"connections_per_ip\""), 0);
}

}  // namespace
}  // namespace faas::testing
