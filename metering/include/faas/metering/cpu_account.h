// CpuAccount: splits one instance's kernel-measured CPU into what it is billed as
// (docs/metering.md): the start until ready (the function's init, and the platform's exec, jail
// or fork), each invocation (handler CPU, measured by its caller from the same counter), the
// background between invocations, and the teardown (the platform's). It only does the sums: the
// instance's process part feeds it the counter's readings (the cgroup's, or the process's).
// Not thread-safe (owned with its instance).
//
//   CpuAccount a;
//   a.Ready(/*ready=*/read(), /*jailed=*/jailed_reading);   // init = ready - jailed
//   a.InvocationStarts(read());  ...  a.InvocationEnded(read());
//   recorder.Background(fn, a.TakeBackground(std::nullopt));
#pragma once

#include <chrono>
#include <optional>

namespace faas::metering {

class CpuAccount {
 public:
  using ns = std::chrono::nanoseconds;

  // The instance sent its ready frame with the counter at `ready`. `jailed`: the reading when a
  // spawned worker said it was jailed (from there on loading and faas_init are the function's);
  // none for a forked instance, which starts initialised (init 0, all of the start platform's).
  void Ready(ns ready, std::optional<ns> jailed);
  bool IsReady() const { return ready_; }
  ns InitCpu() const { return init_; }
  ns PlatformCpu() const { return platform_; }

  // An invocation begins with the counter at `now`: what was used since the instance was ready
  // or the last invocation ended is background.
  void InvocationStarts(ns now);
  // The invocation ended with the counter at `now` (its own CPU is the caller's difference).
  void InvocationEnded(ns now) { last_ = now; }
  // Background CPU not yet taken. With `final` (a reading as the instance ends) the use since
  // the last invocation counts first. Once ready only.
  ns TakeBackground(std::optional<ns> final);
  // The counter's growth since the last reading taken into account (never negative): after
  // TakeBackground(final), the teardown's; for a zygote, its forks'.
  ns Since(ns now) const { return now > last_ ? now - last_ : ns(0); }

 private:
  bool ready_ = false;
  ns init_{0};
  ns platform_{0};
  ns last_{0};        // the reading when ready, then at the end of each invocation
  ns background_{0};  // used between invocations, not yet taken
};

}  // namespace faas::metering
