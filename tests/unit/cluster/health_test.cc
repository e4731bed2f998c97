// HealthChecker's policy, driven step by step (Refresh, ProbeRound) with a fake prober and a
// fake clock: fall and rise, passive marks, list changes, and the reported load.
#include "faas/cluster/health.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace faas::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Answers each address with what the test set; an address never set misses.
class FakeProber final : public Prober {
 public:
  // `during` (optional) runs inside each ProbeAll, as if between the probes' send and answers.
  explicit FakeProber(std::map<std::string, ProbeResult>* answers,
                      std::function<void()>* during = nullptr)
      : answers_(answers), during_(during) {}
  std::vector<ProbeResult> ProbeAll(const std::vector<std::string>& addresses,
                                    std::chrono::milliseconds) override {
    if (during_ != nullptr && *during_) {
      (*during_)();
    }
    std::vector<ProbeResult> out;
    for (const std::string& a : addresses) {
      auto it = answers_->find(a);
      out.push_back(it != answers_->end() ? it->second : ProbeResult{false, "unset", -1});
    }
    return out;
  }

 private:
  std::map<std::string, ProbeResult>* answers_;
  std::function<void()>* during_;
};

NodeInfo Node(const std::string& id) {
  NodeInfo n;
  n.id = id;
  n.address = id + ":9100";
  n.http_address = id + ":8080";
  return n;
}

const ProbeResult kPass{true, "", -1};
const ProbeResult kMiss{false, "status 503", -1};

class HealthPolicyTest : public ::testing::Test {
 protected:
  HealthPolicyTest() {
    HealthOptions options;
    options.now = [this] { return now_; };
    checker_ = std::make_unique<HealthChecker>(
        [this]() -> Result<std::vector<NodeInfo>> {
          if (!list_error_.ok()) {
            return list_error_;
          }
          return listed_;
        },
        options, std::make_unique<FakeProber>(&answers_, &during_probe_));
  }

  // Sets every listed node's probe answer.
  void AnswerAll(const ProbeResult& r) {
    for (const NodeInfo& n : listed_) {
      answers_[n.http_address] = r;
    }
  }
  // One probe round, the fake clock a round later.
  void Round() {
    checker_->ProbeRound();
    now_ += std::chrono::milliseconds(250);
  }
  std::vector<std::string> UpIds() const {
    std::vector<std::string> ids;
    for (const NodeInfo& n : checker_->Up()) {
      ids.push_back(n.id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  NodeHealth Health(const std::string& id) const {
    for (NodeHealth& h : checker_->Snapshot()) {
      if (h.info.id == id) {
        return h;
      }
    }
    ADD_FAILURE() << "no node " << id;
    return {};
  }

  faas::Clock::time_point now_{};
  std::vector<NodeInfo> listed_{Node("a"), Node("b")};
  Status list_error_;
  std::map<std::string, ProbeResult> answers_;
  std::function<void()> during_probe_;
  std::unique_ptr<HealthChecker> checker_;
};

TEST_F(HealthPolicyTest, ANewNodeIsOutUntilItsFirstPass) {
  ASSERT_TRUE(checker_->Refresh().ok());
  EXPECT_TRUE(UpIds().empty());
  EXPECT_EQ(Health("a").last_error, "not probed yet");
  answers_["a:8080"] = kPass;
  answers_["b:8080"] = kMiss;
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a"));
  EXPECT_EQ(Health("b").last_error, "status 503");
}

TEST_F(HealthPolicyTest, ThreeMissesTakeANodeOutAndTwoPassesBringItBack) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll(kPass);
  Round();
  ASSERT_THAT(UpIds(), ElementsAre("a", "b"));

  answers_["a:8080"] = {false, "no answer within 200ms", -1};
  Round();
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "b")) << "two misses are not enough";
  EXPECT_EQ(Health("a").misses, 2);
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("b"));
  EXPECT_THAT(Health("a").last_error, HasSubstr("no answer within 200ms (3 misses in a row)"));

  // A miss between passes starts the count again.
  answers_["a:8080"] = kPass;
  Round();
  answers_["a:8080"] = kMiss;
  Round();
  answers_["a:8080"] = kPass;
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("b")) << "passes must be in a row";
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "b"));
}

