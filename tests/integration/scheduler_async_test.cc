// Scheduler::InvokeAsync against real faas-worker processes, driven from a real EventLoop
// thread (docs/design/0006-warm-path-reactor.md): the warm path in the loop, the queue's
// hand-off, deadlines as timers, crashes and shutdown.
#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "faas/base/event_loop.h"
#include "faas/sandbox/cgroup.h"
#include "faas/scheduler/scheduler.h"

#include "integration/scheduler_support.h"
#include "subprocess.h"

namespace faas::scheduler {
namespace {

using std::chrono::milliseconds;

using faas::testing::ReadFileOrEmpty;
using testing::Options;
using testing::Req;
using testing::Spec;

// An EventLoop on its own thread, stopped and joined at the end of the test.
class LoopThread {
 public:
  LoopThread() : loop_(std::move(EventLoop::Create().value())), thread_([this] { loop_->Run(); }) {}
  ~LoopThread() {
    loop_->Stop();
    thread_.join();
  }
  EventLoop* get() { return loop_.get(); }

  // Calls InvokeAsync on the loop's thread; the future is ready when `done` ran, and says
  // whether it ran on the loop's thread.
  std::future<std::pair<InvokeResult, bool>> Invoke(Scheduler& s, const std::string& name,
                                                    InvokeRequest req) {
    auto promise = std::make_shared<std::promise<std::pair<InvokeResult, bool>>>();
    auto future = promise->get_future();
    auto box = std::make_shared<InvokeRequest>(std::move(req));
    EventLoop* loop = loop_.get();
    loop->Post([&s, name, box, loop, promise] {
      s.InvokeAsync(name, std::move(*box), loop, [loop, promise](InvokeResult r) {
        promise->set_value({std::move(r), loop->InLoopThread()});
      });
    });
    return future;
  }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

constexpr auto kWait = std::chrono::seconds(20);

// Deploys `fn` limited to one instance with `timeout`, and starts that instance.
void OneWarmInstance(Scheduler& s, const std::string& fn, std::chrono::milliseconds timeout,
                     void (*adjust)(FunctionSpec&) = nullptr) {
  FunctionSpec spec = Spec(fn);
  spec.config.max_instances = 1;
  spec.config.timeout = timeout;
  if (adjust != nullptr) {
    adjust(spec);
  }
  s.SetFunction(spec);
  auto n = s.Prewarm(fn, 1);
  ASSERT_TRUE(n.ok() && *n == 1) << n.status().ToString();
}

// Starts one idle instance; how many started (0 on error).
uint32_t Prewarmed(Scheduler& s, const std::string& name) {
  auto n = s.Prewarm(name, 1);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : 0;
}

InvokeResult Get(std::future<std::pair<InvokeResult, bool>>& f) {
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "the invocation never completed";
    return {};
  }
  auto [r, on_loop] = f.get();
  EXPECT_TRUE(on_loop) << "done runs on the loop's thread";
  return r;
}

TEST(SchedulerAsync, ColdThenWarmBothAnswerOnTheLoopThread) {
  Scheduler s(Options());
  s.SetFunction(Spec("hello"));
  LoopThread loop;
  auto cold = loop.Invoke(s, "hello", Req());
  InvokeResult a = Get(cold);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error_message;
  EXPECT_TRUE(a.cold_start);
  auto warm = loop.Invoke(s, "hello", Req());
  InvokeResult b = Get(warm);
  ASSERT_EQ(b.outcome, Outcome::kOk) << b.error_message;
  EXPECT_FALSE(b.cold_start);
  EXPECT_EQ(b.body, "Hello from faas!\n");
  EXPECT_GT(b.timings.exec.count(), 0);
  EXPECT_EQ(s.Stats("hello").idle, 1u);
  EXPECT_EQ(s.Stats("hello").invocations, 2u);
}

// A cold start that finds a parked instance takes it on the loop, without a blocking thread
// (docs/design/0010, "Parked instances"): calls in a row of an `isolation: fresh` function, whose
// zygote keeps two parked, each take one, oldest first, and each parked one ends after its call.
TEST(SchedulerAsync, FreshCallsInARowTakeTheParkedInstancesOnTheLoop) {
  SchedulerOptions o = Options();
  o.parked_fresh = 2;
  Scheduler s(o);
  FunctionSpec spec = Spec("hello");
  spec.config.isolation = "fresh";
  s.SetFunction(spec);
  ASSERT_TRUE(testing::Eventually([&] { return s.Stats("hello").parked == 2; }));
  const pid_t first = s.Stats("hello").parked_pid;
  LoopThread loop;
  auto a = loop.Invoke(s, "hello", Req());
  InvokeResult ra = Get(a);
  ASSERT_EQ(ra.outcome, Outcome::kOk) << ra.error_message;
  EXPECT_TRUE(ra.cold_start);
  EXPECT_TRUE(ra.forked);
  EXPECT_EQ(ra.timings.load.count(), 0);
  EXPECT_EQ(ra.body, "Hello from faas!\n");
  // The oldest was taken; the second is the oldest now, whatever the refill parked behind it.
  const pid_t second = s.Stats("hello").parked_pid;
  EXPECT_GT(second, 0);
  EXPECT_NE(second, first);
  auto b = loop.Invoke(s, "hello", Req());
  InvokeResult rb = Get(b);
  ASSERT_EQ(rb.outcome, Outcome::kOk) << rb.error_message;
  EXPECT_TRUE(rb.cold_start);
  EXPECT_TRUE(rb.forked);
  for (pid_t p : {first, second}) {
    EXPECT_TRUE(testing::Eventually([&] { return ::kill(p, 0) != 0; }))
        << "parked pid " << p << " was not taken by a call";
  }
  EXPECT_TRUE(testing::Eventually([&] { return s.Stats("hello").parked == 2; })) << "refilled";
}

// The pid of the one instance (not a zygote: i-N, not z-N) in the cgroup level of function `fn`
// other than `parked` (the zygote's parked instance, which serves no call yet), "" while there is
// none.
std::string InstancePid(const std::string& fn, pid_t parked) {
  std::string found;
  DIR* proc = ::opendir("/proc");
  while (dirent* e = proc != nullptr ? ::readdir(proc) : nullptr) {
    const std::string pid = e->d_name;
    if (pid.find_first_not_of("0123456789") == std::string::npos && pid != std::to_string(parked) &&
        ReadFileOrEmpty("/proc/" + pid + "/cgroup").find("/f-" + fn + "/i-") != std::string::npos) {
      found = pid;
    }
  }
  if (proc != nullptr) {
    ::closedir(proc);
  }
  return found;
}

// The event-loop path keeps the channel registered between calls, and looks for bytes the worker
// wrote while idle only when its loop saw an event then: a frame written while idle, after the
// call it belonged to was answered, must still be caught before the next request is written.
TEST(SchedulerAsync, AFrameWrittenWhileIdleIsCaughtByTheLoopBeforeTheNextRequest) {
  if (testing::Cgroups() == nullptr) {
    GTEST_SKIP() << "needs cgroups (root) to find the instance's process";
  }
  Scheduler s(Options());
  FunctionSpec spec = Spec("forge");
  spec.library_path = std::string(FAAS_TEST_TESTDATA_DIR) + "/libforge.so";
  spec.config.max_instances = 1;
  s.SetFunction(spec);
  LoopThread loop;
  InvokeRequest first = Req();
  first.invocation_id = "first";
  auto a = loop.Invoke(s, "forge", std::move(first));
  InvokeResult forged = Get(a);
  ASSERT_EQ(forged.outcome, Outcome::kOk) << forged.error_message;
  EXPECT_EQ(forged.body, "forged");  // its own early frame, with its own id
  // The worker burns 50 ms after its forged frame, then writes its real answer while idle.
  std::string pid;
  ASSERT_TRUE(testing::Eventually([&] {
    pid = InstancePid("forge", s.Stats("forge").parked_pid);
    const std::string stat = ReadFileOrEmpty("/proc/" + pid + "/stat");
    const std::size_t paren = stat.rfind(')');
    const long long cpu_ns = std::atoll(ReadFileOrEmpty("/proc/" + pid + "/schedstat").c_str());
    return !pid.empty() && paren != std::string::npos && paren + 2 < stat.size() &&
           stat[paren + 2] == 'S' && cpu_ns >= 50'000'000;
  })) << "the instance never went idle after its real answer (pid "
      << pid << ")";
  InvokeRequest second = Req();
  second.invocation_id = "second";
  auto b = loop.Invoke(s, "forge", std::move(second));
  InvokeResult r = Get(b);
  EXPECT_NE(r.body, "real") << "the leftover frame answered the next caller";
  EXPECT_EQ(r.outcome, Outcome::kCrashed) << r.error_message;
  EXPECT_NE(r.error_message.find("while idle"), std::string::npos) << r.error_message;
  // A new instance serves the next call.
  InvokeRequest third = Req();
  third.invocation_id = "third";
  auto c = loop.Invoke(s, "forge", std::move(third));
  EXPECT_EQ(Get(c).body, "forged");
}

TEST(SchedulerAsync, BigBodiesCrossTheChannelBothWays) {
  Scheduler s(Options());
  s.SetFunction(Spec("echo"));
  ASSERT_EQ(Prewarmed(s, "echo"), 1u);
  LoopThread loop;
  // Bigger than a unix socket's buffer: the frame is written and read in many steps.
  std::string body(3u << 20, 'x');
  for (std::size_t i = 0; i < body.size(); i += 4099) {
    body[i] = static_cast<char>('a' + i % 26);
  }
  auto f = loop.Invoke(s, "echo", Req("", body));
  InvokeResult r = Get(f);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
  EXPECT_FALSE(r.cold_start);
  EXPECT_NE(r.body.find(body), std::string::npos) << "echo returns the body in its JSON";
}

TEST(SchedulerAsync, KillsAtTheDeadlineAndTheNextCallStartsAfresh) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("sleep");
  spec.config.timeout = milliseconds(100);
  s.SetFunction(spec);
  ASSERT_EQ(Prewarmed(s, "sleep"), 1u);
  LoopThread loop;
  auto f = loop.Invoke(s, "sleep", Req("ms=10000"));
  InvokeResult r = Get(f);
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << r.error_message;
  EXPECT_FALSE(r.cold_start);
  EXPECT_GE(r.timings.exec, milliseconds(100));
  EXPECT_LT(r.timings.exec, milliseconds(1000));
  auto next = loop.Invoke(s, "sleep", Req("ms=1"));
  InvokeResult n = Get(next);
  EXPECT_EQ(n.outcome, Outcome::kOk) << n.error_message;
  EXPECT_TRUE(n.cold_start);
}

TEST(SchedulerAsync, ACpuBurnerStopsAtItsCpuLimit) {
  Scheduler s(Options());
  FunctionSpec spec = Spec("burn");
  spec.config.timeout = milliseconds(5000);
  spec.config.cpu_limit = milliseconds(100);
  s.SetFunction(spec);
  ASSERT_EQ(Prewarmed(s, "burn"), 1u);
  LoopThread loop;
  auto f = loop.Invoke(s, "burn", Req("ms=3000"));
  InvokeResult r = Get(f);
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << r.error_message;
  EXPECT_NE(r.error_message.find("CPU-time limit"), std::string::npos) << r.error_message;
  EXPECT_GE(r.cpu, milliseconds(100));
  EXPECT_LT(r.timings.exec, milliseconds(2000));
}

TEST(SchedulerAsync, ACrashFailsOnlyItsOwnInvocation) {
  Scheduler s(Options());
  s.SetFunction(Spec("crash"));
  s.SetFunction(Spec("hello"));
  ASSERT_EQ(Prewarmed(s, "crash"), 1u);
  ASSERT_EQ(Prewarmed(s, "hello"), 1u);
  LoopThread loop;
  auto crash = loop.Invoke(s, "crash", Req());
  auto hello = loop.Invoke(s, "hello", Req());
  InvokeResult c = Get(crash);
  EXPECT_EQ(c.outcome, Outcome::kCrashed);
  EXPECT_NE(c.error_message.find("SIGSEGV"), std::string::npos) << c.error_message;
  EXPECT_EQ(Get(hello).outcome, Outcome::kOk);
}

TEST(SchedulerAsync, QueuedCallsAreHandedTheFreedInstanceInOrder) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(5000));
  LoopThread loop;
  std::vector<std::future<std::pair<InvokeResult, bool>>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(loop.Invoke(s, "sleep", Req("ms=20")));
  }
  std::chrono::nanoseconds last_queue{0};
  for (auto& f : calls) {
    InvokeResult r = Get(f);
    EXPECT_EQ(r.outcome, Outcome::kOk) << r.error_message;
    EXPECT_FALSE(r.cold_start) << "one instance serves them all, one after another";
    EXPECT_GE(r.timings.queue, last_queue) << "first come, first served";
    last_queue = r.timings.queue;
  }
  EXPECT_EQ(s.Stats("sleep").cold_starts, 0u);
  EXPECT_EQ(s.Stats("sleep").waiting, 0u);
}

