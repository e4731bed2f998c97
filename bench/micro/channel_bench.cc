// Worker channel round trip (write a frame, echo it back from a thread, read it) vs the bare
// socketpair ping-pong that bounds it, in the same run.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <benchmark/benchmark.h>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"

namespace {

void BM_SocketpairPingPong(benchmark::State& state) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  faas::UniqueFd a(sv[0]), b(sv[1]);
  std::string msg(static_cast<std::size_t>(state.range(0)), 'x');
  std::thread echo([&] {
    std::string buf(msg.size(), '\0');
    while (faas::ReadExact(b.Get(), buf).ok() && faas::WriteAll(b.Get(), buf).ok()) {
    }
  });
  std::string in(msg.size(), '\0');
  for (auto _ : state) {
    benchmark::DoNotOptimize(faas::WriteAll(a.Get(), msg).ok());
    benchmark::DoNotOptimize(faas::ReadExact(a.Get(), in).ok());
  }
  ::shutdown(a.Get(), SHUT_RDWR);
  echo.join();
}
BENCHMARK(BM_SocketpairPingPong)->Arg(64)->Arg(64 << 10);

void BM_FrameRoundTrip(benchmark::State& state) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  faas::UniqueFd a(sv[0]), b(sv[1]);
  ::fcntl(a.Get(), F_SETFL, O_NONBLOCK);
  std::string msg(static_cast<std::size_t>(state.range(0)), 'x');
  std::thread echo([&] {
    for (;;) {
      auto f = faas::sandbox::ReadFrame(b.Get(), faas::sandbox::kMaxFrameBytes);
      if (!f.ok() || !faas::sandbox::WriteFrame(b.Get(), *f).ok()) {
        return;
      }
    }
  });
  for (auto _ : state) {
    auto deadline = faas::Clock::now() + std::chrono::seconds(10);
    benchmark::DoNotOptimize(faas::sandbox::WriteFrame(a.Get(), msg, deadline).ok());
    auto r = faas::sandbox::ReadFrame(a.Get(), faas::sandbox::kMaxFrameBytes, deadline);
    benchmark::DoNotOptimize(r.ok());
  }
  ::shutdown(a.Get(), SHUT_RDWR);
  echo.join();
}
BENCHMARK(BM_FrameRoundTrip)->Arg(64)->Arg(64 << 10)->Arg(6 << 20);

}  // namespace
