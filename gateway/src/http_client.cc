#include "http_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "faas/base/time.h"
#include "faas/base/unique_fd.h"

namespace faas::gateway {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return DeadlineExceededError(std::string("callback timed out while ") + what);
    }
    pollfd p{.fd = fd, .events = events, .revents = 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) {
      return OkStatus();
    }
    if (n < 0 && errno != EINTR) {
      return UnavailableError(std::string("poll: ") + std::strerror(errno));
    }
  }
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() > 2048) {
    return InvalidArgumentError("callback URL is longer than 2048 bytes");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return InvalidArgumentError("callback URL contains a space or control character");
    }
  }
  if (!url.starts_with(kScheme)) {
    return InvalidArgumentError("callback URL \"" + std::string(url) +
                                "\" must start with http:// (https is not supported)");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('#') != std::string_view::npos) {
    return InvalidArgumentError("callback URL must not have a #fragment");
  }
  std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  if (slash != std::string_view::npos) {
    out.target = rest[slash] == '/' ? std::string(rest.substr(slash))
                                    : "/" + std::string(rest.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("callback URL must not contain user-info (user@)");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with("[")) {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("callback URL has an unclosed [IPv6] host");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return InvalidArgumentError("callback URL has junk after the [IPv6] host");
      }
      port = after.substr(1);
    }
  } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    return InvalidArgumentError("callback URL has no host");
  }
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgumentError("callback URL port \"" + std::string(port) +
                                  "\" is not 1..65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

Result<int> PostJson(std::string_view url, const std::string& json,
                     std::chrono::milliseconds timeout, const AddressPolicy& policy) {
  FAAS_ASSIGN_OR_RETURN(HttpUrl u, ParseHttpUrl(url));
  FAAS_ASSIGN_OR_RETURN(std::vector<SocketAddress> addresses, policy.Resolve(u.host, u.port));
  std::string port = std::to_string(u.port);
  Clock::time_point deadline = Clock::now() + timeout;
  Status last = UnavailableError("no address for " + u.host);
  UniqueFd fd;
  for (const SocketAddress& to : addresses) {  // each one checked by Resolve
    UniqueFd s(::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.Valid()) {
      continue;
    }
    if (::connect(s.Get(), to.Get(), to.len) != 0 && errno != EINPROGRESS) {
      last = UnavailableError("connect " + u.host + ":" + port + ": " + std::strerror(errno));
      continue;
    }
    if (last = WaitFd(s.Get(), POLLOUT, deadline, "connecting"); !last.ok()) {
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.Get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last = UnavailableError("connect " + u.host + ":" + port + ": " + std::strerror(err));
      continue;
    }
    fd = std::move(s);
    break;
  }
  if (!fd.Valid()) {
    return last;
  }
  std::string host_header = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  std::string req = "POST " + u.target + " HTTP/1.1\r\nHost: " + host_header + ":" + port +
                    "\r\nContent-Type: application/json\r\nUser-Agent: faasd\r\n"
                    "Content-Length: " +
                    std::to_string(json.size()) + "\r\nConnection: close\r\n\r\n" + json;
  std::size_t sent = 0;
  while (sent < req.size()) {
    FAAS_RETURN_IF_ERROR(WaitFd(fd.Get(), POLLOUT, deadline, "sending"));
    ssize_t n = ::send(fd.Get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return UnavailableError(std::string("send: ") + std::strerror(errno));
    }
    sent += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  // Only the status line matters: "HTTP/1.1 204 No Content".
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    FAAS_RETURN_IF_ERROR(WaitFd(fd.Get(), POLLIN, deadline, "waiting for the answer"));
    char buf[1024];
    ssize_t n = ::recv(fd.Get(), buf, sizeof buf, 0);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        continue;
      }
      return UnavailableError(std::string("recv: ") + std::strerror(errno));
    }
    head.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  if (head.size() < 12 || !head.starts_with("HTTP/1.") ||
      std::from_chars(head.data() + 9, head.data() + 12, status).ec != std::errc()) {
    return UnavailableError("the callback URL did not answer with an HTTP status line");
  }
  return status;
}

}  // namespace faas::gateway
