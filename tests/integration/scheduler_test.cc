// The scheduler against real faas-worker processes and real example functions.
#include "faas/scheduler/scheduler.h"

#include "faas/sandbox/cgroup.h"

#include <signal.h>

#include <chrono>
#include <future>
#include <vector>

#include <gtest/gtest.h>

namespace faas::scheduler {
namespace {

using std::chrono::milliseconds;

FunctionSpec Spec(const std::string& fn, uint32_t version = 1) {
  FunctionSpec s;
  s.name = fn;
  s.version = version;
  s.library_path = std::string(FAAS_TEST_FUNCTIONS_DIR) + "/lib" + fn + ".so";
  return s;
}

sandbox::CgroupRoot* Cgroups() {
  static auto root = sandbox::CgroupRoot::Create({});
  return root.ok() ? root->get() : nullptr;
}

SchedulerOptions Options() {
  SchedulerOptions o;
  o.cgroups = Cgroups();
  o.worker_path = std::string(FAAS_TEST_BIN_DIR) + "/faas-worker";
  o.reap_interval = milliseconds(20);
  return o;
}

InvokeRequest Req(const std::string& query = "") {
  InvokeRequest r;
  r.invocation_id = "test";
  r.method = "GET";
  r.query = query;
  return r;
}

// Polls `cond` until it holds or 10 s pass.
template <typename F>
bool Eventually(F cond) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::yield();
  }
  return cond();
}

TEST(Scheduler, ReusesAWarmInstanceAfterTheColdStart) {
  Scheduler s(Options());
  s.SetFunction(Spec("hello"));
  InvokeResult a = s.Invoke("hello", Req());
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error_message;
  EXPECT_TRUE(a.cold_start);
  EXPECT_GT(a.timings.spawn.count(), 0);
  EXPECT_EQ(a.body, "Hello from faas!\n");
  InvokeResult b = s.Invoke("hello", Req());
  EXPECT_EQ(b.outcome, Outcome::kOk);
  EXPECT_FALSE(b.cold_start);
  EXPECT_EQ(s.Stats("hello").idle, 1u);
  EXPECT_EQ(s.Stats("hello").cold_starts, 1u);
}

TEST(Scheduler, MeasuresCpuFromTheKernel) {
  Scheduler s(Options());
  s.SetFunction(Spec("burn"));
  InvokeResult r = s.Invoke("burn", Req("ms=50"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
  EXPECT_GE(r.cpu, milliseconds(50));
  EXPECT_LT(r.cpu, milliseconds(500));
  s.SetFunction(Spec("sleep"));
  InvokeResult cold = s.Invoke("sleep", Req("ms=1"));
  ASSERT_TRUE(cold.cold_start);
  EXPECT_GT(cold.cpu, std::chrono::microseconds(100));  // a cold start pays for starting up
  InvokeResult idle = s.Invoke("sleep", Req("ms=50"));
  ASSERT_FALSE(idle.cold_start);
  ASSERT_EQ(idle.outcome, Outcome::kOk);
  EXPECT_LT(idle.cpu, milliseconds(10));  // waiting is not billed as CPU
}

TEST(Scheduler, KillsAtTheDeadlineAndReplacesTheInstance) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("sleep");
  spec.config.timeout = milliseconds(100);
  s.SetFunction(spec);
  InvokeResult r = s.Invoke("sleep", Req("ms=10000"));
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  EXPECT_GE(r.timings.exec, milliseconds(100));
  EXPECT_LT(r.timings.exec, milliseconds(200));
  EXPECT_EQ(s.Stats("sleep").idle, 0u);
  InvokeResult next = s.Invoke("sleep", Req("ms=1"));
  EXPECT_EQ(next.outcome, Outcome::kOk);
  EXPECT_TRUE(next.cold_start);
}

TEST(Scheduler, ACrashNamesTheSignalAndCapturesLogs) {
  Scheduler s(Options());
  s.SetFunction(Spec("crash"));
  InvokeResult r = s.Invoke("crash", Req());
  EXPECT_EQ(r.outcome, Outcome::kCrashed);
  EXPECT_NE(r.error_message.find("SIGSEGV"), std::string::npos) << r.error_message;
  s.SetFunction(Spec("fail"));
  InvokeResult f = s.Invoke("fail", Req());
  EXPECT_EQ(f.outcome, Outcome::kFunctionError);
  EXPECT_NE(f.logs.find("refusing invocation test"), std::string::npos) << f.logs;
}

TEST(Scheduler, WaitsForCapacityAtMaxInstancesThenGivesUp) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("sleep");
  spec.config.max_instances = 1;
  spec.config.timeout = milliseconds(2000);
  s.SetFunction(spec);
  auto busy = std::async(std::launch::async, [&] { return s.Invoke("sleep", Req("ms=300")); });
  ASSERT_TRUE(Eventually([&] { return s.Stats("sleep").busy == 1; }));
  // Waits for the busy instance, then reuses it.
  InvokeResult waited = s.Invoke("sleep", Req("ms=1"));
  EXPECT_EQ(waited.outcome, Outcome::kOk);
  EXPECT_FALSE(waited.cold_start);
  EXPECT_GE(waited.timings.queue, milliseconds(100));
  EXPECT_EQ(busy.get().outcome, Outcome::kOk);

  spec.config.timeout = milliseconds(100);  // the capacity wait is bounded by the timeout
  spec.version = 2;
  s.SetFunction(spec);
  auto hog = std::async(std::launch::async, [&] { return s.Invoke("sleep", Req("ms=90")); });
  ASSERT_TRUE(Eventually([&] { return s.Stats("sleep").busy == 1; }));
  InvokeResult refused = s.Invoke("sleep", Req("ms=1"));
  hog.get();
  // Either it waited for the hog to finish (ok) or gave up: never more than one instance.
  EXPECT_TRUE(refused.outcome == Outcome::kOk || refused.outcome == Outcome::kNoCapacity);
}

