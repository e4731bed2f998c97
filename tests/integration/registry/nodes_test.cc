// The node registry (faas/store/nodes.h) against a real PostgreSQL server: epochs and fencing,
// drain, the janitor's exclusivity and its dead-after rule, NOTIFY, and a server that goes away.
#include "faas/store/nodes.h"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/registry/backend_fixture.h"

namespace faas::store {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

NodeRecord Node(const std::string& id) {
  NodeRecord n;
  n.id = id;
  n.address = "127.0.0.1:91" + std::to_string(id.size());
  n.http_address = "127.0.0.1:81" + std::to_string(id.size());
  n.capacity = 4;
  return n;
}

class NodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    pg_ = testing::SharedPostgres(&why);
    if (pg_ == nullptr) {
      if (!faas::testing::PostgresProcess::Unavailable().empty()) {
        GTEST_SKIP() << why;
      }
      FAIL() << why;
    }
    static int counter = 0;
    const std::string db = "nodes" + std::to_string(++counter);
    std::string error;
    ASSERT_TRUE(pg_->CreateDatabase(db, &error)) << error;
    url_ = pg_->Url(db);
    nodes_ = Open();
    ASSERT_NE(nodes_, nullptr);
  }

  std::unique_ptr<NodeRegistry> Open() {
    Result<std::unique_ptr<NodeRegistry>> r = OpenNodeRegistry(url_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  NodeRecord Get(const std::string& id) {
    Result<std::vector<NodeRecord>> all = nodes_->List();
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    for (const NodeRecord& n : all.ok() ? *all : std::vector<NodeRecord>{}) {
      if (n.id == id) {
        return n;
      }
    }
    ADD_FAILURE() << "no node " << id;
    return {};
  }

  faas::testing::PostgresProcess* pg_ = nullptr;
  std::string url_;
  std::unique_ptr<NodeRegistry> nodes_;
};

TEST_F(NodesTest, ReRegisteringRaisesTheEpochAndSetsTheNodeUp) {
  Result<uint64_t> first = nodes_->Register(Node("n1"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 1u);
  ASSERT_TRUE(nodes_->SetState("n1", NodeState::kDraining).ok());
  NodeRecord moved = Node("n1");
  moved.address = "10.0.0.9:9100";
  moved.capacity = 2.5;
  Result<uint64_t> second = nodes_->Register(moved);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, 2u);
  NodeRecord got = Get("n1");
  EXPECT_EQ(got.epoch, 2u);
  EXPECT_EQ(got.state, NodeState::kUp);
  EXPECT_EQ(got.address, "10.0.0.9:9100");
  EXPECT_EQ(got.http_address, Node("n1").http_address);
  EXPECT_DOUBLE_EQ(got.capacity, 2.5);
  EXPECT_GE(got.heartbeat_age_ms, 0);
  EXPECT_LT(got.heartbeat_age_ms, 10'000);
  EXPECT_GT(got.registered_unix_ms, 0);
}

TEST_F(NodesTest, RegistrationChecksItsInput) {
  NodeRecord bad = Node("");
  bad.capacity = 0;
  Result<uint64_t> r = nodes_->Register(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("capacity 0"));
}

TEST_F(NodesTest, AHeartbeatWithAStaleEpochIsFenced) {
  Result<uint64_t> old_epoch = nodes_->Register(Node("n1"));
  ASSERT_TRUE(old_epoch.ok());
  Result<uint64_t> new_epoch = nodes_->Register(Node("n1"));  // the node restarted elsewhere
  ASSERT_TRUE(new_epoch.ok());

  Result<NodeState> stale = nodes_->Heartbeat("n1", *old_epoch, 0.5);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsFenced(stale.status())) << stale.status().ToString();
  EXPECT_THAT(stale.status().message(), HasSubstr("fenced"));
  Result<NodeState> unknown = nodes_->Heartbeat("nobody", 1, 0);
  EXPECT_TRUE(IsFenced(unknown.status())) << unknown.status().ToString();

  Result<NodeState> current = nodes_->Heartbeat("n1", *new_epoch, 0.25);
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  EXPECT_EQ(*current, NodeState::kUp);
  EXPECT_DOUBLE_EQ(Get("n1").load, 0.25);
}

TEST_F(NodesTest, DrainReachesTheNodeThroughItsHeartbeat) {
  Result<uint64_t> epoch = nodes_->Register(Node("n1"));
  ASSERT_TRUE(epoch.ok());
  ASSERT_TRUE(nodes_->SetState("n1", NodeState::kDraining).ok());
  Result<NodeState> st = nodes_->Heartbeat("n1", *epoch, 0);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(*st, NodeState::kDraining);
  EXPECT_EQ(Get("n1").state, NodeState::kDraining);
  ASSERT_TRUE(nodes_->SetState("n1", NodeState::kUp).ok());
  EXPECT_EQ(*nodes_->Heartbeat("n1", *epoch, 0), NodeState::kUp);

  Status missing = nodes_->SetState("nobody", NodeState::kDraining);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
  EXPECT_THAT(missing.message(), HasSubstr("\"nobody\""));
}

TEST_F(NodesTest, OnlyOneInstanceIsTheJanitorUntilItGoesAway) {
  std::unique_ptr<NodeRegistry> other = Open();
  ASSERT_NE(other, nullptr);
  Result<JanitorReport> a = nodes_->JanitorStep(kNodeDeadAfter);
  Result<JanitorReport> b = other->JanitorStep(kNodeDeadAfter);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->janitor);
  EXPECT_FALSE(b->janitor);
  EXPECT_TRUE(nodes_->JanitorStep(kNodeDeadAfter)->janitor);  // it keeps the lock
  EXPECT_FALSE(other->JanitorStep(kNodeDeadAfter)->janitor);

  // A non-janitor never marks anything dead, however silent the node.
  ASSERT_TRUE(other->Register(Node("n1")).ok());
  Result<JanitorReport> idle = other->JanitorStep(std::chrono::milliseconds(0));
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(idle->marked_dead.empty());
  EXPECT_EQ(Get("n1").state, NodeState::kUp);

  nodes_.reset();  // the janitor's process ends: its session and lock go
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  bool took_over = false;
  while (!took_over && Clock::now() < deadline) {
    Result<JanitorReport> r = other->JanitorStep(kNodeDeadAfter);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    took_over = r->janitor;
    if (!took_over) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval
    }
  }
  EXPECT_TRUE(took_over);
}

