// WarmTracker (cluster/include/faas/cluster/warm_tracker.h): which nodes served a key lately.
// Time is passed in, so the window is tested without waiting.
#include "faas/cluster/warm_tracker.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace faas::cluster {
namespace {

using std::chrono::seconds;
using Clock = WarmTracker::Clock;

std::vector<NodeLoad> Nodes() {
  return {{.id = "a"}, {.id = "b"}, {.id = "c"}};
}

TEST(WarmTracker, MarksTheNodesThatServedTheKeyWithinTheWindow) {
  WarmTracker t(seconds(10));
  const Clock::time_point t0{seconds(1000)};
  t.Served("f@1", "a", t0);
  t.Served("f@1", "c", t0 + seconds(5));
  t.Served("g@1", "b", t0);
  std::vector<NodeLoad> n = Nodes();
  t.Mark("f@1", n, t0 + seconds(6));
  EXPECT_TRUE(n[0].warm);
  EXPECT_FALSE(n[1].warm);  // served g@1, not f@1
  EXPECT_TRUE(n[2].warm);
  n = Nodes();
  t.Mark("f@1", n, t0 + seconds(12));  // a's call is 12 s old, c's 7 s
  EXPECT_FALSE(n[0].warm);
  EXPECT_TRUE(n[2].warm);
  n = Nodes();
  t.Mark("f@2", n, t0);  // another version is another key
  EXPECT_FALSE(n[0].warm || n[1].warm || n[2].warm);
}

TEST(WarmTracker, ANewerCallRenewsAndAnOlderOneDoesNotShortenIt) {
  WarmTracker t(seconds(10));
  const Clock::time_point t0{seconds(1000)};
  t.Served("f@1", "a", t0 + seconds(8));
  t.Served("f@1", "a", t0);  // answered late, sent earlier: keeps the newer time
  std::vector<NodeLoad> n = Nodes();
  t.Mark("f@1", n, t0 + seconds(15));
  EXPECT_TRUE(n[0].warm);
}

TEST(WarmTracker, ForgetsKeysNotServedForAWindow) {
  WarmTracker t(seconds(10));
  const Clock::time_point t0{seconds(1000)};
  for (int i = 0; i < 100; ++i) {
    t.Served("f" + std::to_string(i) + "@1", "a", t0);
  }
  EXPECT_EQ(t.Keys(), 100u);
  t.Served("new@1", "b", t0 + seconds(11));  // a sweep is due: the 100 are past the window
  EXPECT_EQ(t.Keys(), 1u);
}

}  // namespace
}  // namespace faas::cluster
