// HealthChecker and its HTTP prober against real sockets: tiny HTTP servers in forked child
// processes answering 200 or 503, one hung by SIGSTOP and woken by SIGCONT, and a closed port.
// Prints the time from fault to down and from recovery to up
// (docs/design/0019-membership-and-health.md).
#include "faas/cluster/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace faas::cluster {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A listening socket on 127.0.0.1, port chosen by the kernel.
int Listen(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// A child process that answers every connection's request with `answer`, then closes it.
class HttpChild {
 public:
  explicit HttpChild(const std::string& answer) {
    const int fd = Listen(&port_);
    if (fd < 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      for (;;) {
        const int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) {
          continue;
        }
        char buf[2048];
        std::size_t got = 0;
        while (got < sizeof(buf)) {  // until the end of the request's headers
          const ssize_t n = ::read(c, buf + got, sizeof(buf) - got);
          if (n <= 0) {
            break;
          }
          got += static_cast<std::size_t>(n);
          if (std::string_view(buf, got).find("\r\n\r\n") != std::string_view::npos) {
            break;
          }
        }
        // MSG_NOSIGNAL: after SIGCONT the queued probes' sockets are closed already.
        (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    }
    ::close(fd);
  }
  ~HttpChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  HttpChild(const HttpChild&) = delete;
  HttpChild& operator=(const HttpChild&) = delete;

  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

std::string Answer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Service Unavailable") +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// A port nothing listens on (bound, then closed).
std::string ClosedPort() {
  int port = 0;
  const int fd = Listen(&port);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(port);
}

NodeInfo Node(const std::string& id, const std::string& http) {
  NodeInfo n;
  n.id = id;
  n.address = http;
  n.http_address = http;
  return n;
}

bool IsUp(const HealthChecker& c, const std::string& id) {
  for (const NodeInfo& n : c.Up()) {
    if (n.id == id) {
      return true;
    }
  }
  return false;
}

// Polls `cond` every 5 ms until it holds or `timeout` passes; returns how long it took, or
// nullopt at the deadline. `each` runs on every poll (to watch other nodes meanwhile).
std::optional<std::chrono::milliseconds> TimeUntil(const std::function<bool()>& cond,
                                                   std::chrono::milliseconds timeout,
                                                   const std::function<void()>& each = {}) {
  const auto start = Clock::now();
  while (Clock::now() - start < timeout) {
    if (each) {
      each();
    }
    if (cond()) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval
  }
  return std::nullopt;
}

TEST(HttpProber, ProbesEveryNodeAtOnceSoAHungNodeCostsTheOthersNothing) {
  HttpChild ok(Answer(200, R"({"status":"ready","load":0.5})"));
  HttpChild busy(Answer(503, R"({"status":"draining"})"));
  std::vector<std::unique_ptr<HttpChild>> hung;
  for (int i = 0; i < 4; ++i) {
    hung.push_back(std::make_unique<HttpChild>(Answer(200, "{}")));
    ASSERT_TRUE(hung.back()->ok());
    ASSERT_EQ(::kill(hung.back()->pid(), SIGSTOP), 0);
  }
  ASSERT_TRUE(ok.ok() && busy.ok());
  std::unique_ptr<Prober> prober = MakeHttpProber();
  const auto start = Clock::now();
  std::vector<ProbeResult> r =
      prober->ProbeAll({hung[0]->address(), ok.address(), hung[1]->address(), busy.address(),
                        ClosedPort(), "not-an-address", hung[2]->address(), hung[3]->address()},
                       std::chrono::milliseconds(200));
  const auto took = Clock::now() - start;
  ASSERT_EQ(r.size(), 8u);
  EXPECT_FALSE(r[0].ok);
  EXPECT_THAT(r[0].why, HasSubstr("no answer within 200ms"));
  EXPECT_TRUE(r[1].ok) << r[1].why;
  EXPECT_DOUBLE_EQ(r[1].load, 0.5);
  EXPECT_FALSE(r[2].ok);
  EXPECT_FALSE(r[3].ok);
  EXPECT_EQ(r[3].why, "status 503");
  EXPECT_FALSE(r[4].ok);
  EXPECT_THAT(r[4].why, HasSubstr("Connection refused"));
  EXPECT_TRUE(r[4].refused);
  EXPECT_FALSE(r[0].refused);
  EXPECT_THAT(r[5].why, HasSubstr("bad address"));
  EXPECT_FALSE(r[6].ok || r[7].ok);
  // Four hung nodes cost one timeout, not four (>= 800 ms): the probes run at once.
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::milliseconds(600));
  std::cout << "figures: one round with 4 hung nodes took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  for (auto& h : hung) {
    ::kill(h->pid(), SIGCONT);
  }
}

// Over real HTTP: the node reports its load (0.5 of 8 slots: 4 calls), the gateway had 3 calls
// of its own there when the probe went out, so everyone else's load is 1 call
// (docs/design/0017-balancing.md, "Several gateways").
TEST(HealthCheckerTest, TakesOurOwnCallsOutOfTheNodesReportedLoad) {
  HttpChild node(Answer(200, R"({"status":"ready","load":0.5})"));
  ASSERT_TRUE(node.ok());
  NodeInfo info = Node("n1", node.address());
  info.capacity = 8;
  std::atomic<int> asked{0};  // before the checker: its prober thread uses it until Stop
  HealthChecker checker([&]() -> Result<std::vector<NodeInfo>> { return std::vector{info}; }, {});
  checker.SetOwnInFlight([&](std::string_view id) {
    EXPECT_EQ(id, "n1");
    ++asked;
    return 3.0;
  });
  checker.Start();
  double others = -1;
  ASSERT_TRUE(TimeUntil(
      [&] {
        for (const NodeInfo& n : checker.Up()) {
          others = n.others_load;
        }
        return others >= 0;
      },
      std::chrono::seconds(5)));
  EXPECT_DOUBLE_EQ(others, 1);
  EXPECT_GE(asked.load(), 1);
  checker.SetOwnInFlight(nullptr);
  checker.Stop();
}

TEST(HealthCheckerTest, AHungNodeGoesDownAndComesBackWithinASecond) {
  HttpChild ok(Answer(200, R"({"status":"ready","load":0.5})"));
  HttpChild busy(Answer(503, R"({"status":"starting"})"));
  HttpChild hung(Answer(200, R"({"status":"ready"})"));
  ASSERT_TRUE(ok.ok() && busy.ok() && hung.ok());
  const std::vector<NodeInfo> nodes = {Node("ok", ok.address()), Node("busy", busy.address()),
                                       Node("hung", hung.address()), Node("closed", ClosedPort())};
  HealthChecker checker([&]() -> Result<std::vector<NodeInfo>> { return nodes; }, {});
  checker.Start();

  ASSERT_TRUE(TimeUntil([&] { return IsUp(checker, "ok") && IsUp(checker, "hung"); },
                        std::chrono::seconds(5)));
  for (const NodeHealth& h : checker.Snapshot()) {
    if (h.info.id == "busy") {
      EXPECT_FALSE(h.up);
      EXPECT_EQ(h.last_error, "status 503");
    } else if (h.info.id == "closed") {
      EXPECT_FALSE(h.up);
      EXPECT_THAT(h.last_error, HasSubstr("Connection refused"));
    } else if (h.info.id == "ok") {
      EXPECT_DOUBLE_EQ(h.info.reported_load, 0.5);
    }
  }

  // Hung: down after 3 probes without an answer; the healthy node never leaves meanwhile.
  bool ok_left = false;
  auto watch_ok = [&] { ok_left = ok_left || !IsUp(checker, "ok"); };
  ASSERT_EQ(::kill(hung.pid(), SIGSTOP), 0);
  std::optional<std::chrono::milliseconds> to_down =
      TimeUntil([&] { return !IsUp(checker, "hung"); }, std::chrono::seconds(5), watch_ok);
  ASSERT_EQ(::kill(hung.pid(), SIGCONT), 0);
  ASSERT_TRUE(to_down.has_value()) << "the hung node stayed up";
  std::optional<std::chrono::milliseconds> to_up =
      TimeUntil([&] { return IsUp(checker, "hung"); }, std::chrono::seconds(5), watch_ok);
  ASSERT_TRUE(to_up.has_value()) << "the woken node stayed down";
  EXPECT_FALSE(ok_left) << "a hung neighbour took the healthy node out";
  // 3 misses at 250 ms, the first at most one interval after the fault: ~0.5-1 s; 2 passes:
  // ~0.25-0.5 s. A second of slack for this slow VM.
  EXPECT_LT(*to_down, std::chrono::milliseconds(2000));
  EXPECT_LT(*to_up, std::chrono::milliseconds(1500));
  std::cout << "figures: hung (SIGSTOP) -> down " << to_down->count() << " ms; SIGCONT -> up "
            << to_up->count() << " ms\n";
  RecordProperty("fault_to_down_ms", static_cast<int>(to_down->count()));
  RecordProperty("recovery_to_up_ms", static_cast<int>(to_up->count()));

  // Passive: out at once, back after two passes.
  checker.MarkDown("ok", "connection reset");
  EXPECT_FALSE(IsUp(checker, "ok"));
  std::optional<std::chrono::milliseconds> readmit =
      TimeUntil([&] { return IsUp(checker, "ok"); }, std::chrono::seconds(5));
  ASSERT_TRUE(readmit.has_value());
  std::cout << "figures: MarkDown -> up again " << readmit->count() << " ms\n";

  // Killed: its port refuses, which takes it out at the next round without waiting for 3.
  ASSERT_EQ(::kill(ok.pid(), SIGKILL), 0);
  std::optional<std::chrono::milliseconds> killed_down =
      TimeUntil([&] { return !IsUp(checker, "ok"); }, std::chrono::seconds(5));
  ASSERT_TRUE(killed_down.has_value());
  EXPECT_LT(*killed_down, std::chrono::milliseconds(1000));
  std::cout << "figures: SIGKILL -> down " << killed_down->count() << " ms\n";
  RecordProperty("sigkill_to_down_ms", static_cast<int>(killed_down->count()));
  checker.Stop();
}

}  // namespace
}  // namespace faas::cluster
