#include "tcp_proxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "loopback.h"

namespace faas::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::abort();
}

// Sends all of `n` bytes; false when the peer is gone.
bool SendAll(int fd, const char* p, ssize_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, static_cast<std::size_t>(n), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    p += w;
    n -= w;
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    Die("tcp_proxy: pipe2");
  }
  {
    std::lock_guard lock(mu_);
    Listen();
  }
  thread_ = std::thread([this] { Run(); });
}

TcpProxy::~TcpProxy() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  Wake();
  thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
  }
  ::close(wake_[0]);
  ::close(wake_[1]);
}

// Under mu_. Binds port_ (a free one the first time).
void TcpProxy::Listen() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = LoopbackAddress(port_);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, 64) != 0) {
    Die("tcp_proxy: listen");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
}

void TcpProxy::Wake() {
  char b = 1;
  (void)!::write(wake_[1], &b, 1);
}

void TcpProxy::Arm(Fault fault, bool refuse_after) {
  std::lock_guard lock(mu_);
  armed_ = fault;
  refuse_after_ = refuse_after;
}

void TcpProxy::Refuse(bool refuse) {
  {
    std::lock_guard lock(mu_);
    if (refuse && listen_fd_ >= 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
    } else if (!refuse && listen_fd_ < 0) {
      Listen();
    }
  }
  Wake();  // the loop polls the new listener (or stops polling the closed one)
}

void TcpProxy::Run() {
  struct Pair {
    int client;
    int server;
  };
  std::vector<Pair> pairs;
  auto close_pair = [&](std::size_t i) {
    ::close(pairs[i].client);
    ::close(pairs[i].server);
    pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
  };
  for (;;) {
    int listen_fd;
    {
      std::lock_guard lock(mu_);
      if (stop_) {
        break;
      }
      listen_fd = listen_fd_;
    }
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd, POLLIN, 0}};
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      Die("tcp_proxy: poll");
    }
    if ((fds[0].revents & POLLIN) != 0) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
      continue;  // settings changed: poll again with them
    }
    // Pairs first (from the back, so erasing keeps earlier indexes valid).
    for (std::size_t i = pairs.size(); i-- > 0;) {
      for (int side = 0; side < 2; ++side) {
        const pollfd& f = fds[2 + 2 * i + static_cast<std::size_t>(side)];
        if ((f.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
          continue;
        }
        char buf[16384];
        ssize_t n = ::recv(f.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          close_pair(i);
          break;
        }
        bool drop;
        {
          std::lock_guard lock(mu_);
          drop = armed_ == (side == 0 ? Fault::kDropRequest : Fault::kDropReply);
          if (drop) {
            armed_ = Fault::kNone;
            if (refuse_after_ && listen_fd_ >= 0) {
              ::close(listen_fd_);  // before the client can see its connection close
              listen_fd_ = -1;
            }
            fired_.fetch_add(1);
          }
        }
        if (drop || !SendAll(side == 0 ? pairs[i].server : pairs[i].client, buf, n)) {
          close_pair(i);
          break;
        }
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      std::lock_guard lock(mu_);
      if (listen_fd_ != listen_fd) {
        continue;  // closed (or replaced) meanwhile
      }
      int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        continue;  // EAGAIN: the connection went away
      }
      int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = LoopbackAddress(target_port_);
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);  // the server is down: so is the proxy's connection
        if (server >= 0) {
          ::close(server);
        }
        continue;
      }
      pairs.push_back({client, server});
    }
  }
  for (std::size_t i = pairs.size(); i-- > 0;) {
    close_pair(i);
  }
}

}  // namespace faas::testing
