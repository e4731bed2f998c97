// Pool: the admission rules of one function (docs/design/0012-scheduler-pool.md), driven with
// fake instances from a fake launcher and a fake clock: no processes, no threads, no sleeps.
#include "pool.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "launcher.h"

namespace faas::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeInstance final : public PooledInstance {
 public:
  FakeInstance(uint32_t version, int id) : version_(version), id_(id) {}
  uint32_t Version() const override { return version_; }
  bool Healthy() const override { return healthy_; }
  int id() const { return id_; }
  void Break() { healthy_ = false; }

 private:
  uint32_t version_;
  int id_;
  bool healthy_ = true;
};

int IdOf(const PooledPtr& p) {
  return static_cast<const FakeInstance&>(*p).id();
}

// The InstanceLauncher seam with fakes: numbered instances of the spec's version, or a failure
// when told.
class FakeLauncher final : public InstanceLauncher {
 public:
  Result<PooledPtr> Launch(std::shared_ptr<const FunctionSpec> spec,
                           const std::shared_ptr<Zygote>& /*zygote*/,
                           const std::shared_ptr<sandbox::FunctionCgroup>& /*group*/,
                           StartTimings* /*timings*/) override {
    ++launches;
    if (fail_next) {
      fail_next = false;
      return FailedPreconditionError("init_failed: faas_init returned 1");
    }
    return PooledPtr(std::make_unique<FakeInstance>(spec->version, ++next_id));
  }
  PooledPtr Make(std::shared_ptr<const FunctionSpec> spec) {
    auto r = Launch(std::move(spec), nullptr, nullptr, nullptr);
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  int launches = 0;
  int next_id = 0;
  bool fail_next = false;
};

// A caller: blocking and event-loop callers are the same kind of waiter to the pool; the label
// only names them in the checks.
struct TestWaiter final : Waiter {
  explicit TestWaiter(std::string n) : name(std::move(n)) {}
  std::string name;
};

std::shared_ptr<const FunctionSpec> Spec(uint32_t version, uint32_t max_instances,
                                         void (*tweak)(store::FunctionConfig&) = nullptr) {
  auto s = std::make_shared<FunctionSpec>();
  s->name = "f";
  s->version = version;
  s->config.max_instances = max_instances;
  s->config.queue_depth = 10;
  s->config.queue_timeout = milliseconds(100);
  s->config.idle_ttl = seconds(10);
  if (tweak != nullptr) {
    tweak(s->config);
  }
  return s;
}

class PoolTest : public testing::Test {
 protected:
  void Init(std::shared_ptr<const FunctionSpec> spec, uint32_t pipeline_depth = 0) {
    spec_ = spec;
    pool_ = std::make_unique<Pool>(std::move(spec), pipeline_depth);
  }
  std::shared_ptr<TestWaiter> W(const std::string& name) {
    return std::make_shared<TestWaiter>(name);
  }
  Grant Acquire(const WaiterPtr& w, bool fresh = false, const void* affinity = nullptr) {
    Grant g = pool_->Acquire(w,
                             {.fresh = fresh,
                              .body_bytes = 10,
                              .deadline = now_ + seconds(1),
                              .affinity = affinity,
                              .pipeline = affinity != nullptr},
                             &dead_);
    CheckInvariants();
    return g;
  }
  // A cold slot's launch succeeded: the instance is the caller's, busy.
  PooledPtr Launched() {
    PooledPtr p = launcher_.Make(pool_->spec());
    pool_->Adopt(p.get());
    return p;
  }
  PooledPtr StartOne() {
    Grant g = Acquire(W("starter"));
    EXPECT_EQ(g.kind, Grant::kCold);
    return Launched();
  }
  void Deploy(std::shared_ptr<const FunctionSpec> spec) {
    spec_ = spec;
    pool_->SetSpec(std::move(spec), &dead_, &grants_);
    CheckInvariants();
  }
  void Release(PooledPtr p, bool reusable = true) {
    pool_->Release(std::move(p), reusable, now_, &dead_, &grants_);
    CheckInvariants();
  }
  // Names of the waiters granted so far (and forgets them).
  std::vector<std::string> Granted(Grant::Kind kind) {
    std::vector<std::string> names;
    for (const Grant& g : grants_) {
      EXPECT_EQ(g.kind, kind) << static_cast<const TestWaiter&>(*g.waiter).name;
      names.push_back(static_cast<const TestWaiter&>(*g.waiter).name);
    }
    return names;
  }
  void CheckInvariants() {
    EXPECT_LE(pool_->total(), spec_->config.max_instances) << "cold slots beyond max_instances";
    EXPECT_LE(pool_->waiting(), spec_->config.queue_depth);
    EXPECT_GE(pool_->total(), pool_->idle() + pool_->busy().size());
  }

