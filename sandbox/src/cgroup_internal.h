// Private to sandbox/src/cgroup*.cc: the spare pool's state and the cgroup file helpers the
// files share. cgroup.cc finds and delegates the daemon's cgroup (v1 or v2) and makes the function
// levels; cgroup_spares.cc keeps empty instance groups ready; cgroup_instance.cc creates, reads
// and empties one instance's group.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "faas/sandbox/cgroup.h"

namespace faas::sandbox {

// The spare pool: a refill thread keeps `want` empty groups made with `base`'s limits at each
// level (the top, and each live function level). A spare does not hold its function level: the
// level's destructor drops its spares (DropSpares) before it removes itself.
struct CgroupRoot::Spares {
  struct Level {
    std::weak_ptr<FunctionCgroup> function;  // empty for the top level
    std::deque<std::unique_ptr<InstanceCgroup>> ready;
  };
  std::mutex mu;
  std::condition_variable wake;  // refill: a spare was taken, a level appeared, or stop
  std::map<const FunctionCgroup*, Level> levels;  // nullptr: the top level
  std::size_t want = 0;
  CgroupLimits base;
  bool stop = false;
  std::thread thread;
};

namespace cgroup_internal {

// Creates the v1 group `rel` (libcgroup's name; directory `dir`) of controller `ctrl`, with
// `values` written in this order when it is created. A failed create may still have made the
// directory (libcgroup 2.0.2 can leave it behind): callers record `dir` for removal either way.
Status CreateV1Group(const std::string& rel, const std::string& dir, const std::string& ctrl,
                     const std::vector<std::pair<std::string, std::string>>& values);

// Writes `value` to the cgroup file `path` (one write).
Status WriteFile(const std::string& path, const std::string& value);

// The contents of a small file, "" when unreadable.
std::string ReadSmall(const std::string& path);

// A memory limit of `bytes` on the existing v1 group at `dir`, which grows it when `grows`.
// memory.memsw.limit_in_bytes (memory + swap; only with swap accounting) must stay >=
// memory.limit_in_bytes at every step: it is raised first when the limit grows, last when it
// shrinks.
Status SetV1Memory(const std::string& dir, uint64_t bytes, bool grows);

// Value of "key N" in a flat keyed file (memory.events, cpu.stat, pids.events, oom_control).
uint64_t KeyedValue(const std::string& text, const std::string& key);

// The pids in `dir`/cgroup.procs.
std::vector<pid_t> Members(const std::string& dir);

}  // namespace cgroup_internal
}  // namespace faas::sandbox
