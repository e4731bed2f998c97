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

#include "scheduler_support.h"

namespace faas::scheduler::testing {
namespace {

gateway::HttpResponse Call(gateway::Gateway& gw, const std::string& path) {
  gateway::HttpRequest q;
  q.method = "GET";
  q.target = path;
  q.path = path;
  q.remote_addr = "127.0.0.1:1";
  gateway::HttpResponse r;
  gw.Handle(q, r);
  return r;
}

gateway::GatewayOptions GatewayOn(Scheduler* s) {
  gateway::GatewayOptions o;
  o.scheduler = s;
  o.access_log = false;
  return o;
}

std::string ErrorCode(const gateway::HttpResponse& r) {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

TEST(GatewayDrain, ReadyzIs503NotReadyWhileStartingOrDrainingAndHealthzStays200) {
  Scheduler s(Options());
  gateway::Gateway gw(GatewayOn(&s));
  // Starting: not ready until faasd says so.
  gateway::HttpResponse starting = Call(gw, "/readyz");
  EXPECT_EQ(starting.status, 503) << starting.body;
  EXPECT_EQ(ErrorCode(starting), "not_ready") << starting.body;
  EXPECT_EQ(Call(gw, "/healthz").status, 200);
  gw.SetReady(true);
  EXPECT_EQ(Call(gw, "/readyz").status, 200);
  // Draining.
  gw.SetReady(false);
  gateway::HttpResponse draining = Call(gw, "/readyz");
  EXPECT_EQ(draining.status, 503) << draining.body;
  EXPECT_EQ(ErrorCode(draining), "not_ready") << draining.body;
  EXPECT_EQ(Call(gw, "/healthz").status, 200) << "alive while draining";
}

TEST(GatewayDrain, AnInvocationAfterTheSchedulerStoppedIs503ShuttingDown) {
  if (Cgroups() == nullptr) {
    GTEST_SKIP() << "needs root and cgroups for real workers";
  }
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.is_public = true;
  s.SetFunction(spec);
  gateway::Gateway gw(GatewayOn(&s));
  gw.SetReady(true);
  gateway::HttpResponse before = Call(gw, "/function/hello");
  ASSERT_EQ(before.status, 200) << before.body;
  gw.SetReady(false);
  s.Shutdown(std::chrono::milliseconds(0));
  gateway::HttpResponse after = Call(gw, "/function/hello");
  EXPECT_EQ(after.status, 503) << after.body;
  EXPECT_EQ(ErrorCode(after), "shutting_down") << after.body;
}

}  // namespace
}  // namespace faas::scheduler::testing
