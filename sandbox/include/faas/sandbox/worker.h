// faas-worker: the process that hosts one function instance (docs/architecture.md).
//
// Started by the scheduler as `faas-worker --library PATH --parent-pid PID --uid U --gid G
// [--memory-bytes N] [--tmp-bytes N] [--network none|outbound] [--zygote]` with the channel socket
// at fd 3 and stdout/stderr pointing at the instance's log memfd. It enters the jail first
// (EnterJail, docs/sandbox.md), then loads the library, checks its ABI, runs faas_init, reports
// WorkerReady, and serves one WorkerRequest at a time until the channel closes. With --zygote it
// serves fork requests instead, and each forked child sends its own WorkerReady and serves
// invocations (docs/design/0003-zygote.md). Nothing in here is trusted by the daemon.
#pragma once

namespace faas::sandbox {

// Exit codes of the worker when it gives up before or between invocations.
inline constexpr int kExitUsage = 100;         // bad command line
inline constexpr int kExitNoChannel = 101;     // fd 3 is not a socket
inline constexpr int kExitJail = 102;          // a confinement step failed
inline constexpr int kExitBadFrame = 103;      // malformed frame from the daemon
inline constexpr int kExitChannelError = 104;  // channel I/O failed

int WorkerMain(int argc, char** argv);

struct InstanceJail;

// With --zygote, after a successful ready frame: serve fork requests on `channel_fd` (zygote.cc).
// Returns only in a forked child, whose `channel_fd` and stdout/stderr are then its own, which
// has entered `jail` (its own namespaces, /tmp and final filter; null only without a jail) and
// has already sent its ready frame.
void ServeForks(int channel_fd, const InstanceJail* jail);

}  // namespace faas::sandbox
