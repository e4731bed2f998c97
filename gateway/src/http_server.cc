// HttpServer implementation.
//
// Design: Boost.Beast's HTTP/1.1 parser over synchronous, blocking-style I/O, with one std::thread
// per connection. Connections to the gateway are few and long-lived (keep-alive from load
// balancers and SDK clients), so a thread each is cheap, and it keeps the blocking invocation
// path (the handler runs the function) free of callbacks and context switches.
//
// - The listener and the accepted sockets are plain POSIX fds (non-blocking, close-on-exec).
//   Beast reads through SocketStream, a tiny SyncReadStream that poll(2)s with a deadline before
//   each recv: Asio's own synchronous reads ignore SO_RCVTIMEO (they poll(-1) after EAGAIN), so
//   deadlines are ours. Responses are serialized by hand and sent with sendmsg(MSG_NOSIGNAL).
// - Each request: wait for its first byte (idle keep-alive, read_timeout), read the header
//   (read_timeout; header_limit → 431), Beast checks Content-Length against body_limit as soon
//   as the header is complete (early 413, before any body byte is read and without sending
//   100 Continue), then read the body (read_timeout; chunked bodies fail with body_limit as soon
//   as they pass it → 413). Framing errors, including Content-Length together with
//   Transfer-Encoding (Beast rejects both orders) and a Transfer-Encoding whose last coding is not
//   chunked (we reject: no way to find the end), answer 400 and close.
// - After every error answer the server shuts down its write side and discards input for a
//   short while ("lingering close", as nginx does) so that unread request bytes do not turn the
//   close into a RST that destroys the answer before the client reads it.
// - Connections live in a map guarded by mu_. A connection is "idle" while it waits for the
//   first byte of a request; Drain shuts those down at once, lets busy ones finish (answered with
//   Connection: close), and after the grace period shuts down the rest. Finished threads hand
//   themselves to a reap list; the accept thread (woken by an eventfd) or Drain joins them, so no
//   thread outlives Drain.
// - The accept thread turns away, without blocking, connections over max_connections_per_ip
//   (429; open connections are counted per client address in conns_per_client_, under mu_) and
//   over max_connections (503). GetRejections() counts those and the 400/408/413/431 answers.
// - Everything Boost stays in this file: Beast headers take ~30 s to compile.

#include "faas/gateway/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>  // BUILD-NOTES P1: must precede the Boost headers.

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/unique_fd.h"
#include "faas/gateway/errors.h"

namespace faas::gateway {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// Longest we keep reading (and discarding) after an error answer before closing.
constexpr std::chrono::milliseconds kMaxLinger{2000};

std::string ToStd(beast::string_view s) { return std::string(s.data(), s.size()); }

// Milliseconds until `deadline`, rounded up so poll(2) never wakes early; 0 once it passed.
int PollTimeoutMs(Clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return 0;
  }
  return static_cast<int>(std::min<int64_t>(left, INT_MAX));
}

// Waits until `fd` reports `events` (or HUP/ERR). Returns 1 when ready, 0 on timeout, -1 with
// errno set on error. Retries EINTR.
int PollFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    return r;
  }
}

// Beast SyncReadStream over a non-blocking socket: every read_some waits at most until the
// current deadline, then fails with beast::error::timeout. EOF is net::error::eof, as Beast
// expects.
class SocketStream {
 public:
  explicit SocketStream(int fd) : fd_(fd) {}

  void SetReadDeadline(Clock::time_point deadline) { deadline_ = deadline; }
  // Bytes received since the last ResetBytesRead().
  std::size_t BytesRead() const { return bytes_read_; }
  void ResetBytesRead() { bytes_read_ = 0; }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    // Beast passes a single buffer (flat_buffer::prepare); use the first non-empty one.
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      net::mutable_buffer b = *it;
      if (b.size() != 0) {
        return ReadInto(b.data(), b.size(), ec);
      }
    }
    ec = {};
    return 0;
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) {
      throw beast::system_error(ec);
    }
    return n;
  }

 private:
  std::size_t ReadInto(void* data, std::size_t size, beast::error_code& ec) {
    for (;;) {
      const ssize_t n = ::recv(fd_, data, size, 0);
      if (n > 0) {
        ec = {};
        bytes_read_ += static_cast<std::size_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (n == 0) {
        ec = net::error::eof;
        return 0;
      }
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err != EAGAIN && err != EWOULDBLOCK) {
        ec.assign(err, beast::system_category());
        return 0;
      }
      const int r = PollFd(fd_, POLLIN, deadline_);
      if (r == 0) {
        ec = beast::error::timeout;
        return 0;
      }
      if (r < 0) {
        ec.assign(errno, beast::system_category());
        return 0;
      }
    }
  }

  int fd_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::size_t bytes_read_ = 0;
};

