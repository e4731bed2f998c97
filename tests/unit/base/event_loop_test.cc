// EventLoop and BlockingPool with real fds and threads.
#include "faas/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace faas {
namespace {

using std::chrono::milliseconds;

constexpr auto kWait = std::chrono::seconds(10);

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = std::move(EventLoop::Create().value());
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void TearDown() override {
    loop_->Stop();
    thread_.join();
  }
  // Runs `fn` on the loop thread and waits for it.
  template <typename F>
  void OnLoop(F fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
  }

  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

TEST_F(EventLoopTest, PostedFunctionsRunOnTheLoopThreadInOrder) {
  std::vector<int> seen;
  std::promise<bool> on_loop;
  for (int i = 0; i < 100; ++i) {
    loop_->Post([&, i] { seen.push_back(i); });
  }
  loop_->Post([&] { on_loop.set_value(loop_->InLoopThread()); });
  auto f = on_loop.get_future();
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(f.get());
  EXPECT_FALSE(loop_->InLoopThread());
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  }
}

TEST_F(EventLoopTest, WatchReportsReadableFdsUntilUnwatched) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  std::atomic<int> reads{0};
  std::promise<void> first;
  OnLoop([&] {
    ASSERT_TRUE(loop_
                    ->Watch(sv[0], EPOLLIN,
                            [&](uint32_t events) {
                              EXPECT_NE(events & EPOLLIN, 0u);
                              char buf[16];
                              while (::read(sv[0], buf, sizeof buf) > 0) {
                              }
                              if (reads.fetch_add(1) == 0) {
                                first.set_value();
                              }
                            })
                    .ok());
  });
  ASSERT_EQ(::write(sv[1], "x", 1), 1);
  ASSERT_EQ(first.get_future().wait_for(kWait), std::future_status::ready);
  OnLoop([&] { loop_->Unwatch(sv[0]); });
  const int after_unwatch = reads.load();
  ASSERT_EQ(::write(sv[1], "y", 1), 1);
  OnLoop([] {});  // a full turn of the loop
  OnLoop([] {});
  EXPECT_EQ(reads.load(), after_unwatch) << "no callback after Unwatch";
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_F(EventLoopTest, ACallbackMayUnwatchAnotherFdOfTheSameBatch) {
  int a[2];
  int b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
  // Both readable before the loop looks: whichever runs first unwatches the other.
  ASSERT_EQ(::write(a[1], "x", 1), 1);
  ASSERT_EQ(::write(b[1], "x", 1), 1);
  std::atomic<int> calls{0};
  OnLoop([&] {
    ASSERT_TRUE(loop_
                    ->Watch(a[0], EPOLLIN,
                            [&](uint32_t) {
                              ++calls;
                              loop_->Unwatch(a[0]);
                              loop_->Unwatch(b[0]);
                            })
                    .ok());
    ASSERT_TRUE(loop_
                    ->Watch(b[0], EPOLLIN,
                            [&](uint32_t) {
                              ++calls;
                              loop_->Unwatch(a[0]);
                              loop_->Unwatch(b[0]);
                            })
                    .ok());
  });
  OnLoop([] {});
  OnLoop([] {});
  EXPECT_EQ(calls.load(), 1);
  for (int fd : {a[0], a[1], b[0], b[1]}) {
    ::close(fd);
  }
}

