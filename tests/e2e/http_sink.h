// E2E test support: a loopback HTTP listener that callbacks and hooks are sent to. It answers
// the Nth request (N from 1) with answer(N), and keeps every request, raw.
//
//   HttpSink sink;                       // 200 to everything
//   ... "http://127.0.0.1:" + std::to_string(sink.port()) + "/hook" ...
//   std::string req = sink.AwaitContaining("\"status\":\"succeeded\"", std::chrono::seconds(30));
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "e2e/faasd_test.h"
#include "http_client.h"

namespace faas::testing {

class HttpSink {
 public:
  using Answer = std::function<std::string(int n)>;
  static std::string Ok(int /*n*/) {
    return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  }

  explicit HttpSink(Answer answer = Ok) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HttpSink() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  int port() const { return port_; }
  // How many requests it has read so far.
  int calls() const { return calls_; }

  // Waits (deadline) for the first request that `match` is true of; returns it ("" at the
  // deadline).
  std::string Await(const std::function<bool(const std::string&)>& match,
                    std::chrono::seconds timeout) {
    std::string found;
    PollUntil(
        [&] {
          std::lock_guard lock(mu_);
          for (const std::string& r : requests_) {
            if (match(r)) {
              found = r;
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }
  // Waits for a request whose text contains `text`.
  std::string AwaitContaining(const std::string& text, std::chrono::seconds timeout) {
    return Await([&](const std::string& r) { return r.find(text) != std::string::npos; }, timeout);
  }
  // Waits for the Nth request (from 1).
  std::string AwaitNth(int n, std::chrono::seconds timeout) {
    std::string found;
    PollUntil(
        [&] {
          std::lock_guard lock(mu_);
          if (static_cast<int>(requests_.size()) < n) {
            return false;
          }
          found = requests_[static_cast<std::size_t>(n - 1)];
          return true;
        },
        timeout);
    return found;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      std::string req = ReadHttpRequest(c, std::chrono::milliseconds(2000));
      const std::string answer = answer_(++calls_);
      (void)!::write(c, answer.data(), answer.size());
      ::close(c);
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(req));
    }
  }

  Answer answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace faas::testing
