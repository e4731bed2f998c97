#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace faas::testing {

double ServerTimingMs(const HttpResult& r, const std::string& phase) {
  const std::string st = r.Header("server-timing");
  const std::string key = phase + ";dur=";
  for (std::size_t at = st.find(key); at != std::string::npos; at = st.find(key, at + 1)) {
    if (at == 0 || st[at - 1] == ' ' || st[at - 1] == ',') {
      return std::strtod(st.c_str() + at + key.size(), nullptr);
    }
  }
  return -1;
}

HttpConnection::HttpConnection(const std::string& host, int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

HttpResult HttpConnection::Request(const std::string& method, const std::string& target,
                                   const std::string& body,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   std::chrono::milliseconds timeout) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  return Raw(req, timeout);
}

HttpResult HttpConnection::Raw(const std::string& bytes, std::chrono::milliseconds timeout) {
  std::size_t off = 0;
  while (fd_ >= 0 && off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the server may have answered early (e.g. 413) and closed: read that
    }
    off += static_cast<std::size_t>(n);
  }
  return ReadResponse(timeout);
}

HttpResult HttpConnection::ReadResponse(std::chrono::milliseconds timeout) {
  HttpResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fill = [&]() -> bool {  // reads more bytes into buffered_; false on EOF/deadline
    if (fd_ < 0) {
      return false;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      return false;
    }
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      return false;
    }
    buffered_.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t head_end;
  while ((head_end = buffered_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) {
      return r;
    }
  }
  std::string head = buffered_.substr(0, head_end);
  buffered_.erase(0, head_end + 4);
  std::size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  auto sp = status_line.find(' ');
  r.status = std::atoi(status_line.c_str() + (sp == std::string::npos ? 0 : sp + 1));
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) {
      e = head.size();
    }
    std::string line = head.substr(pos, e - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') {
        value.erase(0, 1);
      }
      r.headers[name] = value;
    }
    pos = e + 2;
  }
  if (r.headers.count("content-length") != 0) {
    std::size_t len = std::strtoull(r.headers["content-length"].c_str(), nullptr, 10);
    while (buffered_.size() < len) {
      if (!fill()) {
        break;
      }
    }
    r.body = buffered_.substr(0, len);
    buffered_.erase(0, std::min(len, buffered_.size()));
  } else if (r.headers["transfer-encoding"] == "chunked") {
    for (;;) {
      std::size_t e;
      while ((e = buffered_.find("\r\n")) == std::string::npos) {
        if (!fill()) {
          return r;
        }
      }
      std::size_t len = std::strtoull(buffered_.c_str(), nullptr, 16);
      while (buffered_.size() < e + 2 + len + 2) {
        if (!fill()) {
          return r;
        }
      }
      r.body += buffered_.substr(e + 2, len);
      buffered_.erase(0, e + 2 + len + 2);
      if (len == 0) {
        break;
      }
    }
  }
  return r;
}

HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout) {
  HttpConnection c("127.0.0.1", port);
  return c.Request(method, target, body, headers, timeout);
}

std::string ReadHttpRequest(int fd, std::chrono::milliseconds idle) {
  std::string req;
  char buf[4096];
  for (;;) {
    pollfd q{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&q, 1, static_cast<int>(idle.count())) <= 0) {
      return req;
    }
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      return req;
    }
    req.append(buf, static_cast<std::size_t>(n));
    std::size_t head = req.find("\r\n\r\n");
    std::size_t cl = req.find("Content-Length: ");
    if (head != std::string::npos && cl != std::string::npos &&
        req.size() >= head + 4 + std::stoul(req.substr(cl + 16))) {
      return req;
    }
  }
}

}  // namespace faas::testing