  FakeLauncher launcher_;
  Clock::time_point now_ = Clock::time_point() + seconds(1000);  // the fake clock
  std::shared_ptr<const FunctionSpec> spec_;
  std::unique_ptr<Pool> pool_;
  std::vector<PooledPtr> dead_;
  std::vector<Grant> grants_;
};

TEST_F(PoolTest, AnIdleInstanceIsReusedElseAColdSlotIsGiven) {
  Init(Spec(1, 3));
  PooledPtr a = StartOne();
  PooledPtr b = StartOne();
  Release(std::move(a));
  now_ += seconds(1);
  Release(std::move(b));
  EXPECT_EQ(pool_->idle(), 2u);
  Grant g = Acquire(W("x"));
  ASSERT_EQ(g.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(g.instance), 2) << "the most recently used (its caches are warm)";
  EXPECT_EQ(pool_->busy().count(g.instance.get()), 1u);
  EXPECT_EQ(pool_->cold_starts(), 2u);
  Grant h = Acquire(W("y"));
  ASSERT_EQ(h.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(h.instance), 1);
  EXPECT_EQ(Acquire(W("z")).kind, Grant::kCold) << "room for a third instance";
  EXPECT_EQ(pool_->cold_starts(), 3u);
}

// An event loop's call takes an idle instance whose channel is registered with that loop (no
// epoll_ctl to move it), the most recently used of those; else the most recently used of all.
TEST_F(PoolTest, AnIdleInstanceOfTheCallersAffinityIsPreferred) {
  Init(Spec(1, 4));
  int loop_a = 0;
  int loop_b = 0;
  PooledPtr a1 = StartOne();
  PooledPtr a2 = StartOne();
  PooledPtr b1 = StartOne();
  a1->affinity = &loop_a;
  a2->affinity = &loop_a;
  b1->affinity = &loop_b;
  Release(std::move(a1));
  now_ += seconds(1);
  Release(std::move(a2));
  now_ += seconds(1);
  Release(std::move(b1));
  Grant g = Acquire(W("on a"), false, &loop_a);
  ASSERT_EQ(g.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(g.instance), 2) << "the most recently used of loop a, not b's newer one";
  Grant h = Acquire(W("on c"), false, &g);  // no instance of this affinity: plain MRU
  ASSERT_EQ(h.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(h.instance), 3);
  Grant i = Acquire(W("on b"), false, &loop_b);  // b's is taken: a's last one moves
  ASSERT_EQ(i.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(i.instance), 1);
  EXPECT_EQ(pool_->idle(), 0u);
}

TEST_F(PoolTest, BlockingAndAsyncWaitersAreServedInOneFifoQueue) {
  Init(Spec(1, 1));
  PooledPtr a = StartOne();
  for (const char* name : {"blocking-1", "async-1", "blocking-2", "async-2"}) {
    EXPECT_EQ(Acquire(W(name)).kind, Grant::kQueued) << name;
  }
  EXPECT_EQ(pool_->waiting(), 4u);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    Release(std::move(a));
    ASSERT_EQ(grants_.size(), 1u) << "one instance freed, one waiter served";
    auto names = Granted(Grant::kWarm);
    order.push_back(names[0]);
    a = std::move(grants_[0].instance);
    grants_.clear();
  }
  EXPECT_EQ(order, (std::vector<std::string>{"blocking-1", "async-1", "blocking-2", "async-2"}));
  EXPECT_EQ(pool_->waiting(), 0u);
  EXPECT_EQ(launcher_.launches, 1) << "one instance served them all";
}

TEST_F(PoolTest, NewArrivalsQueueBehindWaitersEvenRightAfterARelease) {
  Init(Spec(1, 2));
  PooledPtr a = StartOne();
  PooledPtr b = StartOne();
  EXPECT_EQ(Acquire(W("first")).kind, Grant::kQueued);
  EXPECT_EQ(Acquire(W("second")).kind, Grant::kQueued);
  Release(std::move(a));
  EXPECT_EQ(Granted(Grant::kWarm), std::vector<std::string>{"first"});
  grants_.clear();
  // The instance just freed went to "first"; a newcomer gets nothing ahead of "second".
  EXPECT_EQ(Acquire(W("newcomer")).kind, Grant::kQueued);
  Release(std::move(b));
  EXPECT_EQ(Granted(Grant::kWarm), std::vector<std::string>{"second"});
}

TEST_F(PoolTest, AFullQueueIsRefusedWithTheQueueFullMessage) {
  Init(Spec(1, 1, [](store::FunctionConfig& c) { c.queue_depth = 2; }));
  PooledPtr a = StartOne();
  EXPECT_EQ(Acquire(W("q1")).kind, Grant::kQueued);
  EXPECT_EQ(Acquire(W("q2")).kind, Grant::kQueued);
  Grant g = Acquire(W("q3"));
  EXPECT_EQ(g.kind, Grant::kRefused);
  EXPECT_EQ(g.outcome, Outcome::kNoCapacity);
  EXPECT_EQ(g.message, "all 1 instances of \"f\" are busy and 2 requests are already waiting");

  Init(Spec(1, 1, [](store::FunctionConfig& c) { c.queue_depth = 0; }));
  PooledPtr b = StartOne();
  Grant now = Acquire(W("at-once"));
  EXPECT_EQ(now.kind, Grant::kRefused) << "queue_depth 0: no queue at all";
  EXPECT_EQ(now.message, "all 1 instances of \"f\" are busy and 0 requests are already waiting");
}

TEST_F(PoolTest, APayloadOverTheLimitIsRefused) {
  Init(Spec(1, 1, [](store::FunctionConfig& c) { c.max_body_bytes = 1024; }));
  Grant g = pool_->Acquire(W("big"), {.body_bytes = 1025, .deadline = now_}, &dead_);
  EXPECT_EQ(g.kind, Grant::kRefused);
  EXPECT_EQ(g.outcome, Outcome::kPayloadTooLarge);
  EXPECT_EQ(g.message, "the request body of 1025 bytes is over the limit of 1024 bytes for \"f\"");
  EXPECT_EQ(pool_->total(), 0u);
}

