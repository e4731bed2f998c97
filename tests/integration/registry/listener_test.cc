// Following changes through PostgreSQL LISTEN/NOTIFY (faas/store/change_listener.h,
// docs/design/0022-change-notification.md) against a real server: notices arrive, every registry
// change announces itself in its own transaction, a restarted or hung server is followed by a
// reconnection and a resync, and the statement timeout every connection carries.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/change_listener.h"
#include "faas/store/registry.h"

#include "integration/registry/backend_fixture.h"
#include "pg.h"

namespace faas::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Polls `done` every 10 ms until it holds or `timeout` passes.
template <typename F>
bool WaitUntil(F done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// What a listener received, for the test thread to read.
class Received {
 public:
  void Add(const Change& c) {
    std::lock_guard lock(mu_);
    payloads_.push_back(c.channel + " " + c.payload);
  }
  std::vector<std::string> All() const {
    std::lock_guard lock(mu_);
    return payloads_;
  }
  // Waits for `payload` to arrive; returns everything received up to then, and forgets it.
  std::vector<std::string> TakeUntil(const std::string& payload) {
    WaitUntil([&] {
      std::lock_guard lock(mu_);
      return std::find(payloads_.begin(), payloads_.end(), payload) != payloads_.end();
    });
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    out.swap(payloads_);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> payloads_;
};

class ListenerTest : public ::testing::Test {
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
    db_ = "listen" + std::to_string(++counter);
    std::string error;
    ASSERT_TRUE(pg_->CreateDatabase(db_, &error)) << error;
    url_ = pg_->Url(db_);
  }

  std::unique_ptr<ChangeListener> Listen(const std::string& url,
                                         std::chrono::milliseconds ping_after = {}) {
    ChangeListenerOptions o;
    o.url = url;
    o.channels = {std::string(kRegistryChannel), "test_sentinel"};
    o.on_notify = [this](const Change& c) { received_.Add(c); };
    o.on_resync = [this] { ++resyncs_seen_; };
    if (ping_after.count() > 0) {
      o.ping_after = ping_after;
    }
    o.max_backoff = std::chrono::milliseconds(200);
    auto l = std::make_unique<ChangeListener>(std::move(o));
    EXPECT_TRUE(l->Start().ok());
    return l;
  }

  void Sql(const std::string& db, const std::string& sql) {
    std::string error;
    ASSERT_TRUE(pg_->Sql(db, sql, nullptr, &error)) << error;
  }

  faas::testing::PostgresProcess* pg_ = nullptr;
  std::string db_;
  std::string url_;
  Received received_;
  std::atomic<int> resyncs_seen_{0};
  faas::testing::TempDir dir_;
};

TEST_F(ListenerTest, DeliversNotificationsAfterAFirstResync) {
  auto listener = Listen(url_);
  // listening() turns true just before the resync runs and is counted: wait for both (under the
  // sanitizers the count lagged the flag).
  ASSERT_TRUE(WaitUntil([&] { return listener->listening() && listener->resyncs() >= 1; }));
  // The first LISTEN resyncs too: whatever changed before it was never announced.
  EXPECT_EQ(listener->resyncs(), 1u);
  EXPECT_EQ(resyncs_seen_.load(), 1);
  Sql(db_, "NOTIFY test_sentinel, 'hello'");
  EXPECT_THAT(received_.TakeUntil("test_sentinel hello"), ElementsAre("test_sentinel hello"));
  listener->Stop();
  EXPECT_FALSE(listener->listening());
}

TEST_F(ListenerTest, RefusesBadChannelNames) {
  ChangeListenerOptions o;
  o.url = url_;
  o.channels = {"faas; DROP TABLE functions"};
  ChangeListener bad(o);
  EXPECT_EQ(bad.Start().code(), StatusCode::kInvalidArgument);
  o.channels.clear();
  ChangeListener none(o);
  EXPECT_EQ(none.Start().code(), StatusCode::kInvalidArgument);
}

TEST_F(ListenerTest, EveryRegistryChangeIsAnnouncedAndFailuresAreNot) {
  Result<std::unique_ptr<Registry>> opened = OpenRegistry(url_, dir_.path() + "/data");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Registry& reg = **opened;
  auto listener = Listen(url_);
  ASSERT_TRUE(WaitUntil([&] { return listener->listening(); }));
  const std::string r = "faas_registry ";

  Result<std::string> sha = reg.PutArtifact("library one");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  ASSERT_TRUE(reg.CreateVersion("fn", *sha, FunctionConfig{}).ok());
  FunctionConfig bigger;
  bigger.memory_mb = 256;
  ASSERT_TRUE(reg.CreateVersion("fn", *sha, bigger).ok());
  ASSERT_TRUE(reg.CreateVersion("fn", *sha, bigger)->unchanged);  // nothing changed: no notice
  ASSERT_TRUE(reg.Rollback("fn", 1).ok());
  EXPECT_FALSE(reg.Rollback("fn", 9).ok());  // rolled back: no notice
  Sql(db_, "NOTIFY test_sentinel, 'versions'");
  EXPECT_THAT(received_.TakeUntil("test_sentinel versions"),
              ElementsAre(r + "function:fn", r + "function:fn", r + "function:fn",
                          "test_sentinel versions"));

  ASSERT_TRUE(reg.AddRoute({"GET", "/users/{id}", "", "fn", 0}).ok());
  EXPECT_FALSE(reg.AddRoute({"GET", "/users/{id}", "", "fn", 0}).ok());  // exists: no notice
  ASSERT_TRUE(reg.DeleteRoute("GET", "/users/{id}", "").ok());
  EXPECT_FALSE(reg.DeleteRoute("GET", "/users/{id}", "").ok());
  Sql(db_, "NOTIFY test_sentinel, 'routes'");
  EXPECT_THAT(received_.TakeUntil("test_sentinel routes"),
              ElementsAre(r + "route:GET /users/{id}", r + "route:GET /users/{id}",
                          "test_sentinel routes"));

  auto key = reg.CreateKey("acme", {}, 0, 0);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  ASSERT_TRUE(reg.RevokeKey(key->first.id).ok());
  ASSERT_TRUE(reg.RevokeKey(key->first.id).ok());  // revoked already: no second notice
  Sql(db_, "NOTIFY test_sentinel, 'keys'");
  EXPECT_THAT(
      received_.TakeUntil("test_sentinel keys"),
      ElementsAre(r + "key:" + key->first.id, r + "key:" + key->first.id, "test_sentinel keys"));

  ASSERT_TRUE(reg.Delete("fn").ok());
  EXPECT_FALSE(reg.Delete("fn").ok());
  Sql(db_, "NOTIFY test_sentinel, 'delete'");
  EXPECT_THAT(received_.TakeUntil("test_sentinel delete"),
              ElementsAre(r + "function:fn", "test_sentinel delete"));
}

// NOTIFY has no replay: a listener that lost its connection reconnects, then resyncs.
TEST_F(ListenerTest, ResyncsAfterThePostgresServerRestarts) {
  faas::testing::PostgresProcess own;
  std::string error;
  ASSERT_TRUE(own.Start(&error)) << error;
  auto listener = Listen(own.Url());
  ASSERT_TRUE(WaitUntil([&] { return listener->resyncs() == 1; }));
  own.Stop();
  ASSERT_TRUE(WaitUntil([&] { return !listener->listening(); })) << "the loss went unnoticed";
  EXPECT_EQ(listener->resyncs(), 1u);
  ASSERT_TRUE(own.Start(&error)) << error;
  ASSERT_TRUE(WaitUntil([&] { return listener->resyncs() == 2; }, std::chrono::seconds(20)))
      << "no resync after the server came back";
  EXPECT_TRUE(listener->listening());
  std::string out;
  ASSERT_TRUE(own.Sql("postgres", "NOTIFY test_sentinel, 'again'", &out, &error)) << error;
  EXPECT_THAT(received_.TakeUntil("test_sentinel again"), ElementsAre("test_sentinel again"));
}

// A server process that stops answering (SIGSTOP: its socket stays open, TCP keeps acknowledging)
// is found out by the listener's ping, which gives up after the statement timeout.
TEST_F(ListenerTest, AHungServerIsNoticedAndLeft) {
  auto listener = Listen(url_, std::chrono::milliseconds(200));
  ASSERT_TRUE(WaitUntil([&] { return listener->resyncs() == 1; }));
  std::string pid_text;
  std::string error;
  ASSERT_TRUE(pg_->Sql(
      db_,
      "SELECT pid FROM pg_stat_activity WHERE datname = '" + db_ + "' AND query LIKE 'LISTEN%'",
      &pid_text, &error))
      << error;
  const pid_t backend = static_cast<pid_t>(std::atoi(pid_text.c_str()));
  ASSERT_GT(backend, 0) << "no LISTEN backend in pg_stat_activity: " << pid_text;
  ASSERT_EQ(::kill(backend, SIGSTOP), 0);
  const auto stopped = Clock::now();
  const bool left = WaitUntil([&] { return listener->resyncs() == 2; }, std::chrono::seconds(30));
  const auto took = Clock::now() - stopped;
  ::kill(backend, SIGCONT);  // it then finds its client gone and exits
  ASSERT_TRUE(left) << "still waiting on the hung backend";
  EXPECT_LT(took, pg::kStatementTimeout + std::chrono::seconds(10));
  // The listener stops promptly whatever it waits for.
  const auto stop_at = Clock::now();
  listener->Stop();
  EXPECT_LT(Clock::now() - stop_at, std::chrono::seconds(1));
}

TEST_F(ListenerTest, StopIsPromptWhileTheServerIsUnreachable) {
  auto listener = Listen("postgresql:///nowhere?host=" + dir_.path() + "/no-such-socket-dir");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // lets it fail and back off
  EXPECT_FALSE(listener->listening());
  EXPECT_EQ(listener->resyncs(), 0u);
  const auto stop_at = Clock::now();
  listener->Stop();
  EXPECT_LT(Clock::now() - stop_at, std::chrono::seconds(1));
}

// Every connection faasd opens carries a statement timeout: a statement that runs too long (or
// waits too long for a lock) fails with a clear error instead of holding its thread.
TEST_F(ListenerTest, AStatementOverTheTimeoutFailsClearly) {
  PGconn* conn = nullptr;
  ASSERT_TRUE(pg::Connect(conn, url_).ok());
  Result<pg::Rows> shown = pg::Exec(conn, "SHOW statement_timeout");
  ASSERT_TRUE(shown.ok()) << shown.status().ToString();
  EXPECT_EQ(shown->Text(0, 0), std::to_string(pg::kStatementTimeout.count()) + "s");
  const auto start = Clock::now();
  Result<pg::Rows> slept = pg::Exec(conn, "SELECT pg_sleep(60)");
  const auto took = Clock::now() - start;
  EXPECT_EQ(slept.status().code(), StatusCode::kDeadlineExceeded) << slept.status().ToString();
  EXPECT_THAT(slept.status().message(), HasSubstr("statement timeout"));
  EXPECT_GE(took, pg::kStatementTimeout - std::chrono::milliseconds(100));
  EXPECT_LT(took, pg::kStatementTimeout + std::chrono::seconds(5));
  // The connection stays usable.
  EXPECT_TRUE(pg::Exec(conn, "SELECT 1").ok());
  PQfinish(conn);
}

// A server that hangs (its backend stopped: the socket stays open, nothing answers) fails a
// statement after the statement timeout and 2 s, instead of blocking the caller forever; the
// next call reconnects.
TEST_F(ListenerTest, AStatementToAHungServerFailsInsteadOfBlocking) {
  PGconn* conn = nullptr;
  ASSERT_TRUE(pg::Connect(conn, url_).ok());
  Result<pg::Rows> pid = pg::Exec(conn, "SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  const auto backend = static_cast<pid_t>(pid->Int(0, 0));
  ASSERT_EQ(::kill(backend, SIGSTOP), 0);
  const auto start = Clock::now();
  Result<pg::Rows> hung = pg::Exec(conn, "SELECT 1");
  const auto took = Clock::now() - start;
  ::kill(backend, SIGCONT);
  EXPECT_EQ(hung.status().code(), StatusCode::kDeadlineExceeded) << hung.status().ToString();
  EXPECT_THAT(hung.status().message(), HasSubstr("no answer"));
  EXPECT_LT(took, pg::kStatementTimeout + std::chrono::seconds(5));
  ASSERT_TRUE(pg::Connect(conn, url_).ok());  // a new connection
  Result<pg::Rows> again = pg::Exec(conn, "SELECT pg_backend_pid()");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(again->Int(0, 0), backend);
  PQfinish(conn);
}

}  // namespace
}  // namespace faas::store
