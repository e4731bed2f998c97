// The hostile suite, outbound network (issue #13 item 3, docs/design/0007-outbound-network.md):
// a function deployed `--network outbound` reaches out through its own network namespace, but
// never the host: not its loopback (directly or through slirp's gateway 10.0.2.2), not its own
// addresses, not link-local (cloud metadata) or private ranges, unless faasd --egress-allow says.
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

std::string HostileLib() {
  return std::string(FAAS_TEST_HOSTILE_LIB);
}

bool HaveSlirp() {
  for (const char* p : {"/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns"}) {
    if (::access(p, X_OK) == 0) {
      return true;
    }
  }
  return false;
}

// The first IPv4 address of an up, non-loopback interface of this machine ("" if none).
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return "";
  }
  std::string out;
  for (ifaddrs* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
        !(i->ifa_flags & IFF_LOOPBACK)) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      out = buf;
    }
  }
  ::freeifaddrs(list);
  return out;
}

// A TCP listener on ADDR:0 that answers every connection with "ok" and closes it.
class Listener {
 public:
  explicit Listener(const std::string& addr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          return;  // shut down
        }
        ++accepted_;
        (void)!::write(c, "ok", 2);
        ::close(c);
      }
    });
  }
  ~Listener() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Host pids of slirp4netns processes whose parent is `parent`.
std::set<pid_t> SlirpChildrenOf(pid_t parent) {
  std::set<pid_t> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) {
      continue;
    }
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...
    std::size_t close = line.rfind(')');
    if (close == std::string::npos || line.find("(slirp4netns)") == std::string::npos) {
      continue;
    }
    if (std::atoi(line.c_str() + close + 4) == parent) {
      out.insert(pid);
    }
  }
  if (d) {
    ::closedir(d);
  }
  return out;
}

bool Alive(pid_t pid) {
  return ::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

std::string SkipReason() {
  if (::geteuid() != 0) {
    return "the sandbox needs root (namespaces, mounts, setresuid); run as root";
  }
  if (!HaveSlirp()) {
    return "slirp4netns is not installed (infra/install-deps.sh installs it)";
  }
  if (HostAddress().empty()) {
    return "this machine has no non-loopback IPv4 address to attack";
  }
  return "";
}

HttpResult ConnectTo(FaasdProcess& d, const std::string& fn, const std::string& addr, int port) {
  return HttpRequest(d.http_port(), "GET", "/function/" + fn + "?do=connect-to", "",
                     {{"X-Addr", addr}, {"X-Port", std::to_string(port)}});
}

// One faasd without any --egress-allow; functions forked from zygotes, as in production.
class OutboundNetwork : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!SkipReason().empty()) {
      return;
    }
    daemon_ = new FaasdProcess();
    ASSERT_TRUE(daemon_->Start()) << daemon_->Logs();
    CommandResult r =
        daemon_->Ctl({"deploy", "net", HostileLib(), "--network", "outbound", "--timeout", "10s"});
    ASSERT_EQ(r.exit_code, 0) << r.err << daemon_->Logs();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (std::string why = SkipReason(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    ASSERT_NE(daemon_, nullptr);
  }
  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr) {
      std::string logs = daemon_->Logs();
      std::fprintf(stderr, "---- faasd log (tail) ----\n%s\n",
                   logs.substr(logs.size() > 4000 ? logs.size() - 4000 : 0).c_str());
    }
  }
  static FaasdProcess* daemon_;
};

FaasdProcess* OutboundNetwork::daemon_ = nullptr;

TEST_F(OutboundNetwork, CannotReachTheDaemonOnLoopback) {
  // 127.0.0.1 is the function's own loopback: nothing listens there.
  HttpResult r = ConnectTo(*daemon_, "net", "127.0.0.1", daemon_->http_port());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "errno=ECONNREFUSED");
}

TEST_F(OutboundNetwork, CannotReachHostLoopbackThroughTheSlirpGateway) {
  // slirp maps 10.0.2.2 to the host's 127.0.0.1 unless --disable-host-loopback.
  HttpResult r = ConnectTo(*daemon_, "net", "10.0.2.2", daemon_->http_port());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.rfind("errno=", 0), 0u) << r.body;
}