TEST_F(PoolTest, QueuedWaitersTimeOutByDeadlineOrCancel) {
  Init(Spec(1, 1));
  PooledPtr a = StartOne();
  auto early = W("early");
  auto late = W("late");
  auto cancelled = W("cancelled");
  auto stays = W("stays");
  ASSERT_EQ(pool_->Acquire(early, {.deadline = now_ + milliseconds(100)}, &dead_).kind,
            Grant::kQueued);
  ASSERT_EQ(pool_->Acquire(cancelled, {.deadline = now_ + seconds(5)}, &dead_).kind,
            Grant::kQueued);
  ASSERT_EQ(pool_->Acquire(late, {.deadline = now_ + milliseconds(200)}, &dead_).kind,
            Grant::kQueued);
  ASSERT_EQ(pool_->Acquire(stays, {.deadline = now_ + seconds(5)}, &dead_).kind, Grant::kQueued);

  pool_->Expire(now_ + milliseconds(99), &grants_);
  EXPECT_TRUE(grants_.empty()) << "nobody's deadline has passed";
  pool_->Expire(now_ + milliseconds(200), &grants_);
  EXPECT_EQ(Granted(Grant::kRefused), (std::vector<std::string>{"early", "late"}));
  for (const Grant& g : grants_) {
    EXPECT_EQ(g.outcome, Outcome::kNoCapacity);
    EXPECT_EQ(g.message, QueueTimeoutMessage("f", spec_->config));
    EXPECT_NE(g.message.find("stayed busy for"), std::string::npos) << g.message;
  }
  grants_.clear();

  EXPECT_TRUE(pool_->Cancel(cancelled));
  EXPECT_FALSE(pool_->Cancel(cancelled)) << "a waiter leaves the queue once";
  EXPECT_FALSE(pool_->Cancel(early)) << "already answered by its deadline";
  EXPECT_EQ(pool_->waiting(), 1u);
  Release(std::move(a));
  EXPECT_EQ(Granted(Grant::kWarm), std::vector<std::string>{"stays"})
      << "timed-out and cancelled waiters are never granted";
  EXPECT_FALSE(pool_->Cancel(stays)) << "granted: its grant is on its way, not a timeout";
}

TEST_F(PoolTest, ColdSlotsNeverExceedMaxInstancesAndAFailedLaunchPassesItsSlotOn) {
  Init(Spec(1, 2));
  // Two launches in flight (not yet adopted) fill max_instances: the third caller queues.
  EXPECT_EQ(Acquire(W("c1")).kind, Grant::kCold);
  EXPECT_EQ(Acquire(W("c2")).kind, Grant::kCold);
  EXPECT_EQ(Acquire(W("q1")).kind, Grant::kQueued);
  EXPECT_EQ(Acquire(W("q2")).kind, Grant::kQueued);
  EXPECT_EQ(pool_->total(), 2u);
  PooledPtr c1 = Launched();
  launcher_.fail_next = true;
  auto failed = launcher_.Launch(pool_->spec(), nullptr, nullptr, nullptr);
  ASSERT_FALSE(failed.ok());
  pool_->ReturnSlot(/*invoked=*/true, &dead_, &grants_);
  CheckInvariants();
  EXPECT_EQ(Granted(Grant::kCold), std::vector<std::string>{"q1"})
      << "the failed launch's slot goes to the next waiter, who launches";
  EXPECT_EQ(pool_->total(), 2u);
  EXPECT_EQ(pool_->invocations(), 1u) << "the failed cold start was an invocation";
  EXPECT_EQ(pool_->cold_starts(), 3u);
  grants_.clear();
  // Prewarm and min_warm reserve slots only below max_instances.
  EXPECT_EQ(pool_->Reserve(5), 0u);
  Release(std::move(c1));
  EXPECT_EQ(Granted(Grant::kWarm), std::vector<std::string>{"q2"});
}

TEST_F(PoolTest, MinWarmDeficitIsFilledThroughReservedSlots) {
  Init(Spec(1, 3, [](store::FunctionConfig& c) { c.min_warm = 2; }));
  EXPECT_EQ(pool_->WarmDeficit(), 2u);
  ASSERT_EQ(pool_->Reserve(1), 1u);
  EXPECT_EQ(pool_->WarmDeficit(), 1u) << "a starting instance counts";
  EXPECT_TRUE(pool_->AddIdle(launcher_.Make(pool_->spec()), 1, now_, &dead_, &grants_));
  EXPECT_EQ(pool_->WarmDeficit(), 1u);
  ASSERT_EQ(pool_->Reserve(1), 1u);
  launcher_.fail_next = true;
  ASSERT_FALSE(launcher_.Launch(pool_->spec(), nullptr, nullptr, nullptr).ok());
  pool_->ReturnSlot(/*invoked=*/false, &dead_, &grants_);
  EXPECT_EQ(pool_->WarmDeficit(), 1u) << "a failed start leaves the deficit";
  EXPECT_EQ(pool_->invocations(), 0u);
  ASSERT_EQ(pool_->Reserve(1), 1u);
  EXPECT_TRUE(pool_->AddIdle(launcher_.Make(pool_->spec()), 1, now_, &dead_, &grants_));
  EXPECT_EQ(pool_->WarmDeficit(), 0u);
  EXPECT_EQ(pool_->idle(), 2u);
  // A start that finishes after a new deploy is not kept.
  ASSERT_EQ(pool_->Reserve(1), 1u);
  PooledPtr old = launcher_.Make(pool_->spec());
  pool_->SetSpec(Spec(2, 3, [](store::FunctionConfig& c) { c.min_warm = 2; }), &dead_, &grants_);
  EXPECT_FALSE(pool_->AddIdle(std::move(old), 1, now_, &dead_, &grants_));
  EXPECT_EQ(pool_->WarmDeficit(), 2u) << "version 1's idle instances are gone";
  pool_->Remove(&dead_, &grants_);
  EXPECT_EQ(pool_->WarmDeficit(), 0u);
}