// Sends `head` then `body`, retrying short writes, until `deadline`. Returns false on error or
// timeout (the connection is unusable then).
bool SendAll(int fd, std::string_view head, std::string_view body, Clock::time_point deadline) {
  std::array<std::string_view, 2> parts{head, body};
  std::size_t first = 0;
  while (first < parts.size()) {
    if (parts[first].empty()) {
      ++first;
      continue;
    }
    std::array<iovec, 2> iov{};
    std::size_t count = 0;
    for (std::size_t k = first; k < parts.size(); ++k) {
      if (!parts[k].empty()) {
        iov[count].iov_base = const_cast<char*>(parts[k].data());
        iov[count].iov_len = parts[k].size();
        ++count;
      }
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err != EAGAIN && err != EWOULDBLOCK) {
        return false;
      }
      if (PollFd(fd, POLLOUT, deadline) <= 0) {
        return false;
      }
      continue;
    }
    auto sent = static_cast<std::size_t>(n);
    while (sent > 0 && first < parts.size()) {
      const std::size_t take = std::min(sent, parts[first].size());
      parts[first].remove_prefix(take);
      sent -= take;
      if (parts[first].empty()) {
        ++first;
      }
    }
  }
  return true;
}

// RFC 9110 tchar.
bool IsValidHeaderName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool IsValidHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Headers the server owns: it frames every response itself.
bool IsFramingHeader(std::string_view std_name) {
  const beast::string_view name(std_name.data(), std_name.size());
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection");
}

std::string FormatHostPort(std::string_view host, int family, uint16_t port) {
  std::string out;
  if (family == AF_INET6) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string FormatSockaddr(const sockaddr_storage& ss) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (::inet_ntop(AF_INET, &a->sin_addr, buf.data(), buf.size()) != nullptr) {
      return FormatHostPort(buf.data(), AF_INET, ntohs(a->sin_port));
    }
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (::inet_ntop(AF_INET6, &a->sin6_addr, buf.data(), buf.size()) != nullptr) {
      return FormatHostPort(buf.data(), AF_INET6, ntohs(a->sin6_port));
    }
  }
  return "unknown";
}

