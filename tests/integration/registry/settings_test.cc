// The settings table (faas/store/settings.h) where trigger definitions live: the same contract on
// SQLite (the embedded queue's queue.db) and PostgreSQL, and what only PostgreSQL does: announce
// every change on faas_registry in the changing transaction, and run its migrations without
// the statement_timeout that bounds every other statement.
#include "faas/store/settings.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/change_listener.h"
#include "faas/store/queue.h"
#include "faas/store/registry.h"

#include "integration/registry/backend_fixture.h"
#include "pg.h"

namespace faas::store {
namespace {

using ::testing::ElementsAre;
using Clock = std::chrono::steady_clock;
using Settings = std::vector<std::pair<std::string, std::string>>;

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

class SettingsTest : public testing::RegistryBackendTest {
 protected:
  void SetUp() override {
    RegistryBackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    OpenSettings();
  }

  // Opens (again) the backend's settings: queue.db's table, or PostgreSQL's.
  void OpenSettings() {
    settings_ = nullptr;
    pg_settings_.reset();
    queue_.reset();
    if (IsPostgres()) {
      auto s = OpenPgSettings(store_);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      pg_settings_ = std::move(s).value();
      settings_ = pg_settings_.get();
      return;
    }
    auto q = Queue::Open(dir_.path() + "/queue.db");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    settings_ = queue_->Settings();
    ASSERT_NE(settings_, nullptr) << "the embedded queue keeps the settings table";
  }

  std::unique_ptr<Queue> queue_;
  std::unique_ptr<SettingsStore> pg_settings_;
  SettingsStore* settings_ = nullptr;
};

TEST_P(SettingsTest, SettingsArePutListedDeletedAndKeptAcrossAReopen) {
  ASSERT_TRUE(settings_->PutSetting("trigger", "b", R"({"v":1})").ok());
  ASSERT_TRUE(settings_->PutSetting("trigger", "a", R"({"v":2})").ok());
  ASSERT_TRUE(settings_->PutSetting("other", "a", "[]").ok());
  ASSERT_TRUE(settings_->PutSetting("trigger", "b", R"({"v":3})").ok());

  EXPECT_EQ(*settings_->ListSettings("trigger"),
            (Settings{{"a", R"({"v":2})"}, {"b", R"({"v":3})"}}));
  EXPECT_EQ(*settings_->ListSettings("other"), (Settings{{"a", "[]"}}));
  EXPECT_TRUE(settings_->ListSettings("none")->empty());

  ASSERT_TRUE(settings_->DeleteSetting("trigger", "a").ok());
  EXPECT_TRUE(settings_->DeleteSetting("trigger", "missing").ok());
  OpenSettings();
  ASSERT_NE(settings_, nullptr);
  EXPECT_EQ(*settings_->ListSettings("trigger"), (Settings{{"b", R"({"v":3})"}}));

  EXPECT_EQ(settings_->PutSetting("", "k", "{}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(settings_->PutSetting("trigger", "", "{}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(settings_->PutSetting("trigger", "k", "{not json").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(settings_->DeleteSetting("", "k").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(settings_->ListSettings("").status().code(), StatusCode::kInvalidArgument);
}

FAAS_REGISTRY_BACKENDS(SettingsTest);

class PgSettingsTest : public SettingsTest {};

// Gateways follow trigger definitions by LISTEN (daemon/src/follow.h): every change that took
// place is announced as "<kind>:<key>" once committed; a delete of nothing is not.
TEST_P(PgSettingsTest, EveryChangeIsAnnouncedOnTheRegistryChannel) {
  std::mutex mu;
  std::vector<std::string> got;
  std::atomic<int> listening{0};
  ChangeListener listener({.url = store_,
                           .channels = {std::string(kRegistryChannel)},
                           .on_notify =
                               [&](const Change& c) {
                                 std::lock_guard lock(mu);
                                 got.push_back(c.payload);
                               },
                           .on_resync = [&] { ++listening; }});
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listening.load() > 0; }));
  auto received = [&] {
    std::lock_guard lock(mu);
    return got;
  };

  ASSERT_TRUE(settings_->PutSetting("trigger", "orders", R"({"name":"orders"})").ok());
  ASSERT_TRUE(settings_->DeleteSetting("trigger", "never-was").ok());
  ASSERT_TRUE(settings_->DeleteSetting("trigger", "orders").ok());
  ASSERT_TRUE(WaitUntil([&] { return received().size() >= 2; })) << received().size();
  // A sentinel after the no-op delete: anything it had sent would have arrived before this.
  ASSERT_TRUE(settings_->PutSetting("trigger", "sentinel", "{}").ok());
  ASSERT_TRUE(WaitUntil([&] { return received().size() >= 3; }));
  EXPECT_THAT(received(), ElementsAre("trigger:orders", "trigger:orders", "trigger:sentinel"));
  listener.Stop();
}

// Every statement is bounded by statement_timeout (pg.h), but a migration is not: a process that
// starts while another migrates a large table waits for it on the migration lock instead of
// failing to start. Here "the other" holds that lock for well past this process's timeout.
TEST_P(PgSettingsTest, AMigrationWaitsForAnotherPastTheStatementTimeout) {
  const std::string fresh = db_ + "_slowmig";
  std::string error;
  ASSERT_TRUE(pg_->CreateDatabase(fresh, &error)) << error;
  PGconn* other = nullptr;
  ASSERT_TRUE(pg::Connect(other, pg_->Url(fresh)).ok());
  ASSERT_TRUE(pg::Exec(other, "SELECT pg_advisory_lock($1::bigint)", {pg::kMigrationLockKey}).ok());

  constexpr int kTimeoutMs = 200;
  const std::string url =
      pg_->Url(fresh) + "&options=-c%20statement_timeout%3D" + std::to_string(kTimeoutMs);
  std::atomic<bool> done{false};
  Status opened;
  std::thread opener([&] {
    opened = OpenPgSettings(url).status();
    done = true;
  });
  // Wait until the opener is queued on the lock, then keep it there five timeouts longer.
  ASSERT_TRUE(WaitUntil([&] {
    auto r = pg::Exec(other,
                      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    return r.ok() && r->Int(0, 0) > 0;
  }));
  const auto waiting_since = Clock::now();
  while (Clock::now() - waiting_since < std::chrono::milliseconds(5 * kTimeoutMs) && !done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the other's long migration
  }
  EXPECT_FALSE(done.load()) << "the opener gave up while the migration lock was held: "
                            << opened.ToString();
  ASSERT_TRUE(
      pg::Exec(other, "SELECT pg_advisory_unlock($1::bigint)", {pg::kMigrationLockKey}).ok());
  opener.join();
  PQfinish(other);
  EXPECT_TRUE(opened.ok()) << opened.ToString();
}

FAAS_REGISTRY_BACKENDS_ONLY_POSTGRES(PgSettingsTest);

}  // namespace
}  // namespace faas::store