TEST_F(PoolTest, IdleInstancesExpireLeastRecentlyUsedFirstNeverBelowMinWarm) {
  Init(Spec(1, 4, [](store::FunctionConfig& c) { c.min_warm = 1; }));
  std::vector<PooledPtr> running;
  for (int i = 0; i < 3; ++i) {
    running.push_back(StartOne());
  }
  const Clock::time_point t0 = now_;
  // Released at t0 (id 2), t0+1s (id 1), t0+2s (id 3).
  Release(std::move(running[1]));
  now_ = t0 + seconds(1);
  Release(std::move(running[0]));
  now_ = t0 + seconds(2);
  Release(std::move(running[2]));
  EXPECT_TRUE(pool_->Reap(t0 + seconds(9)).empty()) << "nothing idle for 10 s yet";
  std::vector<PooledPtr> first = pool_->Reap(t0 + seconds(10));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(IdOf(first[0]), 2) << "the least recently used goes first";
  std::vector<PooledPtr> rest = pool_->Reap(t0 + seconds(100));
  ASSERT_EQ(rest.size(), 1u) << "min_warm keeps one";
  EXPECT_EQ(IdOf(rest[0]), 1);
  EXPECT_EQ(pool_->idle(), 1u);
  EXPECT_EQ(pool_->total(), 1u);
  Grant g = Acquire(W("x"));
  ASSERT_EQ(g.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(g.instance), 3) << "the most recently used is kept";
}

TEST_F(PoolTest, TheWarmPoolTakesTheLeastRecentlyUsedIdleInstanceNeverBelowMinWarm) {
  Init(Spec(1, 4, [](store::FunctionConfig& c) { c.min_warm = 1; }));
  std::vector<PooledPtr> running;
  for (int i = 0; i < 3; ++i) {
    running.push_back(StartOne());
  }
  EXPECT_FALSE(pool_->EvictableSince()) << "busy instances are never evicted";
  const Clock::time_point t0 = now_;
  Release(std::move(running[1]));  // id 2 at t0
  now_ = t0 + seconds(1);
  Release(std::move(running[0]));  // id 1 at t0+1s
  ASSERT_TRUE(pool_->EvictableSince());
  EXPECT_EQ(*pool_->EvictableSince(), t0) << "the least recently used idle one's last use";
  PooledPtr gone = pool_->EvictIdle();
  EXPECT_EQ(IdOf(gone), 2);
  EXPECT_EQ(pool_->evicted(), 1u);
  EXPECT_EQ(pool_->total(), 2u);
  EXPECT_EQ(*pool_->EvictableSince(), t0 + seconds(1));
  ASSERT_EQ(IdOf(pool_->EvictIdle()), 1);
  Release(std::move(running[2]));  // id 3: the last one
  EXPECT_FALSE(pool_->EvictableSince()) << "min_warm keeps one";
  EXPECT_EQ(pool_->evicted(), 2u);
  Grant g = Acquire(W("x"));
  ASSERT_EQ(g.kind, Grant::kWarm);
  EXPECT_EQ(IdOf(g.instance), 3);
}

TEST_F(PoolTest, ANewVersionRetiresOldInstances) {
  Init(Spec(1, 3));
  PooledPtr a = StartOne();
  PooledPtr b = StartOne();
  PooledPtr busy = StartOne();
  Release(std::move(a));
  Grant again = Acquire(W("old-busy"));
  ASSERT_EQ(again.kind, Grant::kWarm);
  PooledPtr old_busy = std::move(again.instance);
  Release(std::move(b));
  ASSERT_EQ(pool_->idle(), 1u);
  Deploy(Spec(2, 3));
  EXPECT_EQ(dead_.size(), 1u) << "idle instances of version 1 stop at once";
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(pool_->total(), 2u) << "the busy ones still count";
  dead_.clear();
  // A busy version-1 instance is not kept when released, even with nobody waiting.
  Release(std::move(old_busy));
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(dead_.size(), 1u);
  EXPECT_EQ(pool_->total(), 1u);
  dead_.clear();
  // The busy version-1 instance dies when released; its slot goes to the next waiter, who
  // starts the new version.
  PooledPtr n1 = StartOne();
  PooledPtr n2 = StartOne();
  EXPECT_EQ(n1->Version(), 2u);
  EXPECT_EQ(Acquire(W("waiter")).kind, Grant::kQueued);
  Release(std::move(busy));
  ASSERT_EQ(dead_.size(), 1u);
  EXPECT_EQ(dead_[0]->Version(), 1u);
  ASSERT_EQ(Granted(Grant::kCold), std::vector<std::string>{"waiter"});
  EXPECT_EQ(grants_[0].spec->version, 2u);
}

TEST_F(PoolTest, ADeployThatFreesSlotsServesTheQueue) {
  Init(Spec(1, 1));
  PooledPtr busy = StartOne();
  EXPECT_EQ(Acquire(W("q")).kind, Grant::kQueued);
  Deploy(Spec(2, 2));  // max_instances raised
  ASSERT_EQ(Granted(Grant::kCold), std::vector<std::string>{"q"});
  EXPECT_EQ(grants_[0].spec->version, 2u);
}

