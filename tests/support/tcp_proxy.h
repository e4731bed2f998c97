// Test support: a TCP proxy on 127.0.0.1 in front of a local server, to break one exchange of a
// client under test at a chosen point, deterministically.
//
//   TcpProxy proxy(redis.port());              // listens on a free port; forwards both ways
//   ... client connects to proxy.port() ...
//   proxy.Arm(TcpProxy::Fault::kDropReply, /*refuse_after=*/true);
//   ... the next reply from the server is dropped and its connection closed: the server ran the
//   command, the client never hears so; new connections are refused until Refuse(false) ...
//
// One thread polls every socket. Faults are one-shot. Not a general proxy: for tests only.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

namespace faas::testing {

class TcpProxy {
 public:
  enum class Fault {
    kNone,
    kDropRequest,  // the next bytes a client sends are not forwarded; that connection closes
    kDropReply,    // the next bytes the server sends are not forwarded; that connection closes
  };

  explicit TcpProxy(int target_port);  // aborts the test binary if it cannot listen
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Breaks the next exchange as `fault` says. With `refuse_after`, the listener closes at the
  // same moment (before the broken connection does), so a reconnect is refused.
  void Arm(Fault fault, bool refuse_after = false);
  // Closes (true) or reopens (false) the listener on the same port.
  void Refuse(bool refuse);
  int faults_fired() const { return fired_.load(); }

 private:
  void Run();
  void Wake();
  void Listen();

  int target_port_;
  int port_ = 0;
  int wake_[2] = {-1, -1};  // a pipe: the poll loop rereads its settings

  std::mutex mu_;
  int listen_fd_ = -1;  // guarded by mu_
  Fault armed_ = Fault::kNone;
  bool refuse_after_ = false;
  bool stop_ = false;

  std::atomic<int> fired_{0};
  std::thread thread_;
};

}  // namespace faas::testing