// Pipelining (--pipeline-depth 1, design/0015) never queues a call behind a fresh one: a fresh
// call's instance serves no other call. Here the call behind waits in the queue until the fresh
// instance is gone, then starts its own.
TEST(SchedulerAsync, PipeliningNeverQueuesACallBehindAFreshOne) {
  SchedulerOptions options = Options();
  options.pipeline_depth = 1;
  Scheduler s(std::move(options));
  OneWarmInstance(s, "sleep", milliseconds(5000));
  LoopThread loop;
  for (int i = 0; i < 10; ++i) {  // short calls: the pool admits pipelining
    auto f = loop.Invoke(s, "sleep", Req("ms=0"));
    InvokeResult r = Get(f);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
  }
  InvokeRequest fresh = Req("ms=100");
  fresh.fresh = true;
  auto first = loop.Invoke(s, "sleep", std::move(fresh));
  auto second = loop.Invoke(s, "sleep", Req("ms=0"));
  InvokeResult a = Get(first);
  InvokeResult b = Get(second);
  EXPECT_EQ(a.outcome, Outcome::kOk) << a.error_message;
  EXPECT_EQ(b.outcome, Outcome::kOk) << b.error_message;
  EXPECT_TRUE(a.cold_start) << "a fresh call gets a new instance";
  EXPECT_TRUE(b.cold_start) << "the call after it ran on the fresh call's instance";
}

