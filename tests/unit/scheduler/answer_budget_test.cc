// AnswerBudget: first come, first served; a waiter that gives up lets the ones behind it in;
// bytes taken for a waiter are never lost.
#include "answer_budget.h"

#include <thread>

#include <gtest/gtest.h>

#include "faas/sandbox/channel.h"

namespace faas::scheduler {
namespace {

constexpr std::size_t kFrame = sandbox::kFrameHeaderBytes + sandbox::kMaxFrameBytes;

TEST(AnswerBudget, TheLimitHoldsAtLeastOneLargestFrame) {
  EXPECT_EQ(AnswerBudget(1).Limit(), kFrame);
  EXPECT_EQ(AnswerBudget(3 * kFrame).Limit(), 3 * kFrame);
}

TEST(AnswerBudget, WaitersAreServedInOrderWhenBytesComeBack) {
  AnswerBudget b(2 * kFrame);
  EXPECT_EQ(b.Take(kFrame, nullptr), 0u);
  EXPECT_EQ(b.Take(kFrame, nullptr), 0u);
  std::vector<int> woken;
  auto first = b.Take(kFrame, [&] { woken.push_back(1); });
  auto second = b.Take(10, [&] { woken.push_back(2); });  // fits only after the first: FIFO
  ASSERT_NE(first, 0u);
  ASSERT_NE(second, 0u);
  EXPECT_EQ(b.Waiting(), 2u);
  b.Give(kFrame);
  EXPECT_EQ(woken, std::vector<int>{1});  // the first took the frame; 10 bytes do not fit
  EXPECT_EQ(b.Used(), 2 * kFrame);
  EXPECT_FALSE(b.Withdraw(first));  // already served: its bytes are the caller's to give back
  b.Give(kFrame);
  EXPECT_EQ(woken, (std::vector<int>{1, 2}));
  EXPECT_EQ(b.Used(), kFrame + 10);
  // Nobody waits now, so a request that fits is served at once.
  EXPECT_EQ(b.Take(100, nullptr), 0u);
}

TEST(AnswerBudget, AWaiterThatGivesUpLetsTheOnesBehindIt) {
  AnswerBudget b(kFrame);
  EXPECT_EQ(b.Take(kFrame - 100, nullptr), 0u);
  bool small = false;
  auto big = b.Take(kFrame, nullptr);
  auto t = b.Take(50, [&] { small = true; });  // would fit, but waits behind `big`
  ASSERT_NE(t, 0u);
  EXPECT_FALSE(small);
  EXPECT_TRUE(b.Withdraw(big));
  EXPECT_TRUE(small);
  EXPECT_EQ(b.Used(), kFrame - 50);
}

TEST(AnswerBudget, TakeUntilWaitsForBytesOrTheDeadline) {
  AnswerBudget b(kFrame);
  EXPECT_TRUE(b.TakeUntil(kFrame, Clock::now()));
  EXPECT_FALSE(b.TakeUntil(1, Clock::now() + std::chrono::milliseconds(20)));
  EXPECT_EQ(b.Waiting(), 0u);
  std::thread giver([&] { b.Give(kFrame); });
  EXPECT_TRUE(b.TakeUntil(kFrame, Clock::now() + std::chrono::seconds(10)));
  giver.join();
  EXPECT_EQ(b.Used(), kFrame);
}

}  // namespace
}  // namespace faas::scheduler