// The peer's address without the port ("10.0.0.7", "2001:db8::1"); an IPv4-mapped IPv6 address
// becomes its IPv4 form, so a dual-stack listener counts one client once. "" for other families.
std::string ClientAddress(const sockaddr_storage& ss) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (::inet_ntop(AF_INET, &a->sin_addr, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      in_addr v4{};
      std::memcpy(&v4, &a->sin6_addr.s6_addr[12], sizeof(v4));
      if (::inet_ntop(AF_INET, &v4, buf.data(), buf.size()) != nullptr) {
        return buf.data();
      }
    } else if (::inet_ntop(AF_INET6, &a->sin6_addr, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
  }
  return "";
}

void AsciiLower(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
}

// What to do with the socket when a connection ends.
enum class CloseMode {
  kPlain,   // the request stream is at a message boundary (or dead): just close
  kLinger,  // unread request bytes may follow: half-close, discard input briefly, then close
};

}  // namespace

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) {
      return &value;
    }
  }
  return nullptr;
}

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)), log_(log::Get("gateway")) {}
  ~Impl() { Drain(std::chrono::milliseconds(0)); }

  Result<uint16_t> Start();
  void StopAccepting();
  void Drain(std::chrono::milliseconds grace);

  std::size_t ActiveConnections() const {
    std::lock_guard lock(mu_);
    return conns_.size();
  }
  std::size_t InFlightRequests() const { return in_flight_.load(std::memory_order_relaxed); }
  HttpServer::Rejections GetRejections() const {
    return {
        .connections_global = rejected_global_.load(std::memory_order_relaxed),
        .connections_per_ip = rejected_per_ip_.load(std::memory_order_relaxed),
        .header_too_large = rejected_header_.load(std::memory_order_relaxed),
        .payload_too_large = rejected_payload_.load(std::memory_order_relaxed),
        .request_timeout = rejected_timeout_.load(std::memory_order_relaxed),
        .bad_request = rejected_bad_request_.load(std::memory_order_relaxed),
    };
  }

 private:
  struct Conn {
    uint64_t id = 0;
    UniqueFd fd;         // closed (under mu_) only by Finish()
    std::string remote;  // "127.0.0.1:54321"
    std::string client;  // its key in conns_per_client_, or "" when not counted
    bool idle = true;    // waiting for the first byte of a request; guarded by mu_
    std::thread thread;  // joined by ReapFinished() or Drain()
  };

  void AcceptLoop();
  void OnAccepted(UniqueFd fd, const sockaddr_storage& peer);
  // Answers a connection the server will not serve with `status` and closes it. Runs on the
  // accept thread, so it never blocks.
  void RejectConnection(UniqueFd fd, int status, std::string_view code, std::string_view message);
  void ReleaseClientLocked(const std::string& client);
  void ServeConnection(const std::shared_ptr<Conn>& conn);
  CloseMode ServeRequests(Conn& conn, SocketStream& stream, beast::flat_buffer& buffer);
  CloseMode OnReadError(const Conn& conn, const SocketStream& stream,
                        const beast::flat_buffer& buffer, const beast::error_code& ec);
  CloseMode SendServerError(const Conn& conn, int status, std::string_view code,
                            std::string_view message, int retry_after_s = 0);
  // Serializes and sends `res`; `version` is the request's (10 or 11). False when the write
  // failed or timed out.
  bool WriteResponse(int fd, const HttpResponse& res, unsigned version, bool close, bool head_only,
                     Clock::time_point deadline);
  void LingeringClose(int fd);
  void Finish(std::shared_ptr<Conn> conn);
  void ReapFinished();
  void Wake();

  const ServerOptions options_;
  const Handler handler_;
  const std::shared_ptr<spdlog::logger> log_;

  std::mutex drain_mu_;  // serializes Drain()
  mutable std::mutex mu_;
  std::condition_variable cv_;  // signalled when a connection finishes
  bool started_ = false;        // guarded by mu_
  bool accept_stopped_ = false;  // guarded by mu_
  std::thread accept_thread_;   // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Conn>> conns_;  // live connections; guarded by mu_
  std::vector<std::shared_ptr<Conn>> finished_;      // exited, not yet joined; guarded by mu_
  uint64_t next_conn_id_ = 1;                        // guarded by mu_
  std::atomic<bool> draining_{false};                // written under mu_
  std::atomic<bool> stopping_{false};                // tells the accept thread to exit
  std::atomic<std::size_t> in_flight_{0};
  // Open connections per client address (ClientAddress), when max_connections_per_ip is set;
  // entries are erased at zero. Guarded by mu_.
  std::unordered_map<std::string, std::size_t> conns_per_client_;
  // GetRejections() counters.
  std::atomic<uint64_t> rejected_global_{0};
  std::atomic<uint64_t> rejected_per_ip_{0};
  std::atomic<uint64_t> rejected_header_{0};
  std::atomic<uint64_t> rejected_payload_{0};
  std::atomic<uint64_t> rejected_timeout_{0};
  std::atomic<uint64_t> rejected_bad_request_{0};
  UniqueFd listen_fd_;  // owned by the accept thread while it runs
  UniqueFd wake_fd_;    // eventfd: stop or reap; lives until ~Impl
};

Result<uint16_t> HttpServer::Impl::Start() {
  std::lock_guard lock(mu_);
  if (started_ || accept_stopped_) {
    return FailedPreconditionError(started_ ? "HttpServer::Start called twice"
                                            : "HttpServer::Start called after Stop");
  }
  sockaddr_storage ss{};
  socklen_t ss_len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, options_.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options_.port);
    ss_len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, options_.host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options_.port);
    ss_len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgumentError("host \"" + options_.host +
                                "\" is not a numeric IPv4 or IPv6 address");
  }
  const std::string where = FormatHostPort(options_.host, family, options_.port);
  auto unavailable = [&](int err, std::string_view call) {
    return UnavailableError(ErrnoError(err, call, where).message());
  };

  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return unavailable(errno, "socket");
  }
  const int one = 1;
  if (::setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return unavailable(errno, "setsockopt(SO_REUSEADDR)");
  }
  if (::bind(fd.Get(), reinterpret_cast<const sockaddr*>(&ss), ss_len) != 0) {
    return unavailable(errno, "bind");
  }
  if (::listen(fd.Get(), SOMAXCONN) != 0) {
    return unavailable(errno, "listen");
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return unavailable(errno, "getsockname");
  }
  const uint16_t port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.Valid()) {
    return unavailable(errno, "eventfd");
  }
  listen_fd_ = std::move(fd);
  wake_fd_ = std::move(wake);
  try {
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  } catch (const std::system_error& e) {
    listen_fd_.Reset();
    return UnavailableError(std::string("starting the accept thread: ") + e.what());
  }
  started_ = true;
  FAAS_LOG(log_, info, "http.listening", {"addr", FormatHostPort(options_.host, family, port)});
  return port;
}