TEST_F(PoolTest, FreshIsolationNeverReusesAndAFreshRequestEvictsAnIdleInstance) {
  Init(Spec(1, 2, [](store::FunctionConfig& c) { c.isolation = "fresh"; }));
  PooledPtr a = StartOne();
  Release(std::move(a));
  EXPECT_EQ(pool_->idle(), 0u) << "isolation fresh: used once";
  EXPECT_EQ(dead_.size(), 1u);
  dead_.clear();

  // A forced fresh request (InvokeRequest::fresh) on a warm function at max_instances.
  Init(Spec(1, 2));
  PooledPtr x = StartOne();
  PooledPtr y = StartOne();
  const int least_recent = IdOf(x);
  Release(std::move(x));
  now_ += seconds(1);
  Release(std::move(y));
  ASSERT_EQ(pool_->idle(), 2u);
  Grant g = Acquire(W("fresh"), /*fresh=*/true);
  EXPECT_EQ(g.kind, Grant::kCold) << "a fresh request never takes an idle instance";
  ASSERT_EQ(dead_.size(), 1u) << "it made room by stopping one";
  EXPECT_EQ(IdOf(dead_[0]), least_recent) << "the least recently used";
  EXPECT_EQ(pool_->total(), 2u);
  // A broken instance is not reused either.
  Grant w = Acquire(W("warm"));
  ASSERT_EQ(w.kind, Grant::kWarm);
  static_cast<FakeInstance&>(*w.instance).Break();
  Release(std::move(w.instance));
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(dead_.size(), 2u);
}

TEST_F(PoolTest, RemoveAnswersEveryWaiterOnceWithNotFound) {
  Init(Spec(1, 1));
  PooledPtr a = StartOne();
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(Acquire(W(name)).kind, Grant::kQueued);
  }
  pool_->Remove(&dead_, &grants_);
  EXPECT_EQ(Granted(Grant::kRefused), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(pool_->waiting(), 0u);
  for (const Grant& g : grants_) {
    EXPECT_EQ(g.outcome, Outcome::kNotFound);
    EXPECT_EQ(g.message, "function \"f\" was deleted");
  }
  grants_.clear();
  pool_->Remove(&dead_, &grants_);
  EXPECT_TRUE(grants_.empty()) << "answered once";
  Release(std::move(a));
  EXPECT_TRUE(grants_.empty());
  EXPECT_EQ(dead_.size(), 1u) << "a released instance of a removed function stops";
  Grant later = Acquire(W("later"));
  EXPECT_EQ(later.kind, Grant::kRefused);
  EXPECT_EQ(later.outcome, Outcome::kNotFound);
  EXPECT_EQ(pool_->Reserve(1), 0u);
}

TEST_F(PoolTest, ShutdownAnswersEveryWaiterOnceAndStopsIdleInstances) {
  Init(Spec(1, 2));
  PooledPtr a = StartOne();
  PooledPtr b = StartOne();
  Release(std::move(b));
  Grant busy_again = Acquire(W("warm"));
  ASSERT_EQ(busy_again.kind, Grant::kWarm);
  Release(std::move(busy_again.instance));
  ASSERT_EQ(pool_->idle(), 1u);
  // Nothing queues while an idle instance exists: fill the pool first.
  Grant c = Acquire(W("c"));
  ASSERT_EQ(c.kind, Grant::kWarm);
  for (const char* name : {"x", "y"}) {
    EXPECT_EQ(Acquire(W(name)).kind, Grant::kQueued);
  }
  Release(std::move(c.instance));
  ASSERT_EQ(Granted(Grant::kWarm), std::vector<std::string>{"x"});
  PooledPtr x = std::move(grants_[0].instance);
  grants_.clear();
  pool_->Shutdown(&dead_, &grants_);
  ASSERT_EQ(Granted(Grant::kRefused), std::vector<std::string>{"y"});
  EXPECT_EQ(grants_[0].outcome, Outcome::kShuttingDown);
  EXPECT_EQ(grants_[0].message, "faasd is shutting down");
  EXPECT_EQ(pool_->waiting(), 0u);
  grants_.clear();
  pool_->Shutdown(&dead_, &grants_);
  pool_->Remove(&dead_, &grants_);
  EXPECT_TRUE(grants_.empty()) << "answered once";
  Release(std::move(a));
  Release(std::move(x));
  EXPECT_EQ(pool_->total(), 0u) << "busy instances stop when released";
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(Acquire(W("later")).outcome, Outcome::kShuttingDown);
}

// Pipelining (design/0015): one call may wait behind a busy instance's current one, on the same
// loop, for a function whose recent execs are short, and never ahead of anyone queued.
class PipelineTest : public PoolTest {
 protected:
  // One instance (max_instances 1), busy for `loop`'s call, taking a call behind it.
  PooledPtr BusyOn(const void* loop, uint32_t depth = 1) {
    Init(Spec(1, 1), depth);
    EXPECT_EQ(Acquire(W("front"), false, loop).kind, Grant::kCold);
    PooledPtr p = launcher_.Make(pool_->spec());
    pool_->Adopt(p.get(), loop);
    p->takes_behind = true;
    return p;
  }
  void ShortExecs(std::chrono::nanoseconds wall = std::chrono::microseconds(900),
                  std::chrono::nanoseconds cpu = std::chrono::microseconds(20)) {
    for (uint32_t i = 0; i < kPipelineMinSamples; ++i) {
      pool_->NoteExec(wall, cpu);
    }
  }
  int loop_a_ = 0;
  int loop_b_ = 0;
};

