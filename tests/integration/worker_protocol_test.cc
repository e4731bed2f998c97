// The worker's side of the channel, driven directly (no scheduler): a real faas-worker, without
// its jail, on one end of a socketpair. Covers how it reads request frames: several written back
// to back are answered in order, a frame split across writes or larger than one read is whole,
// and a stream that ends inside a frame or announces an oversized one ends the worker.
#include <linux/sockios.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"
#include "faas/sandbox/worker.h"
#include "faas/v1/worker.pb.h"

#include "scheduler_support.h"

namespace faas::sandbox {
namespace {

using scheduler::testing::Eventually;

std::string Framed(const google::protobuf::MessageLite& msg) {
  std::string frame(kFrameHeaderBytes, '\0');
  msg.AppendToString(&frame);
  FillFrameHeader(&frame);
  return frame;
}

std::string Request(const std::string& id, const std::string& body) {
  v1::WorkerRequest req;
  req.set_invocation_id(id);
  req.set_method("POST");
  req.set_path("/");
  req.set_body(body);
  req.set_trigger("http");
  req.set_attempt(1);
  return Framed(req);
}

// A faas-worker (--no-jail) serving `fn` on our end of a socketpair, past its handshake.
class Worker {
 public:
  explicit Worker(const std::string& fn) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours_ = UniqueFd(sv[0]);
    UniqueFd theirs(sv[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, theirs.Get(), 3);  // dup2 clears CLOEXEC
    const std::string worker = std::string(FAAS_TEST_BIN_DIR) + "/faas-worker";
    const std::string library = std::string(FAAS_TEST_FUNCTIONS_DIR) + "/lib" + fn + ".so";
    const std::string parent = std::to_string(::getpid());
    std::vector<std::string> args = {worker,  "--no-jail",    "--library",
                                     library, "--parent-pid", parent};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    EXPECT_EQ(::posix_spawn(&pid_, worker.c_str(), &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    theirs.Reset();

    auto jailed = Read();
    EXPECT_TRUE(jailed.has_jailed());
    v1::WorkerEnv env;
    Write(Framed(env));
    auto ready = Read();
    EXPECT_TRUE(ready.has_ready() && ready.ready().ok()) << ready.ready().error();
  }
  ~Worker() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Raw bytes: whole frames, several, or parts of one.
  void Write(std::string_view bytes) const {
    while (!bytes.empty()) {
      const ssize_t n = ::send(ours_.Get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send: " << std::strerror(errno);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  v1::WorkerResponse Read() const {
    v1::WorkerResponse msg;
    auto frame = ReadFrame(ours_.Get(), kMaxFrameBytes, Clock::now() + std::chrono::seconds(10));
    EXPECT_TRUE(frame.ok()) << frame.status().message();
    if (frame.ok()) {
      EXPECT_TRUE(msg.ParseFromString(*frame));
    }
    return msg;
  }
  // Bytes written that the worker has not read yet.
  int Unread() const {
    int n = -1;
    EXPECT_EQ(::ioctl(ours_.Get(), SIOCOUTQ, &n), 0);
    return n;
  }
  void CloseOurEnd() { ::shutdown(ours_.Get(), SHUT_WR); }
  // The worker's exit code (-1 when a signal ended it).
  int Exit() {
    int status = 0;
    EXPECT_EQ(::waitpid(pid_, &status, 0), pid_);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  UniqueFd ours_;
  pid_t pid_ = 0;
};

// echo answers the request as JSON; its body appears in it verbatim (no escapes in these bodies).
bool Echoes(const v1::WorkerResponse& msg, const std::string& id, const std::string& body) {
  return msg.has_result() && msg.result().invocation_id() == id &&
         msg.result().body().find("\"" + body + "\"") != std::string::npos;
}

TEST(WorkerProtocol, RequestsWrittenBackToBackAreAnsweredInOrder) {
  Worker w("echo");
  w.Write(Request("a", "first") + Request("b", "second") + Request("c", "third"));
  EXPECT_TRUE(Echoes(w.Read(), "a", "first"));
  EXPECT_TRUE(Echoes(w.Read(), "b", "second"));
  EXPECT_TRUE(Echoes(w.Read(), "c", "third"));
  w.CloseOurEnd();
  EXPECT_EQ(w.Exit(), 0);  // closed between frames: the worker retires
}

TEST(WorkerProtocol, FrameSplitAcrossWritesIsReadWhole) {
  Worker w("echo");
  const std::string frame = Request("split", "in-two-parts");
  for (std::size_t cut : {std::size_t{2}, kFrameHeaderBytes + 3}) {
    w.Write(frame.substr(0, cut));
    ASSERT_TRUE(Eventually([&] { return w.Unread() == 0; }));  // it holds a partial frame
    w.Write(frame.substr(cut));
    EXPECT_TRUE(Echoes(w.Read(), "split", "in-two-parts"));
  }
}

TEST(WorkerProtocol, FrameLargerThanOneReadFollowedByASmallOne) {
  Worker w("echo");
  const std::string big(1u << 20, 'x');
  w.Write(Request("big", big) + Request("small", "after"));
  EXPECT_TRUE(Echoes(w.Read(), "big", big));
  EXPECT_TRUE(Echoes(w.Read(), "small", "after"));
  w.Write(Request("again", "still-serving"));  // the buffer shrank back and still works
  EXPECT_TRUE(Echoes(w.Read(), "again", "still-serving"));
}

TEST(WorkerProtocol, StreamEndingInsideAFrameIsAChannelError) {
  Worker w("hello");
  const std::string frame = Request("cut", "");
  w.Write(frame.substr(0, frame.size() - 1));
  w.CloseOurEnd();
  EXPECT_EQ(w.Exit(), kExitChannelError);
}

TEST(WorkerProtocol, OversizedFrameIsAChannelError) {
  Worker w("hello");
  const auto len = static_cast<uint32_t>(kMaxFrameBytes + 1);
  const char header[kFrameHeaderBytes] = {
      static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
      static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  w.Write(std::string_view(header, sizeof header));
  EXPECT_EQ(w.Exit(), kExitChannelError);
}

TEST(WorkerProtocol, MalformedRequestIsABadFrame) {
  Worker w("hello");
  w.Write(std::string("\x03\x00\x00\x00\xff\xff\xff", 7));
  EXPECT_EQ(w.Exit(), kExitBadFrame);
}

}  // namespace
}  // namespace faas::sandbox