void HttpServer::Impl::Wake() {
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 - 1 wakeups); a lost wakeup only delays reaping.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_.Get(), &one, sizeof(one));
}

void HttpServer::Impl::StopAccepting() {
  std::thread accept_thread;
  {
    std::lock_guard lock(mu_);
    accept_stopped_ = true;
    if (!accept_thread_.joinable()) {
      return;
    }
    accept_thread = std::move(accept_thread_);
  }
  stopping_.store(true);
  Wake();
  accept_thread.join();
  listen_fd_.Reset();
  FAAS_LOG(log_, info, "http.stopped_accepting", {"connections", ActiveConnections()});
}

void HttpServer::Impl::AcceptLoop() {
  bool backoff = false;  // after EMFILE and friends: stop polling the listener for a moment
  for (;;) {
    std::array<pollfd, 2> fds{{{wake_fd_.Get(), POLLIN, 0}, {listen_fd_.Get(), POLLIN, 0}}};
    const nfds_t nfds = backoff ? 1 : 2;
    const int r = ::poll(fds.data(), nfds, backoff ? 100 : -1);
    if (r < 0) {
      if (errno != EINTR) {
        FAAS_LOG(log_, err, "http.poll_failed", {"error", ErrnoError(errno, "poll").message()});
        backoff = true;
      }
      continue;
    }
    backoff = false;
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_.Get(), &count, sizeof(count));
      ReapFinished();
      if (stopping_.load()) {
        return;
      }
    }
    if (nfds < 2 || (fds[1].revents & POLLIN) == 0) {
      continue;
    }
    for (int i = 0; i < 64; ++i) {  // bounded, so a flood cannot starve the wake fd
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof(peer);
      const int cfd = ::accept4(listen_fd_.Get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                                SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          break;
        }
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) {
          continue;
        }
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog; retry shortly.
        FAAS_LOG(log_, warn, "http.accept_failed", {"error", ErrnoError(err, "accept4").message()});
        backoff = true;
        break;
      }
      OnAccepted(UniqueFd(cfd), peer);
    }
  }
}

