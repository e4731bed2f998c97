// The gateway's answers while faasd starts or drains (issue #15 item 9), against a real Scheduler
// and real workers: /readyz is 503 not_ready whenever the gateway is not ready, and an invocation
// that reaches a stopped scheduler is 503 shutting_down.
//
// Through a real faasd, /readyz's 503 cannot be seen today: on SIGTERM faasd marks itself not
// ready and closes its listener in the same step (daemon.cc, HttpServer::Drain), so a load
// balancer's probe gets "connection refused". shutting_down is seen over HTTP by a call queued at
// SIGTERM (tests/e2e/drain_test.cc, DrainGrace); here it is pinned at the gateway.
#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/gateway/gateway.h"
#include "faas/gateway/http_server.h"
#include "faas/scheduler/scheduler.h"

#include "http_client.h"
#include "scheduler_support.h"

namespace faas::scheduler::testing {
namespace {

// The gateway behind a real HttpServer on a free loopback port, as faasd wires it.
class Served {
 public:
  explicit Served(Scheduler* s)
      : gw_({.invoker = s,
             .metrics = nullptr,
             .async = nullptr,
             .queue = nullptr,
             .access_log = false,
             .node_id = ""}),
        http_({}, [this](gateway::HttpRequest& q, const gateway::Responder& r) {
          gw_.HandleAsync(q, r);
        }) {
    auto port = http_.Start();
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    port_ = port.ok() ? *port : 0;
  }
  gateway::Gateway& gw() { return gw_; }
  faas::testing::HttpResult Call(const std::string& path) {
    return faas::testing::HttpRequest(port_, "GET", path);
  }

 private:
  gateway::Gateway gw_;
  gateway::HttpServer http_;
  int port_ = 0;
};

std::string ErrorCode(const faas::testing::HttpResult& r) {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

TEST(GatewayDrain, ReadyzIs503NotReadyWhileStartingOrDrainingAndHealthzStays200) {
  Scheduler s(Options());
  Served g(&s);
  // Starting: not ready until faasd says so.
  faas::testing::HttpResult starting = g.Call("/readyz");
  EXPECT_EQ(starting.status, 503) << starting.body;
  EXPECT_EQ(ErrorCode(starting), "not_ready") << starting.body;
  EXPECT_EQ(g.Call("/healthz").status, 200);
  g.gw().SetReady(true);
  EXPECT_EQ(g.Call("/readyz").status, 200);
  // Draining.
  g.gw().SetReady(false);
  faas::testing::HttpResult draining = g.Call("/readyz");
  EXPECT_EQ(draining.status, 503) << draining.body;
  EXPECT_EQ(ErrorCode(draining), "not_ready") << draining.body;
  EXPECT_EQ(g.Call("/healthz").status, 200) << "alive while draining";
}

TEST(GatewayDrain, AnInvocationAfterTheSchedulerStoppedIs503ShuttingDown) {
  if (Cgroups() == nullptr) {
    GTEST_SKIP() << "needs root and cgroups for real workers";
  }
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.is_public = true;
  s.SetFunction(spec);
  Served g(&s);
  g.gw().SetReady(true);
  faas::testing::HttpResult before = g.Call("/function/hello");
  ASSERT_EQ(before.status, 200) << before.body;
  g.gw().SetReady(false);
  s.Shutdown(std::chrono::milliseconds(0));
  faas::testing::HttpResult after = g.Call("/function/hello");
  EXPECT_EQ(after.status, 503) << after.body;
  EXPECT_EQ(ErrorCode(after), "shutting_down") << after.body;
}

}  // namespace
}  // namespace faas::scheduler::testing
