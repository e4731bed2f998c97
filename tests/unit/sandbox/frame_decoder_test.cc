// FrameDecoder: the one decoder of the channel's frame format, fed the way both of its readers
// feed it (byte by byte, in pieces, several frames in one read), and ReadFrame, which reads
// through it from a real socketpair.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"

namespace faas::sandbox {
namespace {

std::string Framed(std::string_view payload) {
  std::string frame(kFrameHeaderBytes, '\0');
  frame += payload;
  EXPECT_TRUE(FillFrameHeader(&frame));
  return frame;
}

TEST(FrameDecoder, PartialHeaderAsksForTheRestOfIt) {
  const FrameDecoder d(16);
  const std::string wire = Framed("hello");
  std::string frame;
  for (std::size_t i = 0; i < kFrameHeaderBytes; ++i) {
    auto missing = d.Missing(frame);
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(*missing, kFrameHeaderBytes - i);
    auto taken = d.Feed(&frame, wire.substr(i, 1));
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(*taken, 1u);
  }
  auto missing = d.Missing(frame);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, 5u);  // the header is known: the payload's size
}

TEST(FrameDecoder, PartialBodyCountsDown) {
  const FrameDecoder d(16);
  const std::string wire = Framed("hello");
  std::string frame;
  auto taken = d.Feed(&frame, std::string_view(wire).substr(0, 6));  // header + "he"
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, 6u);
  EXPECT_EQ(*d.Missing(frame), 3u);
  taken = d.Feed(&frame, std::string_view(wire).substr(6));
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, 3u);
  EXPECT_EQ(*d.Missing(frame), 0u);
  EXPECT_EQ(frame, wire);  // as on the wire: header in front
}

TEST(FrameDecoder, RefusesAnOversizedAnnouncementBeforeAnyPayload) {
  const FrameDecoder d(4);
  const std::string wire = Framed("hello");
  std::string frame;
  auto taken = d.Feed(&frame, wire);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), StatusCode::kInternal);
  EXPECT_EQ(taken.status().message(),
            "protocol violation: frame of 5 bytes exceeds the limit of 4");
  EXPECT_EQ(frame.size(), kFrameHeaderBytes);  // nothing taken past the header
  // A 4 GiB announcement is refused the same way, with nothing allocated for it.
  std::string huge("\xff\xff\xff\xff", 4);
  std::string got;
  auto refused = FrameDecoder(kMaxFrameBytes).Feed(&got, huge);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "protocol violation: frame of 4294967295 bytes exceeds "
            "the limit of " +
                std::to_string(kMaxFrameBytes));
}

TEST(FrameDecoder, ZeroLengthFrameIsCompleteWithItsHeader) {
  const FrameDecoder d(16);
  std::string frame;
  auto taken = d.Feed(&frame, Framed("") + "next");
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, kFrameHeaderBytes);
  EXPECT_EQ(*d.Missing(frame), 0u);
}

TEST(FrameDecoder, TwoFramesInOneReadAreTakenOneAtATime) {
  const FrameDecoder d(16);
  const std::string wire = Framed("one") + Framed("second");
  std::string first;
  auto taken = d.Feed(&first, wire);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, kFrameHeaderBytes + 3);
  EXPECT_EQ(first.substr(kFrameHeaderBytes), "one");
  std::string second;
  taken = d.Feed(&second, std::string_view(wire).substr(*taken));
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(second.substr(kFrameHeaderBytes), "second");
  EXPECT_EQ(*d.Missing(second), 0u);
  // A reader that expects one frame calls the rest a violation.
  auto one = FrameBytesMissing(wire, 16);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().message(), FrameDecoder::Trailing().message());
}

TEST(FrameDecoder, NamesWhereTheStreamEnded) {
  const std::string wire = Framed("hello");
  EXPECT_EQ(FrameDecoder::Ended("").code(), StatusCode::kUnavailable);
  EXPECT_EQ(FrameDecoder::Ended("").message(), "end of stream");
  EXPECT_EQ(FrameDecoder::Ended(wire.substr(0, 2)).message(),
            "protocol violation: stream ended inside a frame header");
  EXPECT_EQ(FrameDecoder::Ended(wire.substr(0, 6)).message(),
            "protocol violation: stream ended inside a frame (2 of 5 bytes)");
  EXPECT_EQ(FrameDecoder::Ended(wire.substr(0, 6)).code(), StatusCode::kInternal);
}

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

TEST(ReadFrame, NeverReadsPastItsFrame) {
  Pair p;
  const std::string wire = Framed("one") + Framed("") + Framed("three");
  ASSERT_EQ(::send(p.b.Get(), wire.data(), wire.size(), 0), static_cast<ssize_t>(wire.size()));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (const char* want : {"one", "", "three"}) {
    auto got = ReadFrame(p.a.Get(), 16, deadline);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, want);
  }
}

TEST(ReadFrame, UsesTheDecodersWordsWhenTheStreamEnds) {
  const std::string wire = Framed("hello");
  for (std::size_t cut : {std::size_t{0}, std::size_t{2}, std::size_t{6}}) {
    Pair p;
    ASSERT_EQ(::send(p.b.Get(), wire.data(), cut, 0), static_cast<ssize_t>(cut));
    p.b.Reset();
    auto got = ReadFrame(p.a.Get(), 16, Clock::now() + std::chrono::seconds(5));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().ToString(), FrameDecoder::Ended(wire.substr(0, cut)).ToString()) << cut;
  }
}

}  // namespace
}  // namespace faas::sandbox