// The invoker connects to a node when it comes up (SetOnUp): once at its first pass, not on
// every pass after, and again when it comes back from being down; never while it is up.
TEST_F(HealthPolicyTest, OnUpIsCalledEachTimeANodeComesUpAndOnlyThen) {
  std::vector<std::string> came_up;
  checker_->SetOnUp([&](const NodeInfo& node) {
    // Outside the checker's lock: calling back into it does not deadlock.
    EXPECT_FALSE(checker_->Up().empty());
    came_up.push_back(node.id);
  });
  ASSERT_TRUE(checker_->Refresh().ok());
  answers_["a:8080"] = kPass;
  answers_["b:8080"] = kMiss;
  Round();
  Round();
  EXPECT_THAT(came_up, ElementsAre("a"));
  answers_["b:8080"] = kPass;
  Round();
  EXPECT_THAT(came_up, ElementsAre("a", "b"));
  checker_->MarkDown("a", "reset");
  Round();
  EXPECT_THAT(came_up, ElementsAre("a", "b")) << "one pass is not enough after a fall";
  Round();
  EXPECT_THAT(came_up, ElementsAre("a", "b", "a"));
  checker_->SetOnUp(nullptr);
  checker_->MarkDown("a", "reset");
  Round();
  Round();
  EXPECT_THAT(came_up, ElementsAre("a", "b", "a")) << "cleared";
  EXPECT_THAT(UpIds(), ElementsAre("a", "b"));
}

TEST_F(HealthPolicyTest, ARefusedConnectionTakesANodeOutAtOnce) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll(kPass);
  Round();
  answers_["a:8080"] = {false, "connect: Connection refused", -1, /*refused=*/true};
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("b"));
  EXPECT_THAT(Health("a").last_error, HasSubstr("refused: out at once"));
  answers_["a:8080"] = kPass;
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("b")) << "one pass is not enough to come back";
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "b"));
}

TEST_F(HealthPolicyTest, MarkDownTakesANodeOutAtOnceAndTwoPassesBringItBack) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll(kPass);
  Round();
  checker_->MarkDown("b", "connection refused");
  EXPECT_THAT(UpIds(), ElementsAre("a"));
  EXPECT_EQ(Health("b").last_error, "passive: connection refused");
  checker_->MarkDown("nobody", "reset");  // unknown ids are ignored
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a")) << "one pass is not enough after a passive mark";
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "b"));
}

TEST_F(HealthPolicyTest, ListChangesAddRemoveAndMoveNodes) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll(kPass);
  Round();
  ASSERT_THAT(UpIds(), ElementsAre("a", "b"));

  // b leaves the list (drained or dead), c joins, a restarts with a new epoch at its address.
  listed_ = {Node("a"), Node("c")};
  listed_[0].epoch = 7;
  ASSERT_TRUE(checker_->Refresh().ok());
  EXPECT_THAT(UpIds(), ElementsAre("a")) << "c is unknown until probed";
  EXPECT_EQ(checker_->Up()[0].epoch, 7u);
  checker_->MarkDown("b", "reset");  // a removed node: nothing to do
  AnswerAll(kPass);
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "c"));

  // a moves to another address: its health there is unknown.
  listed_[0].http_address = "a2:8080";
  ASSERT_TRUE(checker_->Refresh().ok());
  EXPECT_THAT(UpIds(), ElementsAre("c"));
}

TEST_F(HealthPolicyTest, AFailingListKeepsTheLastOne) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll(kPass);
  Round();
  list_error_ = faas::UnavailableError("postgresql: server closed the connection");
  EXPECT_EQ(checker_->Refresh().code(), StatusCode::kUnavailable);
  Round();
  EXPECT_THAT(UpIds(), ElementsAre("a", "b"));
}

TEST_F(HealthPolicyTest, TheNodesReportedLoadComesFromItsLastPass) {
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll({true, "", 0.75});
  Round();
  std::vector<NodeInfo> up = checker_->Up();
  ASSERT_EQ(up.size(), 2u);
  EXPECT_DOUBLE_EQ(up[0].reported_load, 0.75);
  ASSERT_TRUE(checker_->Refresh().ok());  // a refresh keeps it
  EXPECT_DOUBLE_EQ(checker_->Up()[0].reported_load, 0.75);
  AnswerAll(kPass);  // a node that stops reporting it: unknown again
  Round();
  EXPECT_LT(checker_->Up()[0].reported_load, 0);
}