// A LISTEN connection of the test's own, to see the janitor's NOTIFY.
class Listener {
 public:
  explicit Listener(const std::string& url) : c_(PQconnectdb(url.c_str())) {
    PQclear(PQexec(c_, "LISTEN faas_nodes"));
  }
  ~Listener() { PQfinish(c_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  bool ok() const { return PQstatus(c_) == CONNECTION_OK; }
  // Payloads received until one contains `want` or the deadline.
  std::string WaitFor(const std::string& want, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string all;
    while (all.find(want) == std::string::npos && Clock::now() < deadline) {
      pollfd p{PQsocket(c_), POLLIN, 0};
      ::poll(&p, 1, 50);
      PQconsumeInput(c_);
      while (PGnotify* n = PQnotifies(c_)) {
        all += std::string(n->extra) + ";";
        PQfreemem(n);
      }
    }
    return all;
  }

 private:
  PGconn* c_;
};

TEST_F(NodesTest, TheJanitorDeclaresASilentNodeDeadAndNotifies) {
  Listener listener(url_);
  ASSERT_TRUE(listener.ok());
  constexpr std::chrono::milliseconds kDeadAfter{300};
  Result<uint64_t> silent = nodes_->Register(Node("silent"));
  Result<uint64_t> alive = nodes_->Register(Node("alive"));
  ASSERT_TRUE(silent.ok() && alive.ok());
  const auto registered = Clock::now();
  Result<JanitorReport> early = nodes_->JanitorStep(kDeadAfter);
  ASSERT_TRUE(early.ok() && early->janitor);
  EXPECT_TRUE(early->marked_dead.empty()) << "marked dead right after registering";

  // "alive" heartbeats every 50 ms; "silent" never does.
  std::vector<std::string> dead;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (dead.empty() && Clock::now() < deadline) {
    ASSERT_TRUE(nodes_->Heartbeat("alive", *alive, 0.1).ok());
    Result<JanitorReport> r = nodes_->JanitorStep(kDeadAfter);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    dead = r->marked_dead;
    if (dead.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // heartbeat interval
    }
  }
  const auto waited = Clock::now() - registered;
  ASSERT_EQ(dead, std::vector<std::string>{"silent"});
  EXPECT_GE(waited, kDeadAfter);
  EXPECT_LT(waited, kDeadAfter + std::chrono::seconds(2));
  EXPECT_EQ(Get("silent").state, NodeState::kDead);
  EXPECT_EQ(Get("alive").state, NodeState::kUp);
  EXPECT_THAT(listener.WaitFor("dead:silent", std::chrono::seconds(5)), HasSubstr("dead:silent"));

  // The dead node comes back: its old epoch is fenced, and a drain cannot revive the row.
  EXPECT_TRUE(IsFenced(nodes_->Heartbeat("silent", *silent, 0).status()));
  EXPECT_EQ(nodes_->SetState("silent", NodeState::kDraining).code(),
            StatusCode::kFailedPrecondition);
  Result<uint64_t> again = nodes_->Register(Node("silent"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *silent + 1);
  EXPECT_EQ(*nodes_->Heartbeat("silent", *again, 0), NodeState::kUp);
}

TEST(NodesOutageTest, AStoppedServerGivesUnavailableAndTheRegistryReconnects) {
  if (std::string why = faas::testing::PostgresProcess::Unavailable(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  faas::testing::PostgresProcess pg;
  std::string error;
  ASSERT_TRUE(pg.Start(&error)) << error;
  Result<std::unique_ptr<NodeRegistry>> opened = OpenNodeRegistry(pg.Url());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NodeRegistry& nodes = **opened;
  Result<uint64_t> epoch = nodes.Register(Node("n1"));
  ASSERT_TRUE(epoch.ok());
  ASSERT_TRUE(nodes.JanitorStep(kNodeDeadAfter)->janitor);

  pg.Stop();
  for (int i = 0; i < 3; ++i) {
    Result<NodeState> hb = nodes.Heartbeat("n1", *epoch, 0);
    ASSERT_FALSE(hb.ok());
    EXPECT_EQ(hb.status().code(), StatusCode::kUnavailable) << hb.status().ToString();
    EXPECT_FALSE(IsFenced(hb.status()));  // an outage is not a fence: keep the epoch
  }
  EXPECT_EQ(nodes.List().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(nodes.JanitorStep(kNodeDeadAfter).status().code(), StatusCode::kUnavailable);

  ASSERT_TRUE(pg.Start(&error)) << error;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  Result<NodeState> hb = nodes.Heartbeat("n1", *epoch, 0);
  while (!hb.ok() && Clock::now() < deadline) {
    EXPECT_EQ(hb.status().code(), StatusCode::kUnavailable) << hb.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval
    hb = nodes.Heartbeat("n1", *epoch, 0);
  }
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  // The new session takes the janitor lock again (the old one died with the server).
  Result<JanitorReport> j = nodes.JanitorStep(kNodeDeadAfter);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_TRUE(j->janitor);
}

TEST(OpenNodeRegistryTest, AnotherStoreThanPostgresqlIsAFailedPrecondition) {
  for (const char* store : {"sqlite:", "sqlite:/var/lib/faas", "/var/lib/faas"}) {
    Result<std::unique_ptr<NodeRegistry>> r = OpenNodeRegistry(store);
    ASSERT_FALSE(r.ok()) << store;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << store;
    EXPECT_THAT(r.status().message(), HasSubstr("needs PostgreSQL")) << store;
  }
}

}  // namespace
}  // namespace faas::store
