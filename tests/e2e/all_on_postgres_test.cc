// End-to-end: two `--role all` faasd on one PostgreSQL store (issue #16; docs/design/
// 0029-trigger-definitions.md). Trigger definitions live in the store, and every faasd sharing it
// follows their changes by NOTIFY, not only gateways: a trigger added through one starts and
// delivers at the other without a restart, a pause through the other reaches the first, and a
// delete takes it away everywhere. The periodic resync is off (an hour), so only the notices can
// make this pass.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;

class AllOnPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd --role all needs root for its sandbox";
    }
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    store_ = pg_.Url("faas");
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- a ----\n%s\n---- b ----\n%s\n", a_.Logs().c_str(),
                   b_.Logs().c_str());
    }
  }

  void Start(FaasdProcess& d, const std::string& id) {
    ASSERT_TRUE(
        d.Start({"--role", "all", "--store", store_, "--node-id", id, "--registry-resync", "1h"}))
        << d.Logs();
  }

  // `d`'s view of trigger `name` (`faasctl trigger list`): null JSON when it runs no such trigger.
  static Json TriggerAt(FaasdProcess& d, const std::string& name) {
    CommandResult r = d.Ctl({"trigger", "list", "-o", "json"});
    Json j = Json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || j.is_discarded()) {
      return Json();
    }
    for (const Json& t : j.value("triggers", Json::array())) {
      if (t.value("name", "") == name) {
        return t;
      }
    }
    return Json();
  }

  PostgresProcess pg_;
  std::string store_;
  FaasdProcess a_, b_;
};

TEST_F(AllOnPostgresTest, ATriggerChangedThroughOneFaasdTakesEffectAtTheOther) {
  Start(a_, "a");
  // b reads the registry's functions when it starts (its scheduler runs only those).
  CommandResult deployed = a_.Ctl({"deploy", "echo", FunctionLib("echo")});
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err;
  Start(b_, "b");
  ASSERT_TRUE(TriggerAt(b_, "feed").is_null());

  CommandResult added = a_.Ctl(
      {"trigger", "add", "feed", "--function", "echo", "--source", "embedded", "--queue", "jobs"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  ASSERT_TRUE(PollUntil([&] { return !TriggerAt(b_, "feed").is_null(); }, std::chrono::seconds(10)))
      << "b never started the trigger a added";
  // The embedded queue is b's own: what is published there, b's copy of the trigger delivers.
  CommandResult published = b_.Ctl({"queue", "publish", "jobs", "hello"});
  ASSERT_EQ(published.exit_code, 0) << published.out << published.err;
  ASSERT_TRUE(PollUntil([&] { return TriggerAt(b_, "feed").value("delivered", 0) >= 1; }))
      << TriggerAt(b_, "feed").dump();

  CommandResult paused = b_.Ctl({"trigger", "pause", "feed"});
  ASSERT_EQ(paused.exit_code, 0) << paused.out << paused.err;
  ASSERT_TRUE(PollUntil([&] { return TriggerAt(a_, "feed").value("state", "") == "paused"; },
                        std::chrono::seconds(10)))
      << TriggerAt(a_, "feed").dump();

  CommandResult deleted = a_.Ctl({"trigger", "delete", "feed"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.out << deleted.err;
  ASSERT_TRUE(PollUntil([&] { return TriggerAt(b_, "feed").is_null(); }, std::chrono::seconds(10)))
      << "b still runs the trigger a deleted";
}

}  // namespace
}  // namespace faas::testing
