#include "faas/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

namespace faas {

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.Valid()) {
    return UnavailableError(ErrnoError(errno, "epoll_create1").message());
  }
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.Valid()) {
    return UnavailableError(ErrnoError(errno, "eventfd").message());
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // token 0: the wake fd
  if (::epoll_ctl(ep.Get(), EPOLL_CTL_ADD, wake.Get(), &ev) != 0) {
    return UnavailableError(ErrnoError(errno, "epoll_ctl").message());
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(ep), std::move(wake)));
}

EventLoop::~EventLoop() = default;

void EventLoop::Stop() {
  stop_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_.Get(), &one, sizeof(one));
}

void EventLoop::Post(std::function<void()> fn) {
  bool first = false;
  {
    std::lock_guard lock(post_mu_);
    first = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (first) {  // later posts find the loop already due to drain the list
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_.Get(), &one, sizeof(one));
  }
}

Status EventLoop::Watch(int fd, uint32_t events, FdCallback cb) {
  const uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.Get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoError(errno, "epoll_ctl(ADD)");
  }
  auto& slot = fds_[fd];
  if (slot != nullptr) {  // a closed fd's stale entry (the kernel dropped it with the fd)
    tokens_.erase(slot->token);
    retired_.push_back(std::move(slot));
  }
  slot = std::make_unique<Watched>(Watched{token, std::move(cb)});
  tokens_[token] = fd;
  return OkStatus();
}

void EventLoop::Unwatch(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) {
    return;
  }
  // Fails only when the fd was closed already, which removed it from the epoll set anyway.
  ::epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, fd, nullptr);
  tokens_.erase(it->second->token);
  retired_.push_back(std::move(it->second));
  fds_.erase(it);
}

Status EventLoop::Rearm(int fd, uint32_t events) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) {
    return InternalError("Rearm of an fd that is not watched");
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second->token;
  if (::epoll_ctl(epoll_.Get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoError(errno, "epoll_ctl(MOD)");
  }
  return OkStatus();
}

void EventLoop::Forget(int fd) {
  // epoll_ctl is safe from any thread; fails only when the fd is not in the set (closed).
  ::epoll_ctl(epoll_.Get(), EPOLL_CTL_DEL, fd, nullptr);
}

namespace {

// The heap's order: earliest first, then creation order (ids grow with their sequence number).
// std::push_heap and friends build a max-heap, so "less" here means "later".
struct Later {
  template <typename E>
  bool operator()(const E& a, const E& b) const {
    return a.when != b.when ? a.when > b.when : a.id > b.id;
  }
};

}  // namespace

bool EventLoop::IsLive(const TimerEntry& e) const {
  const auto slot = static_cast<std::size_t>(e.id & ((uint64_t{1} << kTimerSlotBits) - 1));
  return slot < timer_slots_.size() && timer_slots_[slot].id == e.id &&
         timer_slots_[slot].when == e.when;
}

uint64_t EventLoop::AddTimer(Clock::time_point when, std::function<void()> fn) {
  uint32_t slot = 0;
  if (!free_timer_slots_.empty()) {
    slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  } else {
    if (timer_slots_.size() >= (std::size_t{1} << kTimerSlotBits)) {
      std::fprintf(stderr, "faas: more than 2^24 pending timers on one loop\n");
      std::terminate();
    }
    slot = static_cast<uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  }
  const uint64_t id = (next_timer_++ << kTimerSlotBits) | slot;
  TimerSlot& t = timer_slots_[slot];
  t.id = id;
  t.when = when;
  t.fn = std::move(fn);
  ++live_timers_;
  timer_heap_.push_back({when, id});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  return id;
}

void EventLoop::CancelTimer(uint64_t id) {
  const auto slot = static_cast<std::size_t>(id & ((uint64_t{1} << kTimerSlotBits) - 1));
  if (id == 0 || slot >= timer_slots_.size() || timer_slots_[slot].id != id) {
    return;
  }
  TimerSlot& t = timer_slots_[slot];
  t.id = 0;
  t.fn = nullptr;  // what it captured goes now, as it did when the map's node was erased
  free_timer_slots_.push_back(static_cast<uint32_t>(slot));
  --live_timers_;
  if (timer_heap_.size() > 2 * live_timers_ + 64) {  // compaction: amortised O(1) per cancel
    std::erase_if(timer_heap_, [this](const TimerEntry& e) { return !IsLive(e); });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  }
}

bool EventLoop::RescheduleTimer(uint64_t id, Clock::time_point when) {
  const auto slot = static_cast<std::size_t>(id & ((uint64_t{1} << kTimerSlotBits) - 1));
  if (id == 0 || slot >= timer_slots_.size() || timer_slots_[slot].id != id) {
    return false;
  }
  timer_slots_[slot].when = when;  // the old entry is stale from here
  timer_heap_.push_back({when, id});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  if (timer_heap_.size() > 2 * live_timers_ + 64) {
    std::erase_if(timer_heap_, [this](const TimerEntry& e) { return !IsLive(e); });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
  }
  return true;
}

void EventLoop::DropStaleTimers() {
  while (!timer_heap_.empty() && !IsLive(timer_heap_.front())) {
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
    timer_heap_.pop_back();
  }
}

int EventLoop::WaitMs() {
  DropStaleTimers();
  if (timer_heap_.empty()) {
    return -1;
  }
  // Rounded up, so a timer never fires early; 0 once due.
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(timer_heap_.front().when - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

void EventLoop::RunPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(post_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    fn();
  }
}

void EventLoop::RunTimers() {
  const Clock::time_point now = Clock::now();
  for (;;) {
    DropStaleTimers();
    if (timer_heap_.empty() || timer_heap_.front().when > now) {
      return;
    }
    const uint64_t id = timer_heap_.front().id;
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), Later{});
    timer_heap_.pop_back();
    const auto slot = static_cast<uint32_t>(id & ((uint64_t{1} << kTimerSlotBits) - 1));
    TimerSlot& t = timer_slots_[slot];
    std::function<void()> fn = std::move(t.fn);
    t.fn = nullptr;
    t.id = 0;
    free_timer_slots_.push_back(slot);
    --live_timers_;
    fn();  // may add, move or cancel timers (the slot is free again, its id unknown)
  }
}

