#include "faas/sandbox/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{70000}, std::size_t{6u << 20}}) {
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

// A frame built in place (payload serialised after a reserved header) reads back like any other.
TEST(Channel, FramesBuiltInPlaceRoundTrip) {
  Pair p;
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{200000}}) {
    std::string frame(kFrameHeaderBytes, '?');
    frame.append(size, 'q');
    std::thread writer([&] { ASSERT_TRUE(WriteFramed(p.b.Get(), &frame).ok()); });
    auto got = ReadFrame(p.a.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(10));
    writer.join();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, std::string(size, 'q'));
  }
  std::string no_header = "ab";
  EXPECT_EQ(WriteFramed(p.b.Get(), &no_header).code(), StatusCode::kInvalidArgument);
}

// Zygote fork requests: one byte with fds that arrive as new, working descriptors.
TEST(Channel, PassesFdsWithOneByte) {
  Pair p;
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
  const int send[] = {w.Get(), r.Get()};
  ASSERT_TRUE(SendWithFds(p.b.Get(), 'F', send).ok());
  auto got = ReceiveWithFds(p.a.Get(), 2);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->first, 'F');
  ASSERT_EQ(got->second.size(), 2u);
  EXPECT_NE(got->second[0].Get(), w.Get());  // new descriptors for the same pipe
  EXPECT_NE(::fcntl(got->second[0].Get(), F_GETFD) & FD_CLOEXEC, 0);
  ASSERT_EQ(::write(got->second[0].Get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(r.Get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(Channel, TheWrongNumberOfFdsIsAProtocolViolation) {
  Pair p;
  const int one[] = {p.b.Get()};
  ASSERT_TRUE(SendWithFds(p.b.Get(), 'F', one).ok());
  auto got = ReceiveWithFds(p.a.Get(), 2);
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  p.b.Reset();
  EXPECT_EQ(ReceiveWithFds(p.a.Get(), 2).status().code(), StatusCode::kUnavailable);
}

// The kernel names the writer of the next byte: a forked child, not whoever holds the socket.
TEST(Channel, PeekSenderPidNamesTheProcessThatWrote) {
  Pair p;
  int on = 1;
  ASSERT_EQ(::setsockopt(p.a.Get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::_exit(WriteFrame(p.b.Get(), "hi").ok() ? 0 : 1);
  }
  ASSERT_GT(child, 0);
  auto pid = PeekSenderPid(p.a.Get(), Clock::now() + std::chrono::seconds(10));
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(*pid, child);
  // Peeking consumed nothing: the frame is still there.
  auto frame = ReadFrame(p.a.Get(), 16, Clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(*frame, "hi");
}

TEST(FrameBytesMissing, CountsDownToACompleteFrame) {
  std::string frame(kFrameHeaderBytes, '\0');
  frame += "hello";
  ASSERT_TRUE(FillFrameHeader(&frame));
  for (std::size_t n = 0; n <= frame.size(); ++n) {
    auto missing = FrameBytesMissing(std::string_view(frame).substr(0, n), 16);
    ASSERT_TRUE(missing.ok()) << n << ": " << missing.status().ToString();
    EXPECT_EQ(*missing, n < kFrameHeaderBytes ? kFrameHeaderBytes - n : frame.size() - n) << n;
  }
}

TEST(FrameBytesMissing, RefusesOversizedFramesAndTrailingBytes) {
  std::string frame(kFrameHeaderBytes, '\0');
  frame += "hello";
  ASSERT_TRUE(FillFrameHeader(&frame));
  auto over = FrameBytesMissing(std::string_view(frame).substr(0, kFrameHeaderBytes), 4);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kInternal);
  EXPECT_EQ(over.status().message(), "protocol violation: frame of 5 bytes exceeds the limit of 4");
  auto trailing = FrameBytesMissing(frame + "x", 16);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.status().message(), "protocol violation: bytes after the response frame");
  // ReadFrame refuses the oversized header with the same words.
  Pair p;
  ASSERT_TRUE(WriteFrame(p.b.Get(), "hello").ok());
  auto read = ReadFrame(p.a.Get(), 4, Clock::now() + std::chrono::seconds(5));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), over.status().message());
}

}  // namespace
}  // namespace faas::sandbox
