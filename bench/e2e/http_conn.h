// A kept-alive HTTP/1.1 loopback connection for GET requests, for the e2e benchmarks (responses
// with Content-Length only; no TLS, no chunking). Not a general client: bench code only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

// A kept-alive HTTP/1.1 connection for GET requests (responses with Content-Length only).
struct HttpConnection {
  HttpConnection() = default;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  int fd = -1;
  std::string buf;
  bool Connect(const std::string& host_port) {
    auto colon = host_port.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(host_port.c_str() + colon + 1)));
    ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  // Returns the response head (status line + headers), or "" on error.
  std::string Get(const std::string& path) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return "";
    }
    std::size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) {
        return "";
      }
    }
    std::string head = buf.substr(0, end + 4);
    std::size_t cl = head.find("Content-Length: ");
    std::size_t body =
        cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 16, nullptr, 10);
    while (buf.size() < head.size() + body) {
      if (!Fill()) {
        return "";
      }
    }
    buf.erase(0, head.size() + body);
    return head;
  }
  bool Fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      return false;
    }
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
};