// Each report counts our calls too: what this gateway had in flight on the node when the probe
// went out (the moment the node's count is about, not when the round came back) is taken out, and
// the rest, smoothed over reports, is everyone else's load (docs/design/0017-balancing.md,
// "Several gateways").
TEST_F(HealthPolicyTest, TakesOurCallsAsEachProbeGoesOutOutOfTheReportedLoad) {
  for (NodeInfo& n : listed_) {
    n.capacity = 10;  // a report of 0.5 is 5 calls
  }
  std::map<std::string, double, std::less<>> ours = {{"a", 3}, {"b", 0}};
  checker_->SetOwnInFlight([&](std::string_view id) { return ours.find(id)->second; });
  during_probe_ = [&] { ours["a"] = 7; };  // calls begin while the probes are out
  ASSERT_TRUE(checker_->Refresh().ok());
  AnswerAll({true, "", 0.5});
  Round();
  auto others = [&](const std::string& id) {
    for (const NodeInfo& n : checker_->Up()) {
      if (n.id == id) {
        return n.others_load;
      }
    }
    ADD_FAILURE() << "no node " << id;
    return -2.0;
  };
  EXPECT_DOUBLE_EQ(others("a"), 2);  // 5 - 3, not 5 - 7
  EXPECT_DOUBLE_EQ(others("b"), 5);
  ASSERT_TRUE(checker_->Refresh().ok());  // a refresh keeps it
  EXPECT_DOUBLE_EQ(others("a"), 2);
  during_probe_ = nullptr;
  answers_["a:8080"] = {true, "", 0.3};  // 7 of ours in a report of 3: others 0, not -4
  Round();
  EXPECT_DOUBLE_EQ(others("a"), 0.7 * 2 + 0.3 * 0);  // smoothed (others_alpha 0.3)
  AnswerAll(kPass);                                  // no load in the answer: unknown
  Round();
  EXPECT_LT(others("a"), 0);
  checker_->SetOwnInFlight(nullptr);  // the invoker went: reports come alone
  AnswerAll({true, "", 0.5});
  Round();
  EXPECT_LT(others("a"), 0);
  EXPECT_DOUBLE_EQ(checker_->Up()[0].reported_load, 0.5);
}

TEST(HealthCheckerLoops, StartRefreshesAndProbesUntilStop) {
  std::map<std::string, ProbeResult> answers{{"a:8080", kPass}};
  std::atomic<int> lists{0};
  HealthOptions options;
  options.interval = std::chrono::milliseconds(5);
  options.refresh = std::chrono::milliseconds(5);
  HealthChecker checker(
      [&]() -> Result<std::vector<NodeInfo>> {
        ++lists;
        return std::vector<NodeInfo>{Node("a")};
      },
      options, std::make_unique<FakeProber>(&answers));
  checker.Start();
  const auto deadline = faas::Clock::now() + std::chrono::seconds(10);
  while ((checker.Up().empty() || lists.load() < 3) && faas::Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll interval
  }
  EXPECT_EQ(checker.Up().size(), 1u);
  EXPECT_GE(lists.load(), 3) << "the list is re-read every `refresh`";
  checker.Stop();
  const int after_stop = lists.load();
  checker.Stop();  // idempotent
  EXPECT_EQ(lists.load(), after_stop);
}

TEST(ParseReportedLoad, ReadsTheLoadNumberAndToleratesItsAbsence) {
  EXPECT_DOUBLE_EQ(ParseReportedLoad(R"({"status":"ready","load":0.42})"), 0.42);
  EXPECT_DOUBLE_EQ(ParseReportedLoad(R"({ "load" :  1.5 , "x": 1})"), 1.5);
  EXPECT_DOUBLE_EQ(ParseReportedLoad(R"({"load":0})"), 0);
  EXPECT_LT(ParseReportedLoad(""), 0);
  EXPECT_LT(ParseReportedLoad("ok"), 0);
  EXPECT_LT(ParseReportedLoad(R"({"status":"ready"})"), 0);
  EXPECT_LT(ParseReportedLoad(R"({"load":"high"})"), 0);
  EXPECT_LT(ParseReportedLoad(R"({"load":-1})"), 0);
  EXPECT_LT(ParseReportedLoad(R"({"load":)"), 0);
}

}  // namespace
}  // namespace faas::cluster
