// End-to-end: faasctl commands that were tested only against a fake control service, now against
// a real faasd (issue #15 item 9): prewarm, trigger pause/resume, invoke --fresh / --method /
// --path / --query / --async --callback-url, bill --since/--until, and logs --follow.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "e2e/http_sink.h"
#include "faasd_process.h"
#include "http_client.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `ms` (Unix ms) as 2026-11-29T13:00:00.250 shifted by `offset_min` with that offset written
// out (+HH:MM), or with Z when offset_min is 0.
std::string FormatTime(int64_t ms, int offset_min) {
  std::time_t secs = static_cast<std::time_t>((ms + int64_t{offset_min} * 60'000) / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  std::string out = buf;
  if (offset_min == 0) {
    return out + "Z";
  }
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_min < 0 ? '-' : '+',
                std::abs(offset_min) / 60, std::abs(offset_min) % 60);
  return out + buf;
}

// A child process whose stdout is read while it runs (faasctl logs --follow); killed by its PID
// when the object goes.
class StreamingProcess {
 public:
  explicit StreamingProcess(const std::vector<std::string>& argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      return;
    }
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      ::dup2(devnull, 0);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
  }
  ~StreamingProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  // Reads until `text` is in the output or the deadline passes; returns whether it is.
  bool AwaitOutput(const std::string& text, seconds timeout = seconds(30)) {
    auto deadline = steady_clock::now() + timeout;
    while (out_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
      if (left <= 0 || fd_ < 0) {
        return false;
      }
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
        continue;
      }
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        ::close(fd_);
        fd_ = -1;
        return out_.find(text) != std::string::npos;
      }
      out_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  // Whether the process is still running (it has not exited).
  bool Running() {
    if (pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  const std::string& out() const { return out_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string out_;
};

class CliE2E : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start(extra_args_)) << d_.Logs(); }
  std::string Metrics() { return HttpRequest(d_.http_port(), "GET", "/metrics").body; }

  std::vector<std::string> extra_args_;
};

TEST_F(CliE2E, PrewarmStartsIdleInstancesThatServeWarm) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  CommandResult r = d_.Ctl({"prewarm", "hello", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "started 3 instances of hello (3 idle)\n");
  Json desc = CtlJson({"describe", "hello"});
  EXPECT_EQ(desc["instances_idle"], 3) << desc.dump();
  EXPECT_NE(Metrics().find("faas_instances{function=\"hello\",state=\"idle\"} 3\n"),
            std::string::npos);
  // The first request finds a prewarmed instance: no cold start, and none in the counter.
  HttpResult first = HttpRequest(d_.http_port(), "GET", "/function/hello");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("x-faas-cold-start"), "false");
  EXPECT_EQ(Metrics().find("faas_coldstarts_total{function=\"hello\"} 1"), std::string::npos);

  Json more = CtlJson({"prewarm", "hello", "2"});
  EXPECT_EQ(more["started"], 2) << more.dump();
  EXPECT_EQ(more["idle"], 5) << more.dump();

  CommandResult missing = d_.Ctl({"prewarm", "nope", "1"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("function_not_found"), std::string::npos) << missing.err;
  EXPECT_EQ(d_.Ctl({"prewarm", "hello", "0"}).exit_code, 2);
  EXPECT_EQ(d_.Ctl({"prewarm", "hello", "1001"}).exit_code, 2);
}