TEST_F(OutboundNetwork, CannotReachTheHostsOwnAddress) {
  Listener l(HostAddress());
  ASSERT_GT(l.port(), 0);
  HttpResult r = ConnectTo(*daemon_, "net", HostAddress(), l.port());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "errno=EACCES") << HostAddress();  // a prohibit route in its namespace
  EXPECT_EQ(l.accepted(), 0);
}

TEST_F(OutboundNetwork, CannotReachLinkLocalOrPrivateRanges) {
  for (const char* addr :
       {"169.254.169.254", "10.0.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1"}) {
    HttpResult r = ConnectTo(*daemon_, "net", addr, 80);
    EXPECT_EQ(r.status, 200) << addr << ": " << r.body;
    EXPECT_EQ(r.body, "errno=EACCES") << addr;
  }
}

TEST_F(OutboundNetwork, NoNetworkStaysNoNetwork) {
  CommandResult r = daemon_->Ctl({"deploy", "offline", HostileLib()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  HttpResult h =
      HttpRequest(daemon_->http_port(), "GET", "/function/offline?do=connect-public", "", {});
  EXPECT_EQ(h.body, "errno=ENETUNREACH");
}

// The path out works, and --egress-allow opens exactly what it names. Spawned workers (no
// zygotes), so the other way of starting an instance is covered too.
TEST(OutboundNetworkAllowed, AnAllowedHostAddressIsReachable) {
  if (std::string why = SkipReason(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--zygotes", "false", "--egress-allow", HostAddress() + "/32"})) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "net", HostileLib(), "--network", "outbound"}).exit_code, 0)
      << d.Logs();
  Listener l(HostAddress());
  ASSERT_GT(l.port(), 0);
  HttpResult r = ConnectTo(d, "net", HostAddress(), l.port());
  EXPECT_EQ(r.body, "connected read=ok") << d.Logs();
  EXPECT_EQ(l.accepted(), 1);
  // The allow is that one address, not its neighbours nor the rest of the blocked ranges.
  EXPECT_EQ(ConnectTo(d, "net", "169.254.169.254", 80).body, "errno=EACCES");
}

// Each worker's slirp4netns ends with it, and none outlives faasd.
TEST(OutboundNetworkAllowed, SlirpEndsWithItsWorker) {
  if (std::string why = SkipReason(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  FaasdProcess d;
  ASSERT_TRUE(d.Start()) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "net", HostileLib(), "--network", "outbound"}).exit_code, 0);
  ASSERT_EQ(ConnectTo(d, "net", "127.0.0.1", 1).body, "errno=ECONNREFUSED");
  std::set<pid_t> slirps = SlirpChildrenOf(d.pid());
  EXPECT_FALSE(slirps.empty());
  ASSERT_EQ(d.Ctl({"delete", "net"}).exit_code, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t pid : slirps) {
    while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    EXPECT_FALSE(Alive(pid)) << "slirp4netns " << pid << " outlived its worker";
  }
  // Again, stopping faasd with a live outbound instance.
  ASSERT_EQ(d.Ctl({"deploy", "net2", HostileLib(), "--network", "outbound"}).exit_code, 0);
  ASSERT_EQ(ConnectTo(d, "net2", "127.0.0.1", 1).body, "errno=ECONNREFUSED");
  slirps = SlirpChildrenOf(d.pid());
  EXPECT_FALSE(slirps.empty());
  EXPECT_EQ(d.Stop(), 0);
  for (pid_t pid : slirps) {
    EXPECT_FALSE(Alive(pid)) << "slirp4netns " << pid << " outlived faasd";
  }
}

// Fail closed: without slirp4netns an outbound function is refused, never run on the host's
// network.
TEST(OutboundNetworkAllowed, WithoutSlirpOutboundIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the sandbox needs root (namespaces, mounts, setresuid); run as root";
  }
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--slirp4netns", "/nonexistent/slirp4netns"})) << d.Logs();
  CommandResult r = d.Ctl({"deploy", "net", HostileLib(), "--network", "outbound"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("slirp4netns"), std::string::npos) << r.err;
  EXPECT_EQ(d.Ctl({"deploy", "offline", HostileLib()}).exit_code, 0);  // the rest still works
}

}  // namespace
}  // namespace faas::testing