void HttpServer::Impl::OnAccepted(UniqueFd fd, const sockaddr_storage& peer) {
  const int one = 1;
  if (::setsockopt(fd.Get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    FAAS_LOG(log_, debug, "http.nodelay_failed",
             {"error", ErrnoError(errno, "setsockopt(TCP_NODELAY)").message()});
  }
  const std::size_t per_client = options_.max_connections_per_ip;
  std::string client = per_client > 0 ? ClientAddress(peer) : std::string();
  std::unique_lock lock(mu_);
  // The per-client cap first: a client over its own share is told so (429), even when the
  // server is also full, and no_capacity then means a real shortage.
  if (const auto it = conns_per_client_.find(client);
      it != conns_per_client_.end() && it->second >= per_client) {
    lock.unlock();
    rejected_per_ip_.fetch_add(1, std::memory_order_relaxed);
    FAAS_LOG(log_, warn, "http.client_over_cap", {"client", client},
             {"max_connections_per_ip", per_client});
    RejectConnection(std::move(fd), 429, "rate_limited",
                     "too many open connections from " + client + " (at most " +
                         std::to_string(per_client) + " per client address)");
    return;
  }
  if (conns_.size() >= options_.max_connections) {
    lock.unlock();
    rejected_global_.fetch_add(1, std::memory_order_relaxed);
    FAAS_LOG(log_, warn, "http.no_capacity", {"max_connections", options_.max_connections});
    RejectConnection(std::move(fd), 503, "no_capacity", "too many open connections");
    return;
  }
  if (!client.empty()) {
    ++conns_per_client_[client];
  }
  auto conn = std::make_shared<Conn>();
  conn->id = next_conn_id_++;
  conn->fd = std::move(fd);
  conn->remote = FormatSockaddr(peer);
  conn->client = std::move(client);
  conns_.emplace(conn->id, conn);
  try {
    // The thread blocks on mu_ before touching conns_, so storing the handle under it is safe.
    conn->thread = std::thread([this, conn] { ServeConnection(conn); });
  } catch (const std::system_error& e) {
    conns_.erase(conn->id);
    ReleaseClientLocked(conn->client);
    FAAS_LOG(log_, err, "http.thread_failed", {"remote", conn->remote}, {"error", e.what()});
  }
}

void HttpServer::Impl::ReleaseClientLocked(const std::string& client) {
  if (client.empty()) {
    return;
  }
  const auto it = conns_per_client_.find(client);
  if (it != conns_per_client_.end() && --it->second == 0) {
    conns_per_client_.erase(it);
  }
}

void HttpServer::Impl::RejectConnection(UniqueFd fd, int status, std::string_view code,
                                        std::string_view message) {
  HttpResponse res = MakeErrorResponse(status, code, message, NewInvocationId(),
                                       /*retry_after_s=*/1);
  // The accept thread must not block: a fresh socket's send buffer takes this whole response,
  // so a zero deadline (one non-blocking attempt) is enough.
  if (WriteResponse(fd.Get(), res, 11, /*close=*/true, /*head_only=*/false, Clock::now())) {
    ::shutdown(fd.Get(), SHUT_WR);
    // Discard what already arrived so close() sends FIN, not RST.
    std::array<char, 4096> buf{};
    while (::recv(fd.Get(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  }
}

void HttpServer::Impl::ServeConnection(const std::shared_ptr<Conn>& conn) {
  const int fd = conn->fd.Get();  // stays open until Finish()
  SocketStream stream(fd);
  beast::flat_buffer buffer;
  CloseMode mode = CloseMode::kPlain;
  try {
    mode = ServeRequests(*conn, stream, buffer);
  } catch (const std::exception& e) {  // std::bad_alloc and the like; never crash the server
    FAAS_LOG(log_, err, "http.connection_failed", {"remote", conn->remote}, {"error", e.what()});
  }
  if (mode == CloseMode::kLinger) {
    LingeringClose(fd);
  }
  Finish(conn);
}

CloseMode HttpServer::Impl::ServeRequests(Conn& conn, SocketStream& stream,
                                          beast::flat_buffer& buffer) {
  const int fd = conn.fd.Get();
  const auto header_limit =
      static_cast<std::uint32_t>(std::min<std::size_t>(options_.max_header_bytes, UINT32_MAX));
  for (;;) {
    // Idle keep-alive: wait for the first byte of the next request (unless pipelined bytes wait).
    if (buffer.size() == 0 && PollFd(fd, POLLIN, Clock::now() + options_.read_timeout) <= 0) {
      return CloseMode::kPlain;
    }
    {
      std::lock_guard lock(mu_);
      if (draining_.load()) {
        return CloseMode::kPlain;
      }
      conn.idle = false;
    }

    stream.ResetBytesRead();
    http::request_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(static_cast<std::uint64_t>(options_.max_body_bytes));
    beast::error_code ec;
    stream.SetReadDeadline(Clock::now() + options_.read_timeout);
    // Also fails with body_limit when Content-Length is over the limit: Beast checks it as soon
    // as the header is complete, before any body byte is consumed.
    http::read_header(stream, buffer, parser, ec);
    if (ec) {
      return OnReadError(conn, stream, buffer, ec);
    }
    auto& msg = parser.get();
    if (msg.target().size() > options_.max_target_bytes) {
      return SendServerError(conn, 414, "uri_too_long",
                             "request target is longer than " +
                                 std::to_string(options_.max_target_bytes) + " bytes");
    }
    if (msg.version() != 10 && msg.version() != 11) {
      return SendServerError(conn, 400, "bad_request", "unsupported HTTP version");
    }
    if (msg.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      return SendServerError(conn, 400, "bad_request",
                             "Transfer-Encoding must end with chunked");
    }
    if (!parser.is_done()) {
      if (msg.version() == 11 && beast::iequals(msg[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!SendAll(fd, kContinue, {}, Clock::now() + options_.write_timeout)) {
          return CloseMode::kPlain;
        }
      }
      stream.SetReadDeadline(Clock::now() + options_.read_timeout);
      http::read(stream, buffer, parser, ec);
      if (ec) {
        return OnReadError(conn, stream, buffer, ec);
      }
    }

    in_flight_.fetch_add(1, std::memory_order_relaxed);
    struct InFlightGuard {
      std::atomic<std::size_t>& n;
      ~InFlightGuard() { n.fetch_sub(1, std::memory_order_relaxed); }
    } in_flight_guard{in_flight_};

    HttpRequest req;
    req.method = ToStd(msg.method_string());
    req.target = ToStd(msg.target());
    const std::size_t q = req.target.find('?');
    if (q == std::string::npos) {
      req.path = req.target;
    } else {
      req.path = req.target.substr(0, q);
      req.query = req.target.substr(q + 1);
    }
    req.headers.reserve(16);
    for (const auto& field : msg) {
      std::string name = ToStd(field.name_string());
      AsciiLower(name);
      req.headers.emplace_back(std::move(name), ToStd(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote_addr = conn.remote;
    const unsigned version = msg.version();
    const bool keep_alive = msg.keep_alive();
    const bool head_only = msg.method() == http::verb::head;

    HttpResponse res;
    try {
      handler_(req, res);
    } catch (const std::exception& e) {
      FAAS_LOG(log_, err, "http.handler_exception", {"method", req.method}, {"path", req.path},
               {"error", e.what()});
      res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
    } catch (...) {
      FAAS_LOG(log_, err, "http.handler_exception", {"method", req.method}, {"path", req.path},
               {"error", "non-std exception"});
      res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
    }
    if (res.status < 200 || res.status > 599) {
      FAAS_LOG(log_, err, "http.bad_status", {"method", req.method}, {"path", req.path},
               {"status", res.status});
      res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
    }
    const bool close = res.close || !keep_alive || draining_.load();
    if (!WriteResponse(fd, res, version, close, head_only,
                       Clock::now() + options_.write_timeout)) {
      FAAS_LOG(log_, debug, "http.write_failed", {"remote", conn.remote});
      return CloseMode::kPlain;
    }
    if (close) {
      return CloseMode::kPlain;
    }
    std::lock_guard lock(mu_);
    if (draining_.load()) {
      return CloseMode::kPlain;
    }
    conn.idle = true;
  }
}

CloseMode HttpServer::Impl::OnReadError(const Conn& conn, const SocketStream& stream,
                                        const beast::flat_buffer& buffer,
                                        const beast::error_code& ec) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return CloseMode::kPlain;  // the client went away
  }
  if (ec == beast::error::timeout) {
    if (stream.BytesRead() == 0 && buffer.size() == 0) {
      return CloseMode::kPlain;
    }
    return SendServerError(conn, 408, "request_timeout",
                           "request not received within " +
                               std::to_string(options_.read_timeout.count()) + " ms");
  }
  if (ec == http::error::header_limit) {
    return SendServerError(conn, 431, "header_too_large",
                           "request header is larger than " +
                               std::to_string(options_.max_header_bytes) + " bytes");
  }
  if (ec == http::error::body_limit) {
    return SendServerError(conn, 413, "payload_too_large",
                           "request body is larger than " +
                               std::to_string(options_.max_body_bytes) + " bytes");
  }
  if (ec.category() == make_error_code(http::error::bad_method).category()) {
    return SendServerError(conn, 400, "bad_request", "malformed request: " + ec.message());
  }
  FAAS_LOG(log_, debug, "http.read_failed", {"remote", conn.remote}, {"error", ec.message()});
  return CloseMode::kPlain;  // a socket error: nobody to answer
}

CloseMode HttpServer::Impl::SendServerError(const Conn& conn, int status, std::string_view code,
                                            std::string_view message, int retry_after_s) {
  switch (status) {
    case 400: rejected_bad_request_.fetch_add(1, std::memory_order_relaxed); break;
    case 414: rejected_header_.fetch_add(1, std::memory_order_relaxed); break;
    case 408: rejected_timeout_.fetch_add(1, std::memory_order_relaxed); break;
    case 413: rejected_payload_.fetch_add(1, std::memory_order_relaxed); break;
    case 431: rejected_header_.fetch_add(1, std::memory_order_relaxed); break;
    default: break;
  }
  const std::string inv = NewInvocationId();
  FAAS_LOG(log_, debug, "http.request_rejected", {"remote", conn.remote}, {"status", status},
           {"code", code}, {"inv", inv});
  HttpResponse res = MakeErrorResponse(status, code, message, inv, retry_after_s);
  if (!WriteResponse(conn.fd.Get(), res, 11, /*close=*/true, /*head_only=*/false,
                     Clock::now() + options_.write_timeout)) {
    return CloseMode::kPlain;
  }
  return CloseMode::kLinger;
}

bool HttpServer::Impl::WriteResponse(int fd, const HttpResponse& res, unsigned version, bool close,
                                     bool head_only, Clock::time_point deadline) {
  const auto status = static_cast<unsigned>(res.status);
  const http::status known = http::int_to_status(status);
  const beast::string_view reason =
      known == http::status::unknown ? beast::string_view("Unknown") : http::obsolete_reason(known);
  std::string head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head.append(reason.data(), reason.size());
  head += "\r\n";
  for (const auto& [name, value] : res.headers) {
    if (!IsValidHeaderName(name) || !IsValidHeaderValue(value)) {
      FAAS_LOG(log_, warn, "http.bad_response_header", {"name", name});
      continue;
    }
    if (IsFramingHeader(name)) {
      continue;
    }
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  // RFC 9110 §8.6: no Content-Length (and no body) in 204; 304 has no body either.
  const bool no_body = status == 204 || status == 304;
  if (!no_body) {
    head += "Content-Length: ";
    head += std::to_string(res.body.size());
    head += "\r\n";
  }
  if (close) {
    head += "Connection: close\r\n";
  } else if (version == 10) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  const std::string_view body = no_body || head_only ? std::string_view() : res.body;
  return SendAll(fd, head, body, deadline);
}

void HttpServer::Impl::LingeringClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  const Clock::time_point deadline = Clock::now() + std::min(options_.read_timeout, kMaxLinger);
  std::array<char, 16384> buf{};
  for (;;) {
    if (PollFd(fd, POLLIN, deadline) <= 0) {
      return;
    }
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return;
    }
  }
}

void HttpServer::Impl::Finish(std::shared_ptr<Conn> conn) {
  {
    std::lock_guard lock(mu_);
    conn->fd.Reset();  // under mu_, so Drain never shuts down a recycled fd number
    conns_.erase(conn->id);
    ReleaseClientLocked(conn->client);
    finished_.push_back(std::move(conn));
  }
  cv_.notify_all();
  Wake();  // Drain joins this thread, so wake_fd_ outlives this call
}

void HttpServer::Impl::ReapFinished() {
  std::vector<std::shared_ptr<Conn>> done;
  {
    std::lock_guard lock(mu_);
    done.swap(finished_);
  }
  for (auto& conn : done) {
    conn->thread.join();
  }
}

void HttpServer::Impl::Drain(std::chrono::milliseconds grace) {
  std::lock_guard drain_lock(drain_mu_);
  StopAccepting();
  std::unique_lock lock(mu_);
  draining_.store(true);
  std::size_t idle = 0;
  for (auto& [id, conn] : conns_) {
    if (conn->idle) {
      ::shutdown(conn->fd.Get(), SHUT_RDWR);  // wakes its poll(2); the thread sees draining_
      ++idle;
    }
  }
  if (!conns_.empty()) {
    FAAS_LOG(log_, info, "http.draining", {"connections", conns_.size()}, {"idle", idle},
             {"grace_ms", grace.count()});
  }
  if (!cv_.wait_until(lock, Clock::now() + grace, [&] { return conns_.empty(); })) {
    FAAS_LOG(log_, warn, "http.drain_grace_expired", {"connections", conns_.size()});
    for (auto& [id, conn] : conns_) {
      ::shutdown(conn->fd.Get(), SHUT_RDWR);
    }
    while (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return conns_.empty(); })) {
      FAAS_LOG(log_, warn, "http.drain_waiting_for_handlers", {"connections", conns_.size()});
    }
  }
  lock.unlock();
  ReapFinished();
}

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() = default;  // ~Impl drains with no grace

Result<uint16_t> HttpServer::Start() { return impl_->Start(); }
void HttpServer::StopAccepting() { impl_->StopAccepting(); }
void HttpServer::Drain(std::chrono::milliseconds grace) { impl_->Drain(grace); }
std::size_t HttpServer::ActiveConnections() const { return impl_->ActiveConnections(); }
std::size_t HttpServer::InFlightRequests() const { return impl_->InFlightRequests(); }
HttpServer::Rejections HttpServer::GetRejections() const { return impl_->GetRejections(); }

}  // namespace faas::gateway