// With pipelining on, the worker reports its handler's own wall time (what BusyFirst averages,
// design/0042): a 20 ms sleep reports at least 20 ms, and no more than faasd's exec time. Off,
// nothing is reported.
TEST(SchedulerAsync, TheWorkerReportsItsHandlersTimeOnlyWithPipelining) {
  for (uint32_t depth : {0u, 4u}) {
    SchedulerOptions options = Options();
    options.pipeline_depth = depth;
    Scheduler s(std::move(options));
    OneWarmInstance(s, "sleep", milliseconds(5000));
    LoopThread loop;
    auto f = loop.Invoke(s, "sleep", Req("ms=20"));
    InvokeResult r = Get(f);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
    if (depth == 0) {
      EXPECT_EQ(r.reported_handler.count(), -1);
    } else {
      EXPECT_GE(r.reported_handler, milliseconds(20));
      EXPECT_LE(r.reported_handler, r.timings.exec);
    }
  }
}

TEST(SchedulerAsync, BlockedAndAsyncWaitersBothGetTheInstance) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(5000));
  LoopThread loop;
  std::vector<std::future<std::pair<InvokeResult, bool>>> async_calls;
  std::vector<std::future<InvokeResult>> blocked;
  for (int i = 0; i < 4; ++i) {
    async_calls.push_back(loop.Invoke(s, "sleep", Req("ms=10")));
    blocked.push_back(
        std::async(std::launch::async, [&s] { return s.Invoke("sleep", Req("ms=10")); }));
  }
  for (auto& f : async_calls) {
    EXPECT_EQ(Get(f).outcome, Outcome::kOk);
  }
  for (auto& f : blocked) {
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    EXPECT_EQ(f.get().outcome, Outcome::kOk);
  }
}

