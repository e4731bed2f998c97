// EventLoop: one thread's epoll(7) reactor with timers and cross-thread posts; and BlockingPool,
// threads for work that may block, started on demand (docs/design/0006-warm-path-reactor.md).
//
//   auto loop = faas::EventLoop::Create().value();
//   std::thread t([&] { loop->Run(); });
//   loop->Post([&] { loop->Watch(fd, EPOLLIN | EPOLLET, [](uint32_t ev) { ... }); });
//   ...
//   loop->Stop(); t.join();
//
// Watch, Unwatch, AddTimer and CancelTimer are for the loop's own thread (callbacks run there);
// Post and Stop may be called from any thread. A callback may Unwatch or cancel anything,
// including itself; an fd unwatched during a batch gets no more of that batch's events.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"

namespace faas {

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t events)>;

  // Errors: Unavailable (epoll_create1 or eventfd failed).
  static Result<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs callbacks until Stop(); returns with every posted function run.
  void Run();
  // Makes Run() return after its current batch. Any thread.
  void Stop();
  // Runs `fn` on the loop thread, soon. Any thread; from the loop thread it runs after the
  // current batch (never inline).
  void Post(std::function<void()> fn);
  // True on the thread inside Run().
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.load(); }

  // Calls `cb` with the epoll events each time `fd` reports them (`events`: EPOLLIN, EPOLLOUT,
  // EPOLLET…; hang-ups and errors always). The fd must stay open until Unwatch. Loop thread.
  Status Watch(int fd, uint32_t events, FdCallback cb);
  void Unwatch(int fd);
  // Changes the events a watched fd reports (EPOLL_CTL_MOD), keeping its callback. Loop thread.
  Status Rearm(int fd, uint32_t events);
  // Takes `fd` out of the epoll set without touching the loop's bookkeeping: ANY thread, for an
  // fd whose owner moves it to another loop. Its callback may still run for events of the batch
  // in progress, and stays stored until the fd number is watched again here (Watch replaces
  // it) or unwatched; the callback must therefore check that it still owns the fd.
  void Forget(int fd);
  // Calls `fn` once at `when` (not before). Returns an id for CancelTimer (never 0). Loop thread.
  uint64_t AddTimer(Clock::time_point when, std::function<void()> fn);
  void CancelTimer(uint64_t id);  // unknown or fired ids are ignored
  // Moves a pending timer to `when`, keeping its id and function (no allocation). False when
  // the id is unknown or has fired. Loop thread.
  bool RescheduleTimer(uint64_t id, Clock::time_point when);

 private:
  EventLoop(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}
  void RunPosted();
  void RunTimers();
  int WaitMs();
  void DropStaleTimers();  // pops cancelled or moved entries off the top of timer_heap_

  struct Watched {
    uint64_t token;  // epoll data: a stale event (fd unwatched, number reused) finds no match
    FdCallback cb;
  };
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: Post and Stop
  std::atomic<std::thread::id> thread_{};
  std::atomic<bool> stop_{false};
  std::unordered_map<int, std::unique_ptr<Watched>> fds_;
  // Unwatched during the current batch: kept alive until it ends, so a callback that unwatches
  // itself (or one still to be called in the batch) is never destroyed while it runs.
  std::vector<std::unique_ptr<Watched>> retired_;
  std::unordered_map<uint64_t, int> tokens_;  // token -> fd, for events of this batch
  uint64_t next_token_ = 1;
  // Timers: a slot per pending timer (reused, so a warm request's timers allocate nothing once
  // the loop has run a while) and a binary min-heap of (when, id). Cancelling or moving a timer
  // leaves its old heap entry behind, stale: it no longer matches its slot's id and time, and is
  // dropped when it reaches the top, or by a compaction once stale entries outnumber live ones.
  // An id is the timer's sequence number (creation order, never reused) above its slot index.
  struct TimerSlot {
    uint64_t id = 0;  // 0: free
    Clock::time_point when;
    std::function<void()> fn;
  };
  struct TimerEntry {
    Clock::time_point when;
    uint64_t id;
  };
  static constexpr int kTimerSlotBits = 24;
  bool IsLive(const TimerEntry& e) const;
  std::vector<TimerSlot> timer_slots_;
  std::vector<uint32_t> free_timer_slots_;
  std::vector<TimerEntry> timer_heap_;
  std::size_t live_timers_ = 0;
  uint64_t next_timer_ = 1;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mu_
};

// Threads for work that may block (a blocking HTTP handler, killing an instance). Run never
// waits: an idle thread takes the task, else a new thread starts. Threads idle for
// `idle_timeout` exit, except the last `keep_idle`: the first task after a quiet spell (the cold
// start after scale-to-zero runs here) would otherwise wait for a new thread, which took 3 ms
// after an idle pause on the 2-vCPU VM against ~0.02-0.05 ms for waking a kept one
// (docs/design/0014). The destructor runs every queued task, then joins every thread.
class BlockingPool {
 public:
  explicit BlockingPool(std::chrono::milliseconds idle_timeout = std::chrono::seconds(10),
                        std::size_t keep_idle = 1)
      : idle_timeout_(idle_timeout), keep_idle_(keep_idle) {}
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // False only when no thread could be started and none is idle (the task is not run).
  bool Run(std::function<void()> task);

 private:
  void Work();
  const std::chrono::milliseconds idle_timeout_;
  const std::size_t keep_idle_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;         // guarded by mu_
  std::size_t idle_ = 0;                            // threads waiting for a task; guarded by mu_
  bool stopping_ = false;                           // guarded by mu_
  std::map<std::thread::id, std::thread> threads_;  // guarded by mu_
  std::vector<std::thread> exited_;                 // joined by the next Run; guarded by mu_
};

}  // namespace faas