TEST_F(CliE2E, TriggerPauseStopsDeliveriesAndResumeStartsThemAgain) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  Ctl0({"trigger", "add", "jobs", "--function", "echo", "--source", "embedded", "--queue", "jobs"});
  Ctl0({"trigger", "add", "probe", "--function", "echo", "--source", "embedded", "--queue",
        "probe"});
  CommandResult paused = d_.Ctl({"trigger", "pause", "jobs"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, "paused trigger jobs: paused\n");
  Json list = CtlJson({"trigger", "list"});
  bool found = false;
  for (const Json& t : list["triggers"]) {
    if (t["name"] == "jobs") {
      found = true;
      EXPECT_EQ(t["state"], "paused") << t.dump();
    }
  }
  EXPECT_TRUE(found) << list.dump();
  for (int i = 0; i < 3; ++i) {
    Ctl0({"queue", "publish", "jobs", "held-" + std::to_string(i)});
  }
  // A running trigger on the same faasd delivers its message; the paused one meanwhile delivers
  // nothing (both poll their queues the same way, so this is time enough for a leak to show).
  Ctl0({"queue", "publish", "probe", "go"});
  ASSERT_TRUE(PollUntil([&] { return CtlJson({"queue", "stats", "probe"})["acked"] == 1; }));
  Json held = CtlJson({"queue", "stats", "jobs"});
  EXPECT_EQ(held["acked"], 0) << held.dump();
  EXPECT_EQ(held["ready"], 3) << held.dump();

  CommandResult resumed = d_.Ctl({"trigger", "resume", "jobs"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, "resumed trigger jobs: running\n");
  Json st;
  EXPECT_TRUE(PollUntil([&] {
    st = CtlJson({"queue", "stats", "jobs"});
    return st["acked"] == 3;
  })) << st.dump();
  CommandResult unknown = d_.Ctl({"trigger", "pause", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("trigger_not_found"), std::string::npos) << unknown.err;
}

TEST_F(CliE2E, InvokePassesMethodPathAndQueryToTheFunction) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  CommandResult r = d_.Ctl({"invoke", "echo", "--method", "PUT", "--path", "/a/b", "--query",
                            "x=1&y=2", "--data", "payload"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["method"], "PUT") << r.out;
  EXPECT_EQ(j["path"], "/a/b") << r.out;
  EXPECT_EQ(j["query"], "x=1&y=2") << r.out;
  EXPECT_EQ(j["body"], "payload") << r.out;
  // Without the flags: POST to "/".
  Json plain = Json::parse(d_.Ctl({"invoke", "echo"}).out);
  EXPECT_EQ(plain["path"], "/") << plain.dump();
}

TEST_F(CliE2E, InvokeFreshIsAColdStartOnAnInstanceThatIsThenDiscarded) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  Json warmup = CtlJson({"invoke", "hello"});
  ASSERT_EQ(warmup["status"], 200) << warmup.dump();
  ASSERT_EQ(CtlJson({"describe", "hello"})["instances_idle"], 1);
  for (int i = 0; i < 2; ++i) {
    Json fresh = CtlJson({"invoke", "hello", "--fresh"});
    EXPECT_EQ(fresh["status"], 200) << fresh.dump();
    EXPECT_EQ(fresh["cold_start"], true)
        << "an idle instance was there, yet --fresh must not use it";
  }
  // The fresh instances were discarded: still the one idle instance, and it serves warm.
  EXPECT_EQ(CtlJson({"describe", "hello"})["instances_idle"], 1);
  EXPECT_EQ(CtlJson({"invoke", "hello"})["cold_start"], false);
  EXPECT_NE(Metrics().find("faas_coldstarts_total{function=\"hello\"} 3\n"), std::string::npos);
}

TEST_F(CliE2E, InvokeAsyncPrintsTheIdAndACallbackUrlIsCheckedByFaasd) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  // Refused by faasd (not faasctl): the host is private and not allowed.
  CommandResult refused =
      d_.Ctl({"invoke", "echo", "--async", "--callback-url", "http://10.1.2.3:9/hook"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("invalid_argument"), std::string::npos) << refused.err;
  CommandResult loopback =
      d_.Ctl({"invoke", "echo", "--async", "--callback-url", "http://127.0.0.1:9/hook"});
  EXPECT_EQ(loopback.exit_code, 1) << loopback.out << loopback.err;
  EXPECT_EQ(d_.Ctl({"invoke", "echo", "--callback-url", "http://example.com/hook"}).exit_code, 2)
      << "--callback-url without --async";
}

class CliE2ECallbacks : public CliE2E {
 protected:
  CliE2ECallbacks() { extra_args_ = {"--callback-allow", "127.0.0.0/8"}; }
};

TEST_F(CliE2ECallbacks, InvokeAsyncWithACallbackUrlDeliversTheResultThere) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  HttpSink sink;
  CommandResult r =
      d_.Ctl({"invoke", "echo", "--async", "--data", "from-cli", "--callback-url",
              "http://127.0.0.1:" + std::to_string(sink.port()) + "/done", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = Json::parse(r.out)["invocation_id"];
  ASSERT_EQ(id.size(), 26u) << r.out;
  // The final result arrives. (faasd may POST an earlier one with "status":"running": it queues
  // the callback before it stores the result, gateway.cc RunAsync; reported, not fixed here.)
  std::string req = sink.AwaitContaining("\"status\":\"succeeded\"", seconds(30));
  ASSERT_FALSE(req.empty()) << "no callback with the final result arrived";
  EXPECT_TRUE(req.starts_with("POST /done HTTP/1.1")) << req;
  Json body = Json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["invocation_id"], id);
  EXPECT_EQ(body["status"], "succeeded") << body.dump();
  EXPECT_NE(body["result"]["body"].get<std::string>().find("from-cli"), std::string::npos)
      << body.dump();
  // faasctl invocation ID reads the same record.
  Json stored = CtlJson({"invocation", id});
  EXPECT_EQ(stored["invocation_id"], id);
  EXPECT_EQ(stored["callback"]["url"], "http://127.0.0.1:" + std::to_string(sink.port()) + "/done");
}

TEST_F(CliE2E, BillSinceAndUntilSplitInvocationsAtAnInstant) {
  Ctl0({"deploy", "hello", FunctionLib("hello")});
  auto call = [&] { ASSERT_EQ(HttpRequest(d_.http_port(), "GET", "/function/hello").status, 200); };
  for (int i = 0; i < 2; ++i) {
    call();
  }
  // The boundary: a few ms after the last row of the first batch started, and before any of the
  // second batch starts (waited for on the wall clock, which the ledger also uses).
  const int64_t boundary = UnixMillisNow() + 5;
  ASSERT_TRUE(PollUntil([&] { return UnixMillisNow() >= boundary + 5; }));
  for (int i = 0; i < 3; ++i) {
    call();
  }
  auto invocations = [&](std::vector<std::string> args) -> Json {
    std::vector<std::string> full = {"bill", "--function", "hello"};
    full.insert(full.end(), args.begin(), args.end());
    Json b = CtlJson(full);
    return b["total"]["invocations"];
  };
  EXPECT_EQ(invocations({}), 5);
  EXPECT_EQ(invocations({"--since", FormatTime(boundary, 0)}), 3);
  EXPECT_EQ(invocations({"--until", FormatTime(boundary, 0)}), 2);
  // The same instant written with an offset.
  EXPECT_EQ(invocations({"--since", FormatTime(boundary, 120)}), 3) << FormatTime(boundary, 120);
  EXPECT_EQ(invocations({"--until", FormatTime(boundary, -90)}), 2) << FormatTime(boundary, -90);
  EXPECT_EQ(invocations({"--since", "1h"}), 5);
  EXPECT_EQ(invocations({"--until", "2020-01-01"}), 0);
  EXPECT_EQ(invocations({"--since", "2h", "--until", FormatTime(boundary, 0)}), 2);
  CommandResult backwards =
      d_.Ctl({"bill", "--since", FormatTime(boundary, 0), "--until", "2020-01-01"});
  EXPECT_EQ(backwards.exit_code, 2) << backwards.err;
}

TEST_F(CliE2E, LogsFollowPrintsInvocationsAsTheyFinish) {
  Ctl0({"deploy", "echo", FunctionLib("echo")});
  HttpResult before = HttpRequest(d_.http_port(), "POST", "/function/echo", "before");
  ASSERT_EQ(before.status, 200);
  StreamingProcess follow({BinDir() + "/faasctl", "--server", d_.grpc_addr(), "--token",
                           d_.AdminToken(), "logs", "echo", "--follow"});
  // The existing entry first, then each new invocation once it finishes.
  ASSERT_TRUE(follow.AwaitOutput("=== " + before.Header("x-invocation-id"))) << follow.out();
  for (const char* body : {"first-new", "second-new-one"}) {
    HttpResult r = HttpRequest(d_.http_port(), "POST", "/function/echo", body);
    ASSERT_EQ(r.status, 200);
    std::string id = r.Header("x-invocation-id");
    ASSERT_TRUE(follow.AwaitOutput("=== " + id)) << follow.out();
    // echo logs "echo: N body bytes" on stderr.
    std::string line = "echo: " + std::to_string(std::string(body).size()) + " body bytes";
    EXPECT_TRUE(follow.AwaitOutput(line)) << follow.out();
  }
  EXPECT_TRUE(follow.Running()) << "--follow exited instead of waiting for more";
  // Each entry appears once.
  const std::string& out = follow.out();
  std::string marker = "=== " + before.Header("x-invocation-id");
  EXPECT_EQ(out.find(marker), out.rfind(marker)) << out;
}

}  // namespace
}  // namespace faas::testing
