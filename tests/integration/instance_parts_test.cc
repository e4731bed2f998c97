// The two parts of an instance on their own (docs/design/0013-instance-split.md), against real
// faas-worker processes: a process started or forked, its CPU account fed by the kernel's
// readings, and exchanges on its channel, each one invocation with no state carried over.
#include <sched.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "channel_exchange.h"
#include "instance_process.h"
#include "integration/scheduler_support.h"
#include "zygote.h"

namespace faas::scheduler {
namespace {

using testing::Options;
using testing::Req;
using testing::Spec;

InvokeResult RunOnce(InstanceProcess* process, AnswerBudget& budget, const std::string& query) {
  InvokeRequest req = Req(query);
  InvokeResult out;
  ChannelExchange(process).Invoke(req, 4096, budget, &out);  // a new exchange every time
  return out;
}

TEST(InstanceParts, ASpawnedProcessServesExchangesAndItsAccountSplitsTheStart) {
  StartTimings timings;
  auto spec = std::make_shared<const FunctionSpec>(Spec("hello"));
  auto process = InstanceProcess::Start(spec, Options(), nullptr, &timings);
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  InstanceProcess& p = **process;
  EXPECT_FALSE(p.Forked());
  EXPECT_TRUE(p.Account().IsReady());
  EXPECT_EQ(p.SenderPid(), -1);  // neither a zygote nor outbound: nobody asked the kernel
  AnswerBudget budget(16u << 20);
  for (int i = 0; i < 3; ++i) {
    InvokeResult r = RunOnce(&p, budget, "");
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
    EXPECT_EQ(r.body, "Hello from faas!\n");
  }
  EXPECT_TRUE(p.Healthy());
  EXPECT_EQ(budget.Used(), 0u);  // every exchange gave back what it took
  // The account was fed at every invocation's start and end: what is left between them is
  // background, taken once.
  p.Account().TakeBackground(std::nullopt);
  EXPECT_EQ(p.Account().TakeBackground(std::nullopt), std::chrono::nanoseconds(0));
}

TEST(InstanceParts, AFailedExchangeBuriesTheProcess) {
  StartTimings timings;
  auto spec = std::make_shared<FunctionSpec>(Spec("sleep"));
  spec->config.timeout = std::chrono::milliseconds(100);
  auto process = InstanceProcess::Start(spec, Options(), nullptr, &timings);
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  AnswerBudget budget(16u << 20);
  InvokeResult r = RunOnce(process->get(), budget, "ms=10000");
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << r.error_message;
  EXPECT_FALSE((*process)->Healthy());
  EXPECT_TRUE((*process)->Exited());
}

TEST(InstanceParts, AZygoteOwnsAProcessAndForksProcessesThatStartInitialised) {
  auto spec = std::make_shared<const FunctionSpec>(Spec("hello"));
  auto zygote = Zygote::Start(spec, Options(), nullptr);
  ASSERT_TRUE(zygote.ok()) << zygote.status().ToString();
  EXPECT_TRUE((*zygote)->Alive());
  EXPECT_GT((*zygote)->HostPid(), 0);
  StartTimings timings;
  auto forked = InstanceProcess::Fork(*zygote, Options(), &timings);
  if (!forked.ok() && forked.status().message().find("could not clone") != std::string::npos) {
    GTEST_SKIP() << "this host gives the zygote no namespaces to clone into: "
                 << forked.status().message();
  }
  ASSERT_TRUE(forked.ok()) << forked.status().ToString();
  EXPECT_TRUE((*forked)->Forked());
  EXPECT_EQ((*forked)->Account().InitCpu(), std::chrono::nanoseconds(0));  // the zygote's
  AnswerBudget budget(16u << 20);
  InvokeResult r = RunOnce(forked->get(), budget, "");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
  EXPECT_EQ(r.body, "Hello from faas!\n");
}

// The pids of `pid`'s children (a spawned worker's keeper has one: the function's process).
std::vector<pid_t> Children(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t child = 0; in >> child;) {
    out.push_back(child);
  }
  return out;
}

// design/0040: every process that runs function code is SCHED_BATCH, so waking it never
// preempts the event loop that wrote its request; the zygote, which forks on request, is not.
TEST(InstanceParts, InstancesRunBatchScheduledAndTheirZygoteDoesNot) {
  for (bool batch : {true, false}) {
    SCOPED_TRACE(batch ? "instance_sched_batch" : "instance_sched_batch = false");
    SchedulerOptions options = Options();
    options.instance_sched_batch = batch;
    const int want = batch ? SCHED_BATCH : SCHED_OTHER;
    auto spec = std::make_shared<const FunctionSpec>(Spec("hello"));
    StartTimings timings;
    auto spawned = InstanceProcess::Start(spec, options, nullptr, &timings);
    ASSERT_TRUE(spawned.ok()) << spawned.status().ToString();
    pid_t keeper = (*spawned)->Pid();
    EXPECT_EQ(::sched_getscheduler(keeper), want);
    std::vector<pid_t> function = Children(keeper);
    ASSERT_EQ(function.size(), 1u) << "the keeper's child runs the function";
    EXPECT_EQ(::sched_getscheduler(function[0]), want);
    AnswerBudget budget(16u << 20);
    EXPECT_EQ(RunOnce(spawned->get(), budget, "").outcome, Outcome::kOk);

    auto zygote = Zygote::Start(spec, options, nullptr);
    ASSERT_TRUE(zygote.ok()) << zygote.status().ToString();
    EXPECT_EQ(::sched_getscheduler((*zygote)->HostPid()), SCHED_OTHER);
    auto forked = InstanceProcess::Fork(*zygote, options, &timings);
    if (!forked.ok() && forked.status().message().find("could not clone") != std::string::npos) {
      GTEST_SKIP() << "this host gives the zygote no namespaces to clone into: "
                   << forked.status().message();
    }
    ASSERT_TRUE(forked.ok()) << forked.status().ToString();
    EXPECT_EQ(::sched_getscheduler((*forked)->Pid()), want);
    EXPECT_EQ(RunOnce(forked->get(), budget, "").outcome, Outcome::kOk);
  }
}

}  // namespace
}  // namespace faas::scheduler