TEST_F(PipelineTest, OneCallGoesBehindABusyInstanceOfItsLoopOnceExecsAreShort) {
  PooledPtr a = BusyOn(&loop_a_);
  auto early = W("before any exec was measured");
  EXPECT_EQ(Acquire(early, false, &loop_a_).kind, Grant::kQueued);
  ASSERT_TRUE(pool_->Cancel(early));
  ShortExecs();
  ASSERT_TRUE(pool_->Pipelining());
  auto other = W("other loop");
  EXPECT_EQ(Acquire(other, false, &loop_b_).kind, Grant::kQueued)
      << "the channel is loop a's: a call of loop b cannot share it";
  ASSERT_TRUE(pool_->Cancel(other));
  auto blocking = W("blocking");
  EXPECT_EQ(Acquire(blocking).kind, Grant::kQueued) << "only event-loop calls pipeline";
  ASSERT_TRUE(pool_->Cancel(blocking));
  Grant g = Acquire(W("behind"), false, &loop_a_);
  ASSERT_EQ(g.kind, Grant::kBehind);
  EXPECT_EQ(g.ahead, a.get());
  EXPECT_EQ(a->behind, 1u);
  EXPECT_EQ(Acquire(W("third"), false, &loop_a_).kind, Grant::kQueued) << "depth 1: one at most";
  EXPECT_EQ(pool_->total(), 1u) << "a call behind takes no slot";
}

TEST_F(PipelineTest, NoPipeliningWhenOffLongFreshOrNotTaking) {
  {
    PooledPtr a = BusyOn(&loop_a_, /*depth=*/0);
    ShortExecs();
    EXPECT_EQ(Acquire(W("depth 0"), false, &loop_a_).kind, Grant::kQueued);
  }
  {
    PooledPtr a = BusyOn(&loop_a_);
    ShortExecs(std::chrono::milliseconds(1), std::chrono::milliseconds(1));
    EXPECT_FALSE(pool_->Pipelining());
    EXPECT_EQ(Acquire(W("1 ms of CPU"), false, &loop_a_).kind, Grant::kQueued);
  }
  {
    PooledPtr a = BusyOn(&loop_a_);
    ShortExecs(std::chrono::milliseconds(20), std::chrono::microseconds(10));
    EXPECT_FALSE(pool_->Pipelining()) << "sleeps 20 ms: a call behind would wait for it";
    EXPECT_EQ(Acquire(W("20 ms asleep"), false, &loop_a_).kind, Grant::kQueued);
  }
  {
    PooledPtr a = BusyOn(&loop_a_);
    ShortExecs();
    EXPECT_EQ(Acquire(W("fresh"), true, &loop_a_).kind, Grant::kQueued);
    a->takes_behind = false;  // its frame is not written yet, or it failed
    EXPECT_EQ(Acquire(W("not taking"), false, &loop_a_).kind, Grant::kQueued);
  }
  {
    Init(Spec(1, 1, [](store::FunctionConfig& c) { c.isolation = "fresh"; }), 1);
    EXPECT_EQ(Acquire(W("front"), false, &loop_a_).kind, Grant::kCold);
    PooledPtr p = launcher_.Make(pool_->spec());
    pool_->Adopt(p.get(), &loop_a_);
    p->takes_behind = true;
    ShortExecs();
    EXPECT_FALSE(pool_->Pipelining()) << "isolation fresh: an instance serves one call";
  }
}

// FIFO holds: a new arrival never goes behind a busy instance while anyone is queued, even on
// the instance's own loop.
TEST_F(PipelineTest, NeverAheadOfAQueuedWaiter) {
  PooledPtr a = BusyOn(&loop_a_);
  ShortExecs();
  a->takes_behind = false;  // e.g. its frame is still being written
  EXPECT_EQ(Acquire(W("queued first"), false, &loop_b_).kind, Grant::kQueued);
  a->takes_behind = true;
  EXPECT_EQ(Acquire(W("arrived second"), false, &loop_a_).kind, Grant::kQueued)
      << "would overtake the queued waiter";
  Release(std::move(a));
  EXPECT_EQ(Granted(Grant::kWarm), (std::vector<std::string>{"queued first"}));
}

// With a queue, a call whose frame is written pulls the head of the queue behind it, when the
// head is of its loop: never anyone behind the head (FIFO), never a fresh one.
TEST_F(PipelineTest, OnlyTheHeadOfTheQueueIsPulledBehind) {
  PooledPtr a = BusyOn(&loop_a_);
  ShortExecs();
  a->takes_behind = false;
  auto head_b = W("head, loop b");
  auto next_a = W("second, loop a");
  EXPECT_EQ(Acquire(head_b, false, &loop_b_).kind, Grant::kQueued);
  EXPECT_EQ(Acquire(next_a, false, &loop_a_).kind, Grant::kQueued);
  EXPECT_EQ(pool_->TakeBehind(a.get()), nullptr) << "the head is another loop's; the second waits";
  ASSERT_TRUE(pool_->Cancel(head_b));
  EXPECT_EQ(pool_->TakeBehind(a.get()), next_a) << "now the head, and of the instance's loop";
  EXPECT_EQ(a->behind, 1u);
  EXPECT_EQ(pool_->waiting(), 0u);
  auto another = W("another");
  EXPECT_EQ(Acquire(another, false, &loop_a_).kind, Grant::kQueued);
  EXPECT_EQ(pool_->TakeBehind(a.get()), nullptr) << "one behind at most";
  pool_->Handover(a.get());
  EXPECT_EQ(pool_->TakeBehind(a.get()), another);
  auto fresh = W("fresh");
  pool_->Handover(a.get());
  EXPECT_EQ(Acquire(fresh, true, &loop_a_).kind, Grant::kQueued);
  EXPECT_EQ(pool_->TakeBehind(a.get()), nullptr) << "a fresh call needs its own instance";
}