// One queue for both kinds of callers (docs/design/0012-scheduler-pool.md): the freed instance
// goes to whoever arrived first, whether it waits on an event loop or blocks in Invoke.
TEST(SchedulerAsync, BlockedAndAsyncWaitersAreServedInArrivalOrder) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(5000));
  LoopThread loop;
  auto hog = loop.Invoke(s, "sleep", Req("ms=300"));
  ASSERT_TRUE(testing::Eventually([&] { return s.Stats("sleep").busy == 1; }));
  const std::vector<bool> blocking = {false, false, true, true, false, true};
  std::vector<Clock::time_point> arrived;
  std::vector<std::future<std::pair<InvokeResult, bool>>> async_calls;
  std::vector<std::future<InvokeResult>> blocked;
  for (std::size_t i = 0; i < blocking.size(); ++i) {
    InvokeRequest req = Req("ms=20");
    arrived.push_back(req.arrived);
    if (blocking[i]) {
      blocked.push_back(std::async(std::launch::async, [&s, r = std::move(req)]() mutable {
        return s.Invoke("sleep", std::move(r));
      }));
    } else {
      async_calls.push_back(loop.Invoke(s, "sleep", std::move(req)));
    }
    // The next caller arrives only once this one is queued.
    ASSERT_TRUE(testing::Eventually([&] { return s.Stats("sleep").waiting == i + 1; }));
  }
  std::vector<Clock::time_point> granted;
  std::size_t next_async = 0;
  std::size_t next_blocked = 0;
  for (std::size_t i = 0; i < blocking.size(); ++i) {
    InvokeResult r;
    if (blocking[i]) {
      ASSERT_EQ(blocked[next_blocked].wait_for(kWait), std::future_status::ready);
      r = blocked[next_blocked++].get();
    } else {
      r = Get(async_calls[next_async++]);
    }
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error_message;
    EXPECT_FALSE(r.cold_start) << "the one instance serves every waiter";
    granted.push_back(arrived[i] + r.timings.queue);
  }
  for (std::size_t i = 1; i < granted.size(); ++i) {
    EXPECT_LT(granted[i - 1], granted[i])
        << "waiter " << i << " was served before waiter " << i - 1 << ", who arrived first";
  }
  EXPECT_EQ(Get(hog).outcome, Outcome::kOk);
}

