// The daemon's membership glue (daemon/src/membership.h) against a real PostgreSQL server: a
// node registers and heartbeats, re-registers when fenced, hears a drain; a gateway's node
// source lists only up nodes that pass its checks; the janitor loop declares silent nodes dead.
#include "membership.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/registry.h"
#include "faas/store/settings.h"

#include "follow.h"
#include "integration/registry/backend_fixture.h"
#include "subprocess.h"

namespace faas::daemon {
namespace {

using Clock = std::chrono::steady_clock;

bool Eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval
  }
  return cond();
}

// Answers every connection with 200 and a /readyz-like body, on a thread of this process.
class ReadyServer {
 public:
  ReadyServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len);
    ::listen(fd_, 64);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"load\":0.3}";
      for (;;) {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          return;  // shut down
        }
        char buf[1024];
        (void)::read(c, buf, sizeof(buf));
        (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~ReadyServer() {
    ::shutdown(fd_, SHUT_RDWR);  // accept fails: the thread ends
    thread_.join();
    ::close(fd_);
  }
  ReadyServer(const ReadyServer&) = delete;
  ReadyServer& operator=(const ReadyServer&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    pg_ = store::testing::SharedPostgres(&why);
    if (pg_ == nullptr) {
      if (!faas::testing::PostgresProcess::Unavailable().empty()) {
        GTEST_SKIP() << why;
      }
      FAIL() << why;
    }
    static int counter = 0;
    const std::string db = "members" + std::to_string(++counter);
    std::string error;
    ASSERT_TRUE(pg_->CreateDatabase(db, &error)) << error;
    url_ = pg_->Url(db);
    nodes_ = Open();
    ASSERT_NE(nodes_, nullptr);
  }
  std::unique_ptr<store::NodeRegistry> Open() {
    Result<std::unique_ptr<store::NodeRegistry>> r = store::OpenNodeRegistry(url_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  store::NodeRecord Row(const std::string& id) {
    Result<std::vector<store::NodeRecord>> all = nodes_->List();
    if (all.ok()) {
      for (const store::NodeRecord& n : *all) {
        if (n.id == id) {
          return n;
        }
      }
    }
    return {};
  }
  NodeMembershipOptions Options(const std::string& id) {
    NodeMembershipOptions o;
    o.self.id = id;
    o.self.address = "127.0.0.1:9100";
    o.self.http_address = "127.0.0.1:8080";
    o.heartbeat_interval = std::chrono::milliseconds(50);
    return o;
  }

  faas::testing::PostgresProcess* pg_ = nullptr;
  std::string url_;
  std::unique_ptr<store::NodeRegistry> nodes_;
};

TEST_F(MembershipTest, ANodeRegistersAndReportsItsLoad) {
  NodeMembershipOptions o = Options("n1");
  o.load = [] { return 0.625; };
  NodeMembership m(nodes_.get(), o);
  ASSERT_TRUE(m.Start().ok());
  EXPECT_EQ(m.epoch(), 1u);
  EXPECT_TRUE(Eventually([&] { return Row("n1").load == 0.625; }));
  EXPECT_EQ(Row("n1").state, store::NodeState::kUp);
}

TEST_F(MembershipTest, AFencedNodeCallsBackAndRegistersAgain) {
  std::atomic<uint64_t> fenced_epoch{0};
  NodeMembershipOptions o = Options("n1");
  o.on_fenced = [&](uint64_t old_epoch) { fenced_epoch = old_epoch; };
  NodeMembership m(nodes_.get(), o);
  ASSERT_TRUE(m.Start().ok());
  ASSERT_EQ(m.epoch(), 1u);
  // Another process registers the same id (or the janitor declared it dead): epoch 1 is stale.
  ASSERT_TRUE(nodes_->Register(Options("n1").self).ok());
  ASSERT_TRUE(Eventually([&] { return fenced_epoch.load() == 1; })) << "never fenced";
  EXPECT_TRUE(Eventually([&] { return m.epoch() == 3 && !m.fenced(); }));
  EXPECT_EQ(Row("n1").epoch, 3u);

  // Declared dead by the janitor: fenced too, back with a new epoch.
  ASSERT_TRUE(nodes_->SetState("n1", store::NodeState::kDead).ok());
  EXPECT_TRUE(Eventually([&] { return fenced_epoch.load() == 3 && m.epoch() == 4; }));
  EXPECT_EQ(Row("n1").state, store::NodeState::kUp);
}

TEST_F(MembershipTest, AnOperatorsDrainReachesTheNodeOnce) {
  std::atomic<int> drains{0};
  NodeMembershipOptions o = Options("n1");
  o.on_drain = [&] { ++drains; };
  NodeMembership m(nodes_.get(), o);
  ASSERT_TRUE(m.Start().ok());
  Result<store::NodeRecord> drained = DrainNodeById(*nodes_, "n1");
  ASSERT_TRUE(drained.ok()) << drained.status().ToString();
  EXPECT_EQ(drained->state, store::NodeState::kDraining);
  ASSERT_TRUE(Eventually([&] { return drains.load() == 1; }));
  const auto pause = Clock::now() + std::chrono::milliseconds(200);  // four more heartbeats
  while (Clock::now() < pause) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(drains.load(), 1);
  EXPECT_EQ(DrainNodeById(*nodes_, "nobody").status().code(), StatusCode::kNotFound);
}

TEST_F(MembershipTest, DrainItselfStaysDrainingAcrossAFenceAndLeaveMarksItDead) {
  std::atomic<int> drains{0};
  NodeMembershipOptions o = Options("n1");
  o.on_drain = [&] { ++drains; };
  NodeMembership m(nodes_.get(), o);
  ASSERT_TRUE(m.Start().ok());
  ASSERT_TRUE(m.Drain().ok());
  EXPECT_EQ(Row("n1").state, store::NodeState::kDraining);
  ASSERT_TRUE(nodes_->Register(Options("n1").self).ok());  // fence it
  ASSERT_TRUE(Eventually([&] { return m.epoch() == 3; }));
  EXPECT_EQ(Row("n1").state, store::NodeState::kDraining);
  EXPECT_EQ(drains.load(), 0) << "its own drain is not an operator's";
  ASSERT_TRUE(m.Leave().ok());
  m.Stop();
  EXPECT_EQ(Row("n1").state, store::NodeState::kDead);
}

TEST_F(MembershipTest, TheGatewaySourceListsUpNodesThatPassItsChecks) {
  ReadyServer ready;
  store::NodeRecord good = Options("good").self;
  good.http_address = ready.address();
  store::NodeRecord draining = good;
  draining.id = "draining";
  store::NodeRecord closed = good;
  closed.id = "closed";
  closed.http_address = "127.0.0.1:1";  // refused
  for (const auto& n : {good, draining, closed}) {
    ASSERT_TRUE(nodes_->Register(n).ok());
  }
  ASSERT_TRUE(nodes_->SetState("draining", store::NodeState::kDraining).ok());
  std::unique_ptr<cluster::NodeSource> source = MakeGatewayNodeSource(nodes_.get());
  ASSERT_TRUE(Eventually([&] { return source->Up().size() == 1; }));
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::milliseconds(600)) {  // the others stay out
    std::vector<cluster::NodeInfo> up = source->Up();
    ASSERT_EQ(up.size(), 1u);
    EXPECT_EQ(up[0].id, "good");
    EXPECT_DOUBLE_EQ(up[0].reported_load, 0.3);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST_F(MembershipTest, TheJanitorLoopDeclaresASilentNodeDead) {
  ASSERT_TRUE(nodes_->Register(Options("silent").self).ok());
  std::atomic<int> reported{0};
  NodeJanitor janitor(nodes_.get(), std::chrono::milliseconds(200), std::chrono::milliseconds(20));
  janitor.OnDead(
      [&](const std::vector<std::string>& ids) { reported += static_cast<int>(ids.size()); });
  janitor.Start();
  EXPECT_TRUE(Eventually([&] { return Row("silent").state == store::NodeState::kDead; }));
  EXPECT_TRUE(Eventually([&] { return reported.load() == 1; }));
}

// A gateway's RegistryFollower (follow.h): a resync of everything once it listens, then each
// kind re-read on its own notice, sent by the registry's and the node registry's changes. The
// backstop is an hour away: whatever is re-read here was asked for by a notice.
TEST_F(MembershipTest, TheFollowerRereadsWhatEachNoticeNames) {
  std::atomic<int> functions{0}, routes{0}, keys{0}, nodes{0}, triggers{0};
  auto counter = [](std::atomic<int>& n) {
    return [&n] {
      ++n;
      return OkStatus();
    };
  };
  RegistryFollower follower({.store = url_,
                             .resync_every = std::chrono::hours(1),
                             .functions = counter(functions),
                             .routes = counter(routes),
                             .keys = counter(keys),
                             .nodes = counter(nodes),
                             .triggers = counter(triggers)});
  ASSERT_TRUE(follower.Start().ok());
  ASSERT_TRUE(Eventually(
      [&] { return functions == 1 && routes == 1 && keys == 1 && nodes == 1 && triggers == 1; }));

  ASSERT_TRUE(nodes_->Register(Options("n1").self).ok());  // NOTIFY faas_nodes 'up:n1'
  ASSERT_TRUE(Eventually([&] { return nodes == 2; }));
  ASSERT_TRUE(nodes_->SetState("n1", store::NodeState::kDraining).ok());
  ASSERT_TRUE(Eventually([&] { return nodes == 3; }));

  faas::testing::TempDir dir;
  auto reg = store::OpenRegistry(url_, dir.path() + "/data");
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  ASSERT_TRUE((*reg)->AddRoute({"GET", "/x", "", "fn", 0}).ok());
  ASSERT_TRUE(Eventually([&] { return routes == 2; }));
  ASSERT_TRUE((*reg)->CreateKey("acme", {}, 0, 0).ok());
  ASSERT_TRUE(Eventually([&] { return keys == 2; }));
  auto sha = (*reg)->PutArtifact("bytes");
  ASSERT_TRUE(sha.ok());
  ASSERT_TRUE((*reg)->CreateVersion("fn", *sha, store::FunctionConfig{}).ok());
  ASSERT_TRUE(Eventually([&] { return functions == 2; }));
  auto settings = store::OpenPgSettings(url_);  // trigger definitions (settings.h)
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  ASSERT_TRUE((*settings)->PutSetting("trigger", "t1", "{}").ok());
  ASSERT_TRUE(Eventually([&] { return triggers == 2; }));
  // Each notice re-read its own kind only.
  EXPECT_EQ(functions.load(), 2);
  EXPECT_EQ(routes.load(), 2);
  EXPECT_EQ(keys.load(), 2);
  EXPECT_EQ(nodes.load(), 3);
  EXPECT_EQ(triggers.load(), 2);
  follower.Stop();
}

}  // namespace
}  // namespace faas::daemon
