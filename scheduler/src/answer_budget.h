// AnswerBudget: the bytes every worker answer being received may hold together, per daemon
// (--answer-buffer-budget; issue #13 item 5, docs/sandbox.md "Limits enforced from outside").
//
// An answer frame of at most kOwnAnswerBytes is its call's own and needs nothing from the
// budget (nearly every answer: the first read takes it whole). A larger one takes its whole
// announced size from the budget before faasd reads past its first kOwnAnswerBytes, and gives
// it back when the call ends; the buffer itself grows only as bytes arrive. When the budget
// cannot cover an answer, its call waits (first come, first served) and reads nothing more: the
// worker blocks on its full socket and the call's own deadline and CPU limit still end it. Once
// taken, an answer's bytes are never taken back, so every admitted answer can finish.
//
//   AnswerBudget::Ticket t = budget.Take(n, wake);   // 0: taken now; else `wake` runs later
//   ... budget.Withdraw(t) ...                       // gave up waiting (false: taken meanwhile)
//   budget.Give(n);                                  // done with the bytes
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "faas/base/time.h"

namespace faas::scheduler {

// An answer frame (header included) up to this size is its call's own.
inline constexpr std::size_t kOwnAnswerBytes = 64u << 10;

class AnswerBudget {
 public:
  using Ticket = uint64_t;
  // `limit` is raised to the largest frame, so that any single answer can be admitted.
  explicit AnswerBudget(std::size_t limit);
  AnswerBudget(const AnswerBudget&) = delete;
  AnswerBudget& operator=(const AnswerBudget&) = delete;

  // Takes `n` bytes now if they fit and nobody waits for bytes (returns 0). Else queues the
  // request and returns its ticket: once its bytes are taken for it, `wake` is called (on the
  // thread that gave bytes back, without any lock held).
  Ticket Take(std::size_t n, std::function<void()> wake);
  // Ends the wait of `ticket`. True when it was still waiting; false when its bytes were taken
  // for it meanwhile (its `wake` is on the way or has run): the caller now holds them.
  bool Withdraw(Ticket ticket);
  // Blocks until `n` bytes are taken (true) or `until` passes (false, nothing taken).
  bool TakeUntil(std::size_t n, Clock::time_point until);
  void Give(std::size_t n);

  std::size_t Limit() const { return limit_; }
  std::size_t Used() const;
  std::size_t Waiting() const;

 private:
  struct Waiter {
    Ticket ticket;
    std::size_t bytes;
    std::function<void()> wake;  // empty for TakeUntil (it watches `granted`)
    bool* granted;               // TakeUntil's flag, else nullptr
  };
  // Serves waiters in order while the first fits; returns the wakes to call after unlocking.
  std::vector<std::function<void()>> ServeLocked();

  const std::size_t limit_;
  mutable std::mutex mu_;
  std::condition_variable granted_cv_;  // TakeUntil waiters
  std::size_t used_ = 0;                // guarded by mu_
  std::deque<Waiter> waiters_;          // guarded by mu_
  Ticket next_ = 1;                     // guarded by mu_
};

}  // namespace faas::scheduler