TEST_F(PipelineTest, HandoverKeepsTheInstanceBusyAndCountsTheFrontCall) {
  PooledPtr a = BusyOn(&loop_a_);
  ShortExecs();
  ASSERT_EQ(Acquire(W("behind"), false, &loop_a_).kind, Grant::kBehind);
  pool_->Handover(a.get());
  EXPECT_EQ(a->behind, 0u);
  EXPECT_EQ(pool_->busy().count(a.get()), 1u);
  EXPECT_EQ(pool_->invocations(), 1u);
  Grant again = Acquire(W("behind the new front"), false, &loop_a_);
  EXPECT_EQ(again.kind, Grant::kBehind) << "the call that became the front takes one behind";
  pool_->Handover(a.get());
  Release(std::move(a));
  EXPECT_EQ(pool_->invocations(), 3u);
  EXPECT_EQ(pool_->idle(), 1u);
}

// The front call crashed: its instance dies, and the call behind it ends with it (counted).
TEST_F(PipelineTest, AFailedFrontTakesTheCallBehindWithIt) {
  PooledPtr a = BusyOn(&loop_a_);
  ShortExecs();
  ASSERT_EQ(Acquire(W("behind"), false, &loop_a_).kind, Grant::kBehind);
  static_cast<FakeInstance&>(*a).Break();
  Release(std::move(a));
  EXPECT_EQ(pool_->invocations(), 2u);
  EXPECT_EQ(dead_.size(), 1u);
  EXPECT_EQ(pool_->total(), 0u);
  EXPECT_EQ(Acquire(W("next"), false, &loop_a_).kind, Grant::kCold);
}

// Depth K (design/0042): up to K calls behind each busy instance of the caller's loop, the next
// one always behind the instance with the fewest, so that both instances stay fed.
TEST_F(PipelineTest, DepthKSpreadsCallsBehindTheInstanceWithTheFewest) {
  Init(Spec(1, 2), 3);
  std::vector<PooledPtr> busy;
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(Acquire(W("front"), false, &loop_a_).kind, Grant::kCold);
    busy.push_back(launcher_.Make(pool_->spec()));
    pool_->Adopt(busy.back().get(), &loop_a_);
    busy.back()->takes_behind = true;
  }
  ShortExecs();
  std::vector<const PooledInstance*> aheads;
  for (int i = 0; i < 6; ++i) {
    Grant g = Acquire(W("behind " + std::to_string(i)), false, &loop_a_);
    ASSERT_EQ(g.kind, Grant::kBehind) << i;
    aheads.push_back(g.ahead);
    EXPECT_LE(busy[0]->behind > busy[1]->behind ? busy[0]->behind - busy[1]->behind
                                                : busy[1]->behind - busy[0]->behind,
              1u)
        << "unbalanced after " << i;
  }
  EXPECT_EQ(busy[0]->behind, 3u);
  EXPECT_EQ(busy[1]->behind, 3u);
  EXPECT_EQ(Acquire(W("seventh"), false, &loop_a_).kind, Grant::kQueued)
      << "both at depth 3: it queues";
  EXPECT_EQ(pool_->TakeBehind(busy[1].get()), nullptr) << "at depth 3";
  pool_->Handover(busy[1].get());
  EXPECT_EQ(busy[1]->behind, 2u);
  EXPECT_NE(pool_->TakeBehind(busy[1].get()), nullptr) << "the head goes behind b, at depth 3";
  EXPECT_EQ(busy[1]->behind, 3u);
  EXPECT_EQ(pool_->total(), 2u) << "calls behind take no slot";
}

TEST_F(PipelineTest, TakeBehindPullsTheQueueUpToTheDepth) {
  PooledPtr a = BusyOn(&loop_a_, /*depth=*/2);
  ShortExecs();
  a->takes_behind = false;
  std::vector<WaiterPtr> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(W("queued " + std::to_string(i)));
    EXPECT_EQ(Acquire(queued.back(), false, &loop_a_).kind, Grant::kQueued);
  }
  EXPECT_EQ(pool_->TakeBehind(a.get()), queued[0]);
  EXPECT_EQ(pool_->TakeBehind(a.get()), queued[1]);
  EXPECT_EQ(pool_->TakeBehind(a.get()), nullptr) << "depth 2";
  EXPECT_EQ(a->behind, 2u);
  pool_->Handover(a.get());
  EXPECT_EQ(pool_->TakeBehind(a.get()), queued[2]) << "FIFO: the third once one moved up";
  pool_->Handover(a.get());
  pool_->Handover(a.get());
  Release(std::move(a));
  EXPECT_EQ(pool_->invocations(), 4u);
}

// The front call crashed with three calls behind it: its instance dies, and they all end with
// it, each counted once.
TEST_F(PipelineTest, AFailedFrontTakesEveryCallBehindWithIt) {
  PooledPtr a = BusyOn(&loop_a_, /*depth=*/3);
  ShortExecs();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Acquire(W("behind"), false, &loop_a_).kind, Grant::kBehind) << i;
  }
  static_cast<FakeInstance&>(*a).Break();
  Release(std::move(a));
  EXPECT_EQ(pool_->invocations(), 4u);
  EXPECT_EQ(dead_.size(), 1u);
  EXPECT_EQ(pool_->total(), 0u);
}

