#include "faas/base/thread.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace faas {
namespace {

std::string Comm() {
  std::ifstream in("/proc/self/task/" + std::to_string(::gettid()) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(ThreadTest, NameThisThreadNamesOnlyTheCallerCutToFifteenBytes) {
  const std::string before = Comm();
  std::string in_thread;
  std::thread([&] {
    NameThisThread("faas-a-name-longer-than-fifteen");
    in_thread = Comm();
  }).join();
  EXPECT_EQ(in_thread, "faas-a-name-lon");
  EXPECT_EQ(Comm(), before);
}

// The slice is what the kernel reads back (sched_getattr's sched_runtime), where it keeps one
// per task (EEVDF, Linux 6.12+); the thread's nice value is kept either way.
TEST(ThreadTest, UseShortSlicesSetsTheSliceAndKeepsTheNiceValue) {
  struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
  } attr{};
  int nice_after = 0;
  long got = -1;
  std::thread([&] {
    ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 3), 0);
    UseShortSlices(std::chrono::microseconds(250));
    nice_after = ::getpriority(PRIO_PROCESS, 0);
    got = ::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0);
  }).join();
  EXPECT_EQ(nice_after, 3);
  ASSERT_EQ(got, 0);
  if (attr.runtime == 0) {
    GTEST_SKIP() << "this kernel keeps no slice per task (EEVDF custom slices: Linux 6.12+)";
  }
  EXPECT_EQ(attr.runtime, 250'000u);
}

}  // namespace
}  // namespace faas
