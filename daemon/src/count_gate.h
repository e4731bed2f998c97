// CountGate: a count of things in progress that a shutdown waits out. The node service keeps
// two: the drain gate (calls between admission and answer; closed on drain, so late calls are
// refused) and its call objects (never closed; the completion queue stops once none is left).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace faas::daemon {

class CountGate {
 public:
  // One more in progress; false (nothing counted) once Close has begun.
  bool Enter() {
    std::lock_guard lock(mu_);
    if (closed_) {
      return false;
    }
    ++count_;
    return true;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    if (--count_ == 0) {
      empty_.notify_all();
    }
  }
  // Refuses every later Enter, then waits until the count is zero or `deadline` passes.
  void Close(std::chrono::system_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    closed_ = true;
    empty_.wait_until(lock, deadline, [&] { return count_ == 0; });
  }
  // Waits until the count is zero, without closing.
  void WaitEmpty() {
    std::unique_lock lock(mu_);
    empty_.wait(lock, [&] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable empty_;
  bool closed_ = false;  // guarded by mu_
  int count_ = 0;        // guarded by mu_
};

}  // namespace faas::daemon
