#include "answer_budget.h"

#include <algorithm>

#include "faas/sandbox/channel.h"

namespace faas::scheduler {

AnswerBudget::AnswerBudget(std::size_t limit)
    : limit_(std::max(limit, sandbox::kFrameHeaderBytes + sandbox::kMaxFrameBytes)) {}

AnswerBudget::Ticket AnswerBudget::Take(std::size_t n, std::function<void()> wake) {
  std::lock_guard lock(mu_);
  if (waiters_.empty() && n <= limit_ - used_) {
    used_ += n;
    return 0;
  }
  const Ticket t = next_++;
  waiters_.push_back(Waiter{t, n, std::move(wake), nullptr});
  return t;
}

bool AnswerBudget::Withdraw(Ticket ticket) {
  std::vector<std::function<void()>> wakes;
  bool was_waiting = false;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(waiters_.begin(), waiters_.end(),
                           [&](const Waiter& w) { return w.ticket == ticket; });
    if (it != waiters_.end()) {
      was_waiting = true;
      waiters_.erase(it);
      wakes = ServeLocked();  // the ones behind it may fit now
    }
  }
  for (auto& wake : wakes) {
    wake();
  }
  return was_waiting;
}

bool AnswerBudget::TakeUntil(std::size_t n, Clock::time_point until) {
  std::vector<std::function<void()>> wakes;
  bool granted = false;
  {
    std::unique_lock lock(mu_);
    if (waiters_.empty() && n <= limit_ - used_) {
      used_ += n;
      return true;
    }
    const Ticket t = next_++;
    waiters_.push_back(Waiter{t, n, nullptr, &granted});
    granted_cv_.wait_until(lock, until, [&] { return granted; });
    if (granted) {
      return true;
    }
    std::erase_if(waiters_, [&](const Waiter& w) { return w.ticket == t; });
    wakes = ServeLocked();
  }
  for (auto& wake : wakes) {
    wake();
  }
  return false;
}

void AnswerBudget::Give(std::size_t n) {
  if (n == 0) {
    return;  // an answer of its call's own: nothing taken
  }
  std::vector<std::function<void()>> wakes;
  {
    std::lock_guard lock(mu_);
    used_ -= std::min(n, used_);
    wakes = ServeLocked();
  }
  for (auto& wake : wakes) {
    wake();
  }
}

std::vector<std::function<void()>> AnswerBudget::ServeLocked() {
  std::vector<std::function<void()>> wakes;
  bool notify = false;
  while (!waiters_.empty() && waiters_.front().bytes <= limit_ - used_) {
    Waiter& w = waiters_.front();
    used_ += w.bytes;
    if (w.granted != nullptr) {
      *w.granted = true;
      notify = true;
    } else if (w.wake) {
      wakes.push_back(std::move(w.wake));
    }
    waiters_.pop_front();
  }
  if (notify) {
    granted_cv_.notify_all();
  }
  return wakes;
}

std::size_t AnswerBudget::Used() const {
  std::lock_guard lock(mu_);
  return used_;
}

std::size_t AnswerBudget::Waiting() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

}  // namespace faas::scheduler