void EventLoop::Run() {
  thread_.store(std::this_thread::get_id());
  std::array<epoll_event, 128> events{};
  while (!stop_.load(std::memory_order_relaxed)) {
    const int n =
        ::epoll_wait(epoll_.Get(), events.data(), static_cast<int>(events.size()), WaitMs());
    if (n < 0) {
      if (errno != EINTR) {
        std::fprintf(stderr, "faas: epoll_wait: %s\n", std::strerror(errno));
      }
      continue;
    }
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      const epoll_event& e = events[static_cast<std::size_t>(i)];
      const uint64_t token = e.data.u64;
      if (token == 0) {
        woken = true;
        continue;
      }
      auto t = tokens_.find(token);
      if (t == tokens_.end()) {
        continue;  // unwatched earlier in this batch
      }
      fds_[t->second]->cb(e.events);  // an Unwatch inside keeps it alive in retired_
    }
    if (woken) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_.Get(), &count, sizeof(count));
    }
    RunPosted();
    RunTimers();
    retired_.clear();
  }
  RunPosted();
  thread_.store(std::thread::id());
}

BlockingPool::~BlockingPool() {
  std::map<std::thread::id, std::thread> threads;
  std::vector<std::thread> exited;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
    exited.swap(exited_);
  }
  cv_.notify_all();
  for (auto& [id, t] : threads) {
    t.join();
  }
  for (auto& t : exited) {
    t.join();
  }
}

bool BlockingPool::Run(std::function<void()> task) {
  std::vector<std::thread> exited;
  {
    std::lock_guard lock(mu_);
    exited.swap(exited_);
    tasks_.push_back(std::move(task));
    if (idle_ >= tasks_.size()) {
      cv_.notify_one();
    } else {
      try {
        std::thread t([this] { Work(); });
        const std::thread::id id = t.get_id();
        threads_.emplace(id, std::move(t));
      } catch (const std::system_error&) {
        if (idle_ == 0 && threads_.empty()) {
          tasks_.pop_back();
          return false;
        }
        // A running thread takes it when it is done with its task.
      }
    }
  }
  for (auto& t : exited) {
    t.join();
  }
  return true;
}

void BlockingPool::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (!tasks_.empty()) {
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      try {
        task();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "faas: blocking task threw: %s\n", e.what());
      }
      task = nullptr;  // its captures die outside the lock
      lock.lock();
      continue;
    }
    if (stopping_) {
      return;
    }
    ++idle_;
    const bool got =
        cv_.wait_for(lock, idle_timeout_, [&] { return stopping_ || !tasks_.empty(); });
    --idle_;
    // Idle too long: exit, to be joined by the next Run (or the destructor), unless fewer than
    // keep_idle_ other threads are idle (this one then stays, and waits again).
    if (!got && idle_ >= keep_idle_) {
      auto it = threads_.find(std::this_thread::get_id());
      if (it != threads_.end()) {
        exited_.push_back(std::move(it->second));
        threads_.erase(it);
      }
      return;
    }
  }
}

}  // namespace faas
