// End-to-end: a sync call lost with its node (SIGKILL while the function runs) is run once more
// on the other node when the function is deployed --idempotent or the request carries
// Idempotency-Key; otherwise it answers 502 node_lost (../shared/CLUSTER.md §5,
// docs/design/0023-shared-limits-and-retries.md). One gateway, two nodes, real PostgreSQL.
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

class IdempotentRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    const std::string store = pg_.Url("faas");
    ASSERT_TRUE(n1_.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1_.Logs();
    ASSERT_TRUE(n2_.Start({"--role", "node", "--store", store, "--node-id", "n2"})) << n2_.Logs();
    ASSERT_TRUE(gw_.Start({"--role", "gateway", "--store", store, "--nodes",
                           n1_.NodesEntry("n1") + "," + n2_.NodesEntry("n2")}))
        << gw_.Logs();
  }

  std::string AllLogs() { return gw_.Logs() + n1_.Logs() + n2_.Logs(); }

  // Calls `path` (a 3 s sleep) through the gateway, SIGKILLs the node that runs it, and returns
  // the answer; *killed gets that node's id.
  HttpResult CallAndKillItsNode(const std::string& path,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                std::string* killed) {
    auto slow = std::async(std::launch::async, [&] {
      return HttpRequest(gw_.http_port(), "GET", path, "", headers, std::chrono::seconds(60));
    });
    FaasdProcess* busy = nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (busy == nullptr && std::chrono::steady_clock::now() < deadline) {
      if (ReadyLoad(n1_.http_port()) > 0) {
        busy = &n1_;
        *killed = "n1";
      } else if (ReadyLoad(n2_.http_port()) > 0) {
        busy = &n2_;
        *killed = "n2";
      }
    }
    EXPECT_NE(busy, nullptr) << AllLogs();
    if (busy != nullptr) {
      busy->Kill9();
    }
    return slow.get();
  }

  PostgresProcess pg_;
  FaasdProcess n1_, n2_, gw_;
};

TEST_F(IdempotentRetryTest, AnIdempotentFunctionIsRunAgainOnTheOtherNode) {
  CommandResult r = gw_.Ctl({"deploy", "slow", FunctionLib("sleep"), "--idempotent"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << AllLogs();
  CommandResult described = gw_.Ctl({"describe", "slow"});
  EXPECT_NE(described.out.find("idempotent"), std::string::npos) << described.out;
  EXPECT_NE(described.out.find("yes"), std::string::npos) << described.out;

  std::string killed;
  HttpResult h = CallAndKillItsNode("/function/slow?ms=3000", {}, &killed);
  ASSERT_FALSE(killed.empty());
  const std::string other = killed == "n1" ? "n2" : "n1";
  EXPECT_EQ(h.status, 200) << h.body << AllLogs();
  EXPECT_EQ(h.Header("x-faas-node"), other);
  // The ledger has both: the lost attempt (INV.1, node_lost, nothing billed) and the run that
  // answered (INV, ok), shipped by the node that ran it.
  const std::string inv = h.Header("x-invocation-id");
  ASSERT_FALSE(inv.empty());
  nlohmann::json rows = nlohmann::json::array();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool both = false;
  while (!both && std::chrono::steady_clock::now() < deadline) {
    CommandResult listed = gw_.Ctl({"invocations", "slow", "-o", "json"});
    nlohmann::json reply = nlohmann::json::parse(listed.out, nullptr, false);
    rows = reply.is_object() && reply.contains("invocations") ? reply["invocations"]
                                                              : nlohmann::json::array();
    int found = 0;
    if (rows.is_array()) {
      for (const auto& row : rows) {
        const std::string id = row.value("invocation_id", std::string());
        found += (id == inv + ".1" && row.value("outcome", "") == "node_lost") ||
                         (id == inv && row.value("outcome", "") == "ok")
                     ? 1
                     : 0;
      }
    }
    both = found == 2;
    if (!both) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling interval
    }
  }
  EXPECT_TRUE(both) << rows.dump() << AllLogs();
  for (const auto& row : rows) {
    if (row.value("outcome", "") == "node_lost") {
      EXPECT_EQ(row.value("billed_ms", -1), 0) << row.dump();
    }
  }
}

TEST_F(IdempotentRetryTest, AnIdempotencyKeyAllowsTheRetry) {
  CommandResult r = gw_.Ctl({"deploy", "slow", FunctionLib("sleep")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << AllLogs();
  std::string killed;
  HttpResult h =
      CallAndKillItsNode("/function/slow?ms=3000", {{"Idempotency-Key", "order-42"}}, &killed);
  ASSERT_FALSE(killed.empty());
  EXPECT_EQ(h.status, 200) << h.body << AllLogs();
  EXPECT_EQ(h.Header("x-faas-node"), killed == "n1" ? "n2" : "n1");
}

TEST_F(IdempotentRetryTest, OtherCallsAnswerNodeLost) {
  CommandResult r = gw_.Ctl({"deploy", "slow", FunctionLib("sleep")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << AllLogs();
  std::string killed;
  HttpResult h = CallAndKillItsNode("/function/slow?ms=3000", {}, &killed);
  ASSERT_FALSE(killed.empty());
  ExpectError(h, 502, "node_lost");
  EXPECT_EQ(h.Header("x-faas-node"), killed);
}

}  // namespace
}  // namespace faas::testing
