#include "faas/sandbox/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "faas/base/unique_fd.h"

namespace faas::sandbox {
namespace {

using std::chrono::milliseconds;

struct Pair {
  UniqueFd a, b;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a.Reset(sv[0]);
    b.Reset(sv[1]);
    ::fcntl(a.Get(), F_SETFL, O_NONBLOCK);
  }
};

TEST(Channel, RoundTripsSmallAndLargeFrames) {
  Pair p;
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{70000}, std::size_t{6u << 20}}) {
    std::string payload(size, 'z');
    std::thread writer([&] { ASSERT_TRUE(WriteFrame(p.b.Get(), payload).ok()); });
    auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(10));
    writer.join();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->size(), size);
  }
}

TEST(Channel, OversizedLengthIsAProtocolViolationBeforeAllocating) {
  Pair p;
  const unsigned char header[] = {0xff, 0xff, 0xff, 0x7f};
  ASSERT_EQ(::write(p.b.Get(), header, 4), 4);
  auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal);
  EXPECT_NE(got.status().message().find("protocol violation"), std::string::npos);
}

TEST(Channel, TruncatedFrameIsAProtocolViolation) {
  Pair p;
  const unsigned char partial[] = {10, 0, 0, 0, 'a', 'b'};
  ASSERT_EQ(::write(p.b.Get(), partial, sizeof partial), 6);
  p.b.Reset();
  auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("protocol violation"), std::string::npos);
}

TEST(Channel, CleanEofIsUnavailable) {
  Pair p;
  p.b.Reset();
  auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
}

TEST(Channel, SilentPeerHitsTheDeadline) {
  Pair p;
  auto t0 = Clock::now();
  auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, t0 + milliseconds(50));
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(Clock::now() - t0, milliseconds(50));
}

TEST(Channel, PeerThatDoesNotReadHitsTheWriteDeadline) {
  Pair p;
  std::string big(8u << 20, 'x');  // more than the socket buffer holds
  auto got = WriteFrame(p.a.Get(), big, Clock::now() + milliseconds(50));
  EXPECT_EQ(got.code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace faas::sandbox