TEST(SchedulerAsync, TheQueueTimesOutWithNoCapacity) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(3000),
                  [](FunctionSpec& f) { f.config.queue_timeout = milliseconds(100); });
  LoopThread loop;
  auto hog = loop.Invoke(s, "sleep", Req("ms=1500"));
  auto waiting = loop.Invoke(s, "sleep", Req("ms=1"));
  InvokeResult w = Get(waiting);
  EXPECT_EQ(w.outcome, Outcome::kNoCapacity) << w.error_message;
  // The scheduler's own queue time: the 100 ms bound, with slack proportional to it.
  EXPECT_GE(w.timings.queue, milliseconds(100));
  EXPECT_LT(w.timings.queue, milliseconds(100 * 3));
  EXPECT_EQ(hog.wait_for(milliseconds(0)), std::future_status::timeout)
      << "it gave up only when the hog finished";
  EXPECT_EQ(Get(hog).outcome, Outcome::kOk);
}

TEST(SchedulerAsync, AFullQueueAnswersAtOnce) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(3000),
                  [](FunctionSpec& f) { f.config.queue_depth = 0; });
  LoopThread loop;
  auto hog = loop.Invoke(s, "sleep", Req("ms=500"));
  auto refused = loop.Invoke(s, "sleep", Req("ms=1"));
  InvokeResult r = Get(refused);
  EXPECT_EQ(r.outcome, Outcome::kNoCapacity);
  // At once: no time in the queue as the scheduler measured it, and the hog still runs.
  EXPECT_LT(r.timings.queue, milliseconds(50));
  EXPECT_EQ(hog.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(Get(hog).outcome, Outcome::kOk);
}

TEST(SchedulerAsync, QueuedCallsEndWhenTheFunctionIsRemovedOrTheSchedulerStops) {
  Scheduler s(Options());
  OneWarmInstance(s, "sleep", milliseconds(5000));
  LoopThread loop;
  auto hog = loop.Invoke(s, "sleep", Req("ms=300"));
  auto queued = loop.Invoke(s, "sleep", Req("ms=1"));
  ASSERT_TRUE(testing::Eventually([&] { return s.Stats("sleep").waiting == 1; }));
  s.RemoveFunction("sleep");
  EXPECT_EQ(Get(queued).outcome, Outcome::kNotFound);
  Get(hog);  // the running one finishes (its instance then stops)

  OneWarmInstance(s, "sleep", milliseconds(5000));
  auto hog2 = loop.Invoke(s, "sleep", Req("ms=300"));
  auto queued2 = loop.Invoke(s, "sleep", Req("ms=1"));
  ASSERT_TRUE(testing::Eventually([&] { return s.Stats("sleep").waiting == 1; }));
  auto stopped = std::async(std::launch::async, [&] { s.Shutdown(milliseconds(5000)); });
  EXPECT_EQ(Get(queued2).outcome, Outcome::kShuttingDown);
  EXPECT_EQ(Get(hog2).outcome, Outcome::kOk) << "the grace period lets it finish";
  ASSERT_EQ(stopped.wait_for(kWait), std::future_status::ready);
}

}  // namespace
}  // namespace faas::scheduler