// An fd that moves to another loop (the scheduler's instance channels): Forget from any thread
// takes it out of the old loop's epoll set, Watch on the new one reports it there only, and a
// later Watch on the old loop replaces the stale entry. Rearm changes the events it reports.
TEST_F(EventLoopTest, AnFdMovesBetweenLoopsWithForgetAndWatchAndRearmChangesItsEvents) {
  auto other = std::move(EventLoop::Create().value());
  std::thread other_thread([&] { other->Run(); });
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  std::atomic<int> on_a{0};
  std::atomic<int> on_b{0};
  auto drain = [&] {
    char buf[16];
    while (::read(sv[0], buf, sizeof buf) > 0) {
    }
  };
  auto watch = [&](EventLoop* loop, std::atomic<int>* count) {
    std::promise<Status> watched;
    loop->Post([&] {
      watched.set_value(loop->Watch(sv[0], EPOLLIN | EPOLLET, [&, count](uint32_t events) {
        if (events & EPOLLIN) {
          drain();
          ++*count;
        }
      }));
    });
    auto f = watched.get_future();
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  };
  auto turn = [](EventLoop* loop) {  // one full turn of `loop`
    for (int i = 0; i < 2; ++i) {
      std::promise<void> done;
      loop->Post([&] { done.set_value(); });
      ASSERT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
    }
  };
  auto eventually = [](const std::atomic<int>& n, int want) {
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (n.load() < want && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    return n.load() == want;
  };
  watch(loop_.get(), &on_a);
  ASSERT_EQ(::write(sv[1], "x", 1), 1);
  ASSERT_TRUE(eventually(on_a, 1));
  loop_->Forget(sv[0]);  // from this thread, not the loop's
  watch(other.get(), &on_b);
  ASSERT_EQ(::write(sv[1], "y", 1), 1);
  ASSERT_TRUE(eventually(on_b, 1));
  turn(loop_.get());
  EXPECT_EQ(on_a.load(), 1) << "the loop it moved away from still reported it";
  other->Forget(sv[0]);
  watch(loop_.get(), &on_a);  // back: replaces the stale entry
  ASSERT_EQ(::write(sv[1], "z", 1), 1);
  ASSERT_TRUE(eventually(on_a, 2));
  turn(other.get());
  EXPECT_EQ(on_b.load(), 1);
  // Rearm: the same registration now also reports that the fd is writable.
  std::atomic<int> writable{0};
  OnLoop([&] {
    loop_->Unwatch(sv[0]);
    ASSERT_TRUE(loop_
                    ->Watch(sv[0], EPOLLIN | EPOLLET,
                            [&](uint32_t events) {
                              if (events & EPOLLOUT) {
                                ++writable;
                              }
                            })
                    .ok());
  });
  turn(loop_.get());
  EXPECT_EQ(writable.load(), 0);
  OnLoop([&] { EXPECT_TRUE(loop_->Rearm(sv[0], EPOLLIN | EPOLLOUT | EPOLLET).ok()); });
  EXPECT_TRUE(eventually(writable, 1));
  OnLoop([&] { EXPECT_FALSE(loop_->Rearm(sv[1], EPOLLIN).ok()) << "not watched"; });
  OnLoop([&] { loop_->Unwatch(sv[0]); });
  other->Stop();
  other_thread.join();
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_F(EventLoopTest, TimersFireInOrderNotEarlyAndCanBeCancelled) {
  std::vector<int> fired;
  std::promise<void> last;
  const auto t0 = Clock::now();
  std::vector<Clock::time_point> when(3);
  OnLoop([&] {
    loop_->AddTimer(t0 + milliseconds(30), [&] {
      fired.push_back(2);
      when[2] = Clock::now();
      last.set_value();
    });
    loop_->AddTimer(t0 + milliseconds(10), [&] {
      fired.push_back(1);
      when[1] = Clock::now();
    });
    const uint64_t cancelled = loop_->AddTimer(t0 + milliseconds(20), [&] { fired.push_back(9); });
    loop_->CancelTimer(cancelled);
    loop_->CancelTimer(12345);  // unknown: ignored
  });
  ASSERT_EQ(last.get_future().wait_for(kWait), std::future_status::ready);
  ASSERT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_GE(when[1] - t0, milliseconds(10));
  EXPECT_GE(when[2] - t0, milliseconds(30));
}

TEST_F(EventLoopTest, ARescheduledTimerFiresOnceAtItsNewTimeAndReusedSlotsGetNewIds) {
  std::vector<int> fired;
  std::promise<void> last;
  const auto t0 = Clock::now();
  Clock::time_point moved_at;
  uint64_t stale_id = 0;
  OnLoop([&] {
    // Moved later, then earlier, then later again: it fires once, at its last time, and a timer
    // due between its first and last times fires before it.
    const uint64_t id = loop_->AddTimer(t0 + milliseconds(5), [&] {
      fired.push_back(2);
      moved_at = Clock::now();
    });
    ASSERT_TRUE(loop_->RescheduleTimer(id, t0 + milliseconds(60)));
    ASSERT_TRUE(loop_->RescheduleTimer(id, t0 + milliseconds(1)));
    ASSERT_TRUE(loop_->RescheduleTimer(id, t0 + milliseconds(40)));
    loop_->AddTimer(t0 + milliseconds(20), [&] { fired.push_back(1); });
    loop_->AddTimer(t0 + milliseconds(80), [&] {
      fired.push_back(3);
      last.set_value();
    });
    // A cancelled timer's slot is reused with a new id: the old id no longer names it.
    stale_id = loop_->AddTimer(t0 + milliseconds(10), [&] { fired.push_back(9); });
    loop_->CancelTimer(stale_id);
    EXPECT_FALSE(loop_->RescheduleTimer(stale_id, t0 + milliseconds(10)));
    const uint64_t reused = loop_->AddTimer(t0 + milliseconds(30), [&] { fired.push_back(9); });
    EXPECT_NE(reused, stale_id);
    EXPECT_NE(reused, 0u);
    loop_->CancelTimer(stale_id);  // must not cancel `reused`... which is then cancelled itself
    loop_->CancelTimer(reused);
    // Many moves and cancels (a connection's deadline per request) leave no stale entry behind
    // that fires: compaction keeps only live ones.
    for (int i = 0; i < 10'000; ++i) {
      const uint64_t churn = loop_->AddTimer(t0 + milliseconds(50), [&] { fired.push_back(9); });
      ASSERT_TRUE(loop_->RescheduleTimer(churn, t0 + milliseconds(55)));
      loop_->CancelTimer(churn);
    }
  });
  ASSERT_EQ(last.get_future().wait_for(kWait), std::future_status::ready);
  ASSERT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(moved_at - t0, milliseconds(40));
  OnLoop([&] { EXPECT_FALSE(loop_->RescheduleTimer(stale_id, Clock::now())); });
}

TEST_F(EventLoopTest, ATimerAddedByAFiringTimerThatIsAlreadyDueFiresInTheSameRun) {
  std::promise<void> done;
  std::vector<int> fired;
  OnLoop([&] {
    loop_->AddTimer(Clock::now(), [&] {
      fired.push_back(1);
      loop_->AddTimer(Clock::now() - milliseconds(1), [&] {
        fired.push_back(2);
        done.set_value();
      });
    });
  });
  ASSERT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

TEST(EventLoop, WhatWasPostedBeforeStopRunsBeforeRunReturns) {
  auto loop = std::move(EventLoop::Create().value());
  std::atomic<bool> ran{false};
  std::thread t([&] { loop->Run(); });
  loop->Post([&] { ran = true; });
  loop->Stop();
  t.join();
  EXPECT_TRUE(ran.load());
}

TEST(BlockingPool, RunsBlockingTasksConcurrently) {
  BlockingPool pool;
  constexpr int kTasks = 8;
  std::latch all_started(kTasks);
  std::latch release(1);
  std::atomic<int> done{0};
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(pool.Run([&] {
      all_started.count_down();
      release.wait();  // every task blocks: they only all start if each has a thread
      ++done;
    }));
  }
  all_started.wait();
  release.count_down();
  for (auto end = Clock::now() + kWait; done.load() < kTasks && Clock::now() < end;) {
    std::this_thread::yield();
  }
  EXPECT_EQ(done.load(), kTasks);
}

TEST(BlockingPool, IdleThreadsExitAndNewTasksStillRun) {
  BlockingPool pool(milliseconds(10), /*keep_idle=*/0);
  std::promise<pid_t> first;
  ASSERT_TRUE(pool.Run([&] { first.set_value(::gettid()); }));
  auto first_tid = first.get_future();
  ASSERT_EQ(first_tid.wait_for(kWait), std::future_status::ready);
  // The worker thread itself goes away once idle for 10 ms: its task leaves /proc/self/task
  // (the kernel reaps an exited thread at once; the pool joins it later).
  const std::string task = "/proc/self/task/" + std::to_string(first_tid.get());
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (::access(task.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(2));  // polling with a deadline
  }
  EXPECT_NE(::access(task.c_str(), F_OK), 0) << "the idle thread never exited: " << task;
  // And the pool starts a new thread for the next task.
  std::promise<void> second;
  ASSERT_TRUE(pool.Run([&] { second.set_value(); }));
  EXPECT_EQ(second.get_future().wait_for(kWait), std::future_status::ready);
}

// Of two threads idle past the timeout one exits and one stays, and the next task runs on it:
// the first task after a quiet spell does not wait for a new thread.
TEST(BlockingPool, KeepsOneIdleThreadForTheNextTask) {
  BlockingPool pool(milliseconds(10));  // keep_idle = 1
  std::promise<void> both_running;
  std::atomic<int> running{0};
  std::array<std::promise<pid_t>, 2> tids;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.Run([&, i] {
      if (++running == 2) {
        both_running.set_value();
      }
      // Hold this thread until both run: two threads, not one taking both tasks.
      while (running.load() < 2) {
        std::this_thread::yield();
      }
      tids[static_cast<std::size_t>(i)].set_value(::gettid());
    }));
  }
  ASSERT_EQ(both_running.get_future().wait_for(kWait), std::future_status::ready);
  std::array<std::string, 2> task;
  for (int i = 0; i < 2; ++i) {
    auto f = tids[static_cast<std::size_t>(i)].get_future();
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    task[static_cast<std::size_t>(i)] = "/proc/self/task/" + std::to_string(f.get());
  }
  ASSERT_NE(task[0], task[1]);
  auto alive = [&] {
    return (::access(task[0].c_str(), F_OK) == 0 ? 1 : 0) +
           (::access(task[1].c_str(), F_OK) == 0 ? 1 : 0);
  };
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (alive() == 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(2));  // polling with a deadline
  }
  ASSERT_EQ(alive(), 1) << "one of two idle threads exits";
  const std::string kept = ::access(task[0].c_str(), F_OK) == 0 ? task[0] : task[1];
  std::promise<pid_t> next;
  ASSERT_TRUE(pool.Run([&] { next.set_value(::gettid()); }));
  auto next_tid = next.get_future();
  ASSERT_EQ(next_tid.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ("/proc/self/task/" + std::to_string(next_tid.get()), kept)
      << "the next task ran on a new thread, not the kept one";
}

TEST(BlockingPool, TheDestructorRunsQueuedTasksAndJoins) {
  std::atomic<int> done{0};
  {
    BlockingPool pool;
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(pool.Run([&] {
        std::this_thread::sleep_for(milliseconds(1));
        ++done;
      }));
    }
  }
  EXPECT_EQ(done.load(), 20);
}

}  // namespace
}  // namespace faas