TEST(Scheduler, AFullQueueAnswersNoCapacityAtOnce) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("sleep");
  spec.config.max_instances = 1;
  spec.config.queue_depth = 1;
  spec.config.timeout = milliseconds(5000);
  s.SetFunction(spec);
  auto busy = std::async(std::launch::async, [&] { return s.Invoke("sleep", Req("ms=500")); });
  ASSERT_TRUE(Eventually([&] { return s.Stats("sleep").busy == 1; }));
  auto queued = std::async(std::launch::async, [&] { return s.Invoke("sleep", Req("ms=1")); });
  ASSERT_TRUE(Eventually([&] { return s.Stats("sleep").waiting == 1; }));
  auto t0 = Clock::now();
  InvokeResult refused = s.Invoke("sleep", Req("ms=1"));
  EXPECT_EQ(refused.outcome, Outcome::kNoCapacity);
  EXPECT_LT(Clock::now() - t0, milliseconds(100)) << "a full queue answers at once";
  EXPECT_NE(refused.error_message.find("already waiting"), std::string::npos)
      << refused.error_message;
  EXPECT_EQ(busy.get().outcome, Outcome::kOk);
  EXPECT_EQ(queued.get().outcome, Outcome::kOk);
}

TEST(Scheduler, PrewarmStartsIdleInstancesUpToMaxInstances) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.max_instances = 3;
  s.SetFunction(spec);
  auto started = s.Prewarm("hello", 5);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(*started, 3u);
  EXPECT_EQ(s.Stats("hello").idle, 3u);
  EXPECT_FALSE(s.Invoke("hello", Req()).cold_start);
  EXPECT_EQ(s.Prewarm("nope", 1).status().code(), StatusCode::kNotFound);
}

TEST(Scheduler, AFreshRequestForcesAColdStartEvenWithIdleInstances) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.max_instances = 1;
  s.SetFunction(spec);
  ASSERT_EQ(s.Invoke("hello", Req()).outcome, Outcome::kOk);  // one idle instance, at max
  InvokeRequest fresh = Req();
  fresh.fresh = true;
  InvokeResult r = s.Invoke("hello", fresh);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(s.Stats("hello").idle, 0u);  // discarded after use
}

TEST(Scheduler, FreshIsolationNeverReusesAnInstance) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.isolation = "fresh";
  s.SetFunction(spec);
  EXPECT_TRUE(s.Invoke("hello", Req()).cold_start);
  EXPECT_TRUE(s.Invoke("hello", Req()).cold_start);
  EXPECT_EQ(s.Stats("hello").idle, 0u);
}

TEST(Scheduler, IdleInstancesStopAfterTheirTtlButMinWarmStays) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("hello");
  spec.config.idle_ttl = milliseconds(50);
  s.SetFunction(spec);
  ASSERT_EQ(s.Invoke("hello", Req()).outcome, Outcome::kOk);
  EXPECT_TRUE(Eventually([&] { return s.Stats("hello").idle == 0; }));

  spec.config.min_warm = 2;
  spec.version = 2;
  s.SetFunction(spec);
  EXPECT_TRUE(Eventually([&] { return s.Stats("hello").idle == 2; }));
  InvokeResult r = s.Invoke("hello", Req());
  EXPECT_FALSE(r.cold_start);
}

TEST(Scheduler, NewVersionRetiresOldInstances) {
  Scheduler s(Options());
  s.SetFunction(Spec("hello", 1));
  ASSERT_EQ(s.Invoke("hello", Req()).outcome, Outcome::kOk);
  FunctionSpec v2 = Spec("echo", 2);
  v2.name = "hello";
  s.SetFunction(v2);
  InvokeResult r = s.Invoke("hello", Req());
  EXPECT_TRUE(r.cold_start);
  EXPECT_EQ(r.version, 2u);
  s.RemoveFunction("hello");
  EXPECT_EQ(s.Invoke("hello", Req()).outcome, Outcome::kNotFound);
}

TEST(Scheduler, ProbeReportsInitFailures) {
  Scheduler s(Options());
  FunctionSpec bad = Spec("hello");
  bad.library_path = std::string(FAAS_TEST_TESTDATA_DIR) + "/libinitfail.so";
  Status st = s.Probe(bad);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("faas_init returned 7"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cannot open my model file"), std::string::npos) << st.message();
  EXPECT_TRUE(s.Probe(Spec("hello")).ok());
}

}  // namespace
}  // namespace faas::scheduler