// Busy first (design/0042): once the workers report a short handler, a call lines up behind a
// busy instance of its loop before an idle one is taken or a new one started; when every line
// is full, the idle one serves. A handler reported long, or none reported, keeps the old order.
TEST_F(PipelineTest, AShortHandlerLinesUpBeforeAnIdleInstanceIsWoken) {
  Init(Spec(1, 4), 2);
  ASSERT_EQ(Acquire(W("front"), false, &loop_a_).kind, Grant::kCold);
  PooledPtr a = launcher_.Make(pool_->spec());
  pool_->Adopt(a.get(), &loop_a_);
  a->takes_behind = true;
  ASSERT_EQ(Acquire(W("second"), false, &loop_a_).kind, Grant::kCold);
  PooledPtr idle = launcher_.Make(pool_->spec());
  idle->affinity = &loop_a_;
  pool_->Adopt(idle.get(), &loop_a_);
  Release(std::move(idle));
  ASSERT_EQ(pool_->idle(), 1u);

  ShortExecs();  // CPU and wall short, no handler reported: pipelining, not busy first
  ASSERT_TRUE(pool_->Pipelining());
  EXPECT_FALSE(pool_->BusyFirst());
  Grant g = Acquire(W("idle first"), false, &loop_a_);
  ASSERT_EQ(g.kind, Grant::kWarm) << "an idle instance is taken before a line forms";
  Release(std::move(g.instance));

  for (uint32_t i = 0; i < kPipelineMinSamples; ++i) {
    pool_->NoteExec(std::chrono::microseconds(900), std::chrono::microseconds(20),
                    std::chrono::microseconds(500));  // the handler sleeps: side by side
  }
  EXPECT_FALSE(pool_->BusyFirst());
  for (uint32_t i = 0; i < 3 * kPipelineMinSamples; ++i) {
    pool_->NoteExec(std::chrono::microseconds(900), std::chrono::microseconds(20),
                    std::chrono::microseconds(5));
  }
  ASSERT_TRUE(pool_->BusyFirst());
  Grant other = Acquire(W("other loop"), false, &loop_b_);
  EXPECT_EQ(other.kind, Grant::kWarm) << "no busy instance of loop b: the idle one";
  Release(std::move(other.instance));
  ASSERT_EQ(pool_->idle(), 1u);
  for (int i = 0; i < 2; ++i) {
    Grant behind = Acquire(W("behind " + std::to_string(i)), false, &loop_a_);
    ASSERT_EQ(behind.kind, Grant::kBehind) << i << ": lines up before the idle one is woken";
    EXPECT_EQ(behind.ahead, a.get());
  }
  EXPECT_EQ(Acquire(W("line full"), false, &loop_a_).kind, Grant::kWarm)
      << "depth 2 reached: the idle instance serves";
  EXPECT_EQ(pool_->total(), 2u) << "no cold start while a line had room";
}

// The front call failed before any call behind it started: they go back to the head of the
// queue in their order, ahead of those queued meanwhile, and are not counted as ended.
TEST_F(PipelineTest, CallsThatNeverStartedGoBackToTheHeadOfTheQueue) {
  PooledPtr a = BusyOn(&loop_a_, /*depth=*/2);
  ShortExecs();
  auto first = W("behind 1");
  auto second = W("behind 2");
  ASSERT_EQ(Acquire(first, false, &loop_a_).kind, Grant::kBehind);
  ASSERT_EQ(Acquire(second, false, &loop_a_).kind, Grant::kBehind);
  a->takes_behind = false;
  EXPECT_EQ(Acquire(W("queued meanwhile"), false, &loop_b_).kind, Grant::kQueued);
  pool_->Requeue(a.get(), {first, second}, now_ + seconds(1), &loop_a_, &grants_);
  EXPECT_TRUE(grants_.empty());
  EXPECT_EQ(a->behind, 0u);
  EXPECT_EQ(pool_->waiting(), 3u);
  static_cast<FakeInstance&>(*a).Break();
  Release(std::move(a));
  EXPECT_EQ(pool_->invocations(), 1u) << "only the failed front ended";
  EXPECT_EQ(Granted(Grant::kCold), (std::vector<std::string>{"behind 1"}));
  grants_.clear();
  PooledPtr b = Launched();
  Release(std::move(b));
  EXPECT_EQ(Granted(Grant::kWarm), (std::vector<std::string>{"behind 2"}));
}

TEST_F(PipelineTest, CallsThatNeverStartedAreRefusedWhenThePoolClosedMeanwhile) {
  PooledPtr a = BusyOn(&loop_a_, /*depth=*/2);
  ShortExecs();
  auto behind = W("behind");
  ASSERT_EQ(Acquire(behind, false, &loop_a_).kind, Grant::kBehind);
  pool_->Shutdown(&dead_, &grants_);
  pool_->Requeue(a.get(), {behind}, now_ + seconds(1), &loop_a_, &grants_);
  ASSERT_EQ(grants_.size(), 1u);
  EXPECT_EQ(grants_[0].kind, Grant::kRefused);
  EXPECT_EQ(grants_[0].outcome, Outcome::kShuttingDown);
  EXPECT_EQ(pool_->waiting(), 0u);
}

TEST_F(PipelineTest, TheDepthIsBounded) {
  PooledPtr a = BusyOn(&loop_a_, /*depth=*/1000);
  ShortExecs();
  uint32_t behind = 0;
  while (Acquire(W("behind"), false, &loop_a_).kind == Grant::kBehind) {
    ++behind;
  }
  EXPECT_EQ(behind, kMaxPipelineDepth);
}

}  // namespace
}  // namespace faas::scheduler
