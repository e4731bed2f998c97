// HttpServer implementation.
//
// Design (docs/design/0006-warm-path-reactor.md): a few event-loop threads (faas::EventLoop,
// epoll) own every connection, with non-blocking sockets and Boost.Beast's HTTP/1.1 parser fed
// the bytes as they arrive. One wake-up of a loop serves whatever is ready: several clients'
// requests, and (through the AsyncHandler's Responder) the answers of the functions they invoked.
// A blocking Handler runs on a BlockingPool thread instead and answers through the same path.
//
// - The listener is watched by loop 0, which accepts and hands connections round-robin to the
//   loops. Sockets are edge-triggered (EPOLLIN | EPOLLOUT | EPOLLET) and registered once. A
//   connection "may have input" until a recv comes back short (the queue was empty then: any
//   later byte raises a new edge), so it is read only when that can find something.
// - Each request: wait for its first byte (idle keep-alive, read_timeout), read the header
//   (read_timeout; header_limit → 431), Beast checks Content-Length against body_limit as soon
//   as the header is complete (early 413, before any body byte is read and without sending
//   100 Continue), then read the body (read_timeout; chunked bodies fail with body_limit as soon
//   as they pass it → 413). Framing errors, including Content-Length together with
//   Transfer-Encoding (Beast rejects both orders) and a Transfer-Encoding whose last coding is not
//   chunked (we reject: no way to find the end), answer 400 and close. One timer per connection
//   carries the deadline of its current phase.
// - While a request is being handled the connection reads nothing more (pipelined requests wait
//   in the buffer and the socket) and answers in order.
// - After every error answer the server shuts down its write side and discards input for a
//   short while ("lingering close", as nginx does) so that unread request bytes do not turn the
//   close into a RST that destroys the answer before the client reads it.
// - Drain: stop accepting, close the connections waiting for a request, let busy ones finish
//   (answered with Connection: close), and after the grace period shut down the rest; it returns
//   once every connection is closed and every handler has answered (handlers are never
//   interrupted), so no Responder outlives the server.
// - Loop 0 turns away, without blocking, connections over max_connections_per_ip (429; open
//   connections are counted per client address in conns_per_client_, under mu_) and over
//   max_connections (503). GetRejections() counts those and the 400/408/413/431 answers.
// - Everything Boost stays in this file: Beast headers take ~30 s to compile.

#include "faas/gateway/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
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
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>  // BUILD-NOTES P1: must precede the Boost headers.

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "faas/base/event_loop.h"
#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/unique_fd.h"
#include "faas/gateway/errors.h"

namespace faas::gateway {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

// Longest we keep reading (and discarding) after an error answer before closing.
constexpr std::chrono::milliseconds kMaxLinger{2000};
// Bytes asked of one recv: a typical request in one call, a big body in few.
constexpr std::size_t kReadChunk = 64u << 10;
// Reads and inline answers one connection gets before the loop turns to the others: a client
// that pipelines requests answered at once (401s, 404s, health checks) or streams a body must
// not hold the loop.
constexpr int kTurnBudget = 16;

std::string ToStd(beast::string_view s) {
  return std::string(s.data(), s.size());
}

// One non-blocking sendmsg of what is left of `head` then `body`; advances `*sent` (counted
// over both). Returns false on a socket error; true otherwise (EAGAIN included: check *sent).
bool SendSome(int fd, std::string_view head, std::string_view body, std::size_t* sent) {
  for (;;) {
    std::array<iovec, 2> iov{};
    std::size_t count = 0;
    std::size_t skip = *sent;
    for (std::string_view part : {head, body}) {
      if (skip >= part.size()) {
        skip -= part.size();
        continue;
      }
      iov[count].iov_base = const_cast<char*>(part.data() + skip);
      iov[count].iov_len = part.size() - skip;
      skip = 0;
      ++count;
    }
    if (count == 0) {
      return true;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      *sent += static_cast<std::size_t>(n);
      continue;  // until done or EAGAIN
    }
    if (errno == EINTR) {
      continue;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
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
  Impl(ServerOptions options, Handler handler, AsyncHandler async)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        async_(std::move(async)),
        log_(log::Get("gateway")) {}
  ~Impl() { Drain(std::chrono::milliseconds(0)); }

  Result<uint16_t> Start();
  void StopAccepting();
  void Drain(std::chrono::milliseconds grace);

  std::size_t ActiveConnections() const {
    std::lock_guard lock(mu_);
    return open_;
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

  struct Conn;
  struct Loop {
    std::unique_ptr<EventLoop> ev;
    std::thread thread;
    std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;  // loop thread only
  };
  // Called (on `loop`'s thread) with a handler's answer for connection `conn_id`.
  void OnResponse(Loop* loop, uint64_t conn_id, HttpResponse res);
  void ResponseFromAnyThread(Loop* loop, uint64_t conn_id, HttpResponse res) {
    if (loop->ev->InLoopThread()) {
      OnResponse(loop, conn_id, std::move(res));
      return;
    }
    // Copyable for std::function; moved out once.
    auto box = std::make_shared<HttpResponse>(std::move(res));
    loop->ev->Post([this, loop, conn_id, box] { OnResponse(loop, conn_id, std::move(*box)); });
  }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering };

 public:
  struct Conn {
    uint64_t id = 0;
    Loop* loop = nullptr;
    UniqueFd fd;
    std::string remote;  // "127.0.0.1:54321"
    std::string client;  // its key in conns_per_client_, or "" when not counted
    State state = State::kReading;
    beast::flat_buffer buffer;  // read but not yet parsed
    std::optional<http::request_parser<http::string_body>> parser;
    std::size_t request_bytes = 0;  // bytes of the current request received so far
    bool header_checked = false;
    bool may_read = true;  // input may be waiting in the socket (see the file comment)
    uint64_t timer = 0;    // the current phase's deadline (0: none)
    // The response being written.
    std::string head;
    std::string body;
    std::size_t sent = 0;
    bool close_after = false;
    bool linger_after = false;
    // Of the request being handled.
    unsigned version = 11;
    bool keep_alive = true;
    bool head_only = false;
    bool dispatching = false;  // inside Dispatch: an inline answer must not parse further
    bool peer_closed = false;  // hang-up seen: every read may find the end
  };

 private:
  void OnListenerReady();
  void OnAccepted(UniqueFd fd, const sockaddr_storage& peer);
  // Answers a connection the server will not serve with `status` and closes it, without
  // blocking.
  void RejectConnection(UniqueFd fd, int status, std::string_view code, std::string_view message);
  void ReleaseClientLocked(const std::string& client);
  void Register(Loop* loop, std::unique_ptr<Conn> owned);
  void OnEvents(Conn* c, uint32_t events);
  void StartRequest(Conn* c);
  // Reads and parses until a request is complete (dispatched), input runs dry, or the
  // connection ends. Returns false when `c` was closed (and freed).
  bool ProcessInput(Conn* c);
  // Feeds buffered bytes to the parser; false when `c` was closed or answered with an error.
  bool Parse(Conn* c);
  bool Dispatch(Conn* c);
  bool OnParseError(Conn* c, const beast::error_code& ec);
  bool SendServerError(Conn* c, int status, std::string_view code, std::string_view message);
  void PrepareResponse(Conn* c, const HttpResponse& res, HttpResponse* owned, unsigned version,
                       bool head_only);
  bool ContinueWrite(Conn* c);
  void StartLinger(Conn* c);
  bool Linger(Conn* c);
  void SetTimer(Conn* c, Clock::time_point when, void (Impl::*on_expiry)(Conn*));
  void OnReadTimeout(Conn* c);
  void OnCloseTimeout(Conn* c) { Close(c); }
  // The connection `id` of `loop`, or nullptr once it closed (loop thread).
  static Conn* Find(Loop* loop, uint64_t id) {
    auto it = loop->conns.find(id);
    return it == loop->conns.end() ? nullptr : it->second.get();
  }
  // Runs `step` on `c` after the loop's other ready work, if `c` is still open and in `state`:
  // how a connection that used its turn (kTurnBudget) resumes.
  void ResumeLater(Conn* c, State state, bool (Impl::*step)(Conn*));
  // Closes the connections of `loop` that `pick` selects; returns how many.
  template <typename Pick>
  std::size_t CloseWhere(Loop* loop, Pick pick);
  bool Idle(const Conn* c) const {
    return c->state == State::kReading && c->request_bytes == 0 && c->buffer.size() == 0;
  }
  void Close(Conn* c);
  void FinishHandling();
  // Runs `fn` on every loop's thread and waits for all of them.
  void OnEveryLoop(const std::function<void(Loop*)>& fn);

  const ServerOptions options_;
  const Handler handler_;     // either this
  const AsyncHandler async_;  // or this
  const std::shared_ptr<spdlog::logger> log_;

  std::vector<std::unique_ptr<Loop>> loops_;  // set by Start
  std::unique_ptr<BlockingPool> pool_;        // blocking handlers
  std::size_t next_loop_ = 0;                 // round-robin; loop 0's thread only
  UniqueFd listen_fd_;                        // watched by loop 0
  bool listening_ = false;                    // loop 0's thread only
  uint64_t next_conn_id_ = 1;                 // loop 0's thread only

  std::mutex drain_mu_;  // serializes Drain()
  mutable std::mutex mu_;
  std::condition_variable cv_;   // a connection closed or a handler answered
  bool started_ = false;         // guarded by mu_
  bool accept_stopped_ = false;  // guarded by mu_
  bool stopped_ = false;         // loops joined; guarded by mu_
  std::size_t open_ = 0;         // connections being served; guarded by mu_
  std::atomic<bool> draining_{false};
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
};

// What a Responder carries: where to deliver the answer, and whether it was.
struct Responder::State {
  HttpServer::Impl* server = nullptr;
  HttpServer::Impl::Loop* loop = nullptr;
  uint64_t conn_id = 0;
  std::atomic<bool> sent{false};
  ~State() {
    if (!sent.load()) {
      server->ResponseFromAnyThread(
          loop, conn_id, MakeErrorResponse(500, "internal", "internal error", NewInvocationId()));
    }
  }
};

void Responder::Send(HttpResponse res) const {
  if (state_->sent.exchange(true)) {
    return;
  }
  state_->server->ResponseFromAnyThread(state_->loop, state_->conn_id, std::move(res));
}

EventLoop* Responder::Loop() const {
  return state_->loop->ev.get();
}

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
  const uint16_t port =
      ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  unsigned threads = options_.threads;
  if (threads == 0) {
    threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  }
  std::vector<std::unique_ptr<Loop>> loops;
  for (unsigned i = 0; i < threads; ++i) {
    auto ev = EventLoop::Create();
    if (!ev.ok()) {
      return ev.status();
    }
    auto loop = std::make_unique<Loop>();
    loop->ev = std::move(*ev);
    loops.push_back(std::move(loop));
  }
  // Watched before any thread runs: loop 0 is not running yet, so this is its thread's work.
  const int lfd = fd.Get();
  if (Status s = loops[0]->ev->Watch(lfd, EPOLLIN, [this](uint32_t) { OnListenerReady(); });
      !s.ok()) {
    return UnavailableError(s.message());
  }
  listen_fd_ = std::move(fd);
  listening_ = true;
  loops_ = std::move(loops);
  if (handler_) {
    pool_ = std::make_unique<BlockingPool>();
  }
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    Loop* loop = loops_[i].get();
    try {
      loop->thread = std::thread([loop] { loop->ev->Run(); });
    } catch (const std::system_error& e) {
      for (std::size_t k = 0; k < i; ++k) {
        loops_[k]->ev->Stop();
        loops_[k]->thread.join();
      }
      loops_.clear();
      listen_fd_.Reset();
      return UnavailableError(std::string("starting the event-loop threads: ") + e.what());
    }
  }
  started_ = true;
  FAAS_LOG(log_, info, "http.listening", {"addr", FormatHostPort(options_.host, family, port)},
           {"threads", loops_.size()});
  return port;
}

void HttpServer::Impl::OnEveryLoop(const std::function<void(Loop*)>& fn) {
  std::vector<std::future<void>> done;
  for (auto& loop : loops_) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    Loop* l = loop.get();
    l->ev->Post([l, promise, &fn] {
      fn(l);
      promise->set_value();
    });
  }
  for (auto& f : done) {
    f.wait();
  }
}

void HttpServer::Impl::StopAccepting() {
  {
    std::lock_guard lock(mu_);
    const bool was_listening = started_ && !accept_stopped_ && !stopped_;
    accept_stopped_ = true;
    if (!was_listening) {
      return;
    }
  }
  auto promise = std::make_shared<std::promise<void>>();
  auto done = promise->get_future();
  Loop* loop0 = loops_[0].get();
  loop0->ev->Post([this, loop0, promise] {
    if (listen_fd_.Valid()) {
      loop0->ev->Unwatch(listen_fd_.Get());
      listen_fd_.Reset();
    }
    listening_ = false;
    promise->set_value();
  });
  done.wait();
  FAAS_LOG(log_, info, "http.stopped_accepting", {"connections", ActiveConnections()});
}

void HttpServer::Impl::OnListenerReady() {
  for (int i = 0; i < 64; ++i) {  // bounded, so a flood cannot starve the other connections
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    const int cfd = ::accept4(listen_fd_.Get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return;
      }
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) {
        continue;
      }
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog; stop watching the
      // listener for a moment (it is level-triggered and would report it again at once).
      FAAS_LOG(log_, warn, "http.accept_failed", {"error", ErrnoError(err, "accept4").message()});
      EventLoop* ev = loops_[0]->ev.get();
      ev->Unwatch(listen_fd_.Get());
      ev->AddTimer(Clock::now() + std::chrono::milliseconds(100), [this, ev] {
        if (listening_ && listen_fd_.Valid()) {
          (void)ev->Watch(listen_fd_.Get(), EPOLLIN, [this](uint32_t) { OnListenerReady(); });
        }
      });
      return;
    }
    OnAccepted(UniqueFd(cfd), peer);
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
  if (open_ >= options_.max_connections) {
    lock.unlock();
    rejected_global_.fetch_add(1, std::memory_order_relaxed);
    FAAS_LOG(log_, warn, "http.no_capacity", {"max_connections", options_.max_connections});
    RejectConnection(std::move(fd), 503, "no_capacity", "too many open connections");
    return;
  }
  if (!client.empty()) {
    ++conns_per_client_[client];
  }
  ++open_;
  lock.unlock();
  auto conn = std::make_unique<Conn>();
  conn->id = next_conn_id_++;
  conn->fd = std::move(fd);
  conn->remote = FormatSockaddr(peer);
  conn->client = std::move(client);
  Loop* loop = loops_[next_loop_].get();
  next_loop_ = (next_loop_ + 1) % loops_.size();
  if (loop == loops_[0].get()) {
    Register(loop, std::move(conn));
    return;
  }
  // Handed over as a raw pointer (std::function needs a copyable lambda); the loop runs every
  // posted function, even when stopping, so it is always adopted.
  Conn* raw = conn.release();
  loop->ev->Post([this, loop, raw] { Register(loop, std::unique_ptr<Conn>(raw)); });
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
  // A fresh socket's send buffer takes this whole response in one non-blocking write.
  Conn tmp;
  tmp.close_after = true;
  PrepareResponse(&tmp, res, nullptr, 11, /*head_only=*/false);
  std::size_t sent = 0;
  if (SendSome(fd.Get(), tmp.head, tmp.body, &sent) && sent == tmp.head.size() + tmp.body.size()) {
    ::shutdown(fd.Get(), SHUT_WR);
    // Discard what already arrived so close() sends FIN, not RST.
    std::array<char, 4096> buf{};
    while (::recv(fd.Get(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  }
}

void HttpServer::Impl::Register(Loop* loop, std::unique_ptr<Conn> owned) {
  Conn* c = owned.get();
  c->loop = loop;
  loop->conns.emplace(c->id, std::move(owned));
  const uint64_t id = c->id;
  Status s = loop->ev->Watch(c->fd.Get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             [this, loop, id](uint32_t events) {
                               if (Conn* conn = Find(loop, id)) {
                                 OnEvents(conn, events);
                               }
                             });
  if (!s.ok()) {
    FAAS_LOG(log_, err, "http.watch_failed", {"remote", c->remote}, {"error", s.message()});
    Close(c);
    return;
  }
  if (draining_.load()) {
    Close(c);
    return;
  }
  StartRequest(c);
  ProcessInput(c);
}

void HttpServer::Impl::OnEvents(Conn* c, uint32_t events) {
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    c->may_read = true;
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    c->peer_closed = true;  // no edge will come for the end once it is next in line
  }
  switch (c->state) {
    case State::kReading:
      if (c->may_read) {
        ProcessInput(c);
      }
      return;
    case State::kWriting:
      if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
        ContinueWrite(c);
      }
      return;
    case State::kLingering:
      Linger(c);
      return;
    case State::kHandling:
      return;  // read after the answer; a dead peer shows when it is written
  }
}

void HttpServer::Impl::SetTimer(Conn* c, Clock::time_point when, void (Impl::*on_expiry)(Conn*)) {
  EventLoop* ev = c->loop->ev.get();
  if (c->timer != 0) {
    ev->CancelTimer(c->timer);
  }
  Loop* loop = c->loop;
  const uint64_t id = c->id;
  c->timer = ev->AddTimer(when, [this, loop, id, on_expiry] {
    if (Conn* conn = Find(loop, id)) {
      conn->timer = 0;
      (this->*on_expiry)(conn);
    }
  });
}

void HttpServer::Impl::ResumeLater(Conn* c, State state, bool (Impl::*step)(Conn*)) {
  Loop* loop = c->loop;
  const uint64_t id = c->id;
  loop->ev->Post([this, loop, id, state, step] {
    if (Conn* conn = Find(loop, id); conn != nullptr && conn->state == state) {
      (this->*step)(conn);
    }
  });
}

template <typename Pick>
std::size_t HttpServer::Impl::CloseWhere(Loop* loop, Pick pick) {
  std::vector<Conn*> close;  // collected first: Close erases from the map being walked
  for (auto& [id, c] : loop->conns) {
    if (pick(c.get())) {
      close.push_back(c.get());
    }
  }
  for (Conn* c : close) {
    Close(c);
  }
  return close.size();
}

void HttpServer::Impl::StartRequest(Conn* c) {
  c->state = State::kReading;
  c->parser.emplace();
  c->parser->header_limit(
      static_cast<std::uint32_t>(std::min<std::size_t>(options_.max_header_bytes, UINT32_MAX)));
  c->parser->body_limit(static_cast<std::uint64_t>(options_.max_body_bytes));
  c->parser->eager(true);
  c->request_bytes = c->buffer.size();
  c->header_checked = false;
  if (c->buffer.size() == 0 && c->buffer.capacity() > 4096) {
    c->buffer.shrink_to_fit();  // after a big request, an idle connection holds nothing big
  }
  // Idle keep-alive (or, with pipelined bytes, the header) deadline.
  SetTimer(c, Clock::now() + options_.read_timeout, &Impl::OnReadTimeout);
}

void HttpServer::Impl::OnReadTimeout(Conn* c) {
  if (c->state != State::kReading) {
    return;
  }
  if (Idle(c)) {
    Close(c);
    return;
  }
  SendServerError(
      c, 408, "request_timeout",
      "request not received within " + std::to_string(options_.read_timeout.count()) + " ms");
}

bool HttpServer::Impl::ProcessInput(Conn* c) {
  for (int budget = kTurnBudget; c->state == State::kReading; --budget) {
    if (budget == 0) {  // the loop's other connections first; this one resumes after them
      ResumeLater(c, State::kReading, &Impl::ProcessInput);
      return true;
    }
    if (c->buffer.size() > 0) {
      if (!Parse(c)) {
        return false;
      }
      if (c->state != State::kReading) {
        return true;  // answering an error, or lingering
      }
      if (c->parser->is_done()) {
        if (!Dispatch(c)) {
          return false;
        }
        continue;  // answered inline: the next request may already be buffered
      }
    }
    if (!c->may_read) {
      return true;
    }
    // Until a body is due, read into the loop's scratch buffer and keep only what arrived: an
    // idle connection holds a buffer the size of its last request, not of a read. A body is
    // read straight into the connection's buffer (one copy fewer).
    // Allocated on first use: a thread_local array would be zeroed in every thread's TLS.
    thread_local std::unique_ptr<char[]> scratch;
    if (scratch == nullptr) {
      scratch = std::make_unique_for_overwrite<char[]>(kReadChunk);
    }
    const bool in_body = c->header_checked;
    auto direct = in_body ? c->buffer.prepare(kReadChunk) : net::mutable_buffer();
    char* into = in_body ? static_cast<char*>(direct.data()) : scratch.get();
    const ssize_t n = ::recv(c->fd.Get(), into, kReadChunk, MSG_DONTWAIT);
    if (n > 0) {
      const auto got = static_cast<std::size_t>(n);
      if (in_body) {
        c->buffer.commit(got);
      } else {
        c->buffer.commit(net::buffer_copy(c->buffer.prepare(got), net::buffer(scratch.get(), got)));
      }
      if (c->request_bytes == 0) {  // the first byte: from the idle wait to the header's
        SetTimer(c, Clock::now() + options_.read_timeout, &Impl::OnReadTimeout);
      }
      c->request_bytes += got;
      c->may_read = c->peer_closed || got == kReadChunk;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->may_read = false;
      return true;
    }
    // EOF (the client went away, maybe mid-request) or a socket error: nobody to answer.
    if (n < 0) {
      FAAS_LOG(log_, debug, "http.read_failed", {"remote", c->remote},
               {"error", ErrnoError(errno, "recv").message()});
    }
    Close(c);
    return false;
  }
  return true;
}

bool HttpServer::Impl::Parse(Conn* c) {
  auto& parser = *c->parser;
  while (c->buffer.size() > 0 && !parser.is_done()) {
    beast::error_code ec;
    const std::size_t used = parser.put(c->buffer.data(), ec);
    c->buffer.consume(used);
    if (ec == http::error::need_more) {
      break;
    }
    if (ec) {
      return OnParseError(c, ec);
    }
    if (!c->header_checked && parser.is_header_done()) {
      c->header_checked = true;
      auto& msg = parser.get();
      if (msg.target().size() > options_.max_target_bytes) {
        return SendServerError(c, 414, "uri_too_long",
                               "request target is longer than " +
                                   std::to_string(options_.max_target_bytes) + " bytes");
      }
      if (msg.version() != 10 && msg.version() != 11) {
        return SendServerError(c, 400, "bad_request", "unsupported HTTP version");
      }
      if (msg.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
        return SendServerError(c, 400, "bad_request", "Transfer-Encoding must end with chunked");
      }
      if (!parser.is_done()) {
        if (msg.version() == 11 && beast::iequals(msg[http::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          std::size_t sent = 0;
          if (!SendSome(c->fd.Get(), kContinue, {}, &sent) || sent != kContinue.size()) {
            Close(c);  // 25 bytes do not fit: the client is not reading
            return false;
          }
        }
        SetTimer(c, Clock::now() + options_.read_timeout, &Impl::OnReadTimeout);  // the body's
      }
    }
    if (used == 0) {
      break;
    }
  }
  return true;
}

bool HttpServer::Impl::OnParseError(Conn* c, const beast::error_code& ec) {
  if (ec == http::error::header_limit) {
    return SendServerError(
        c, 431, "header_too_large",
        "request header is larger than " + std::to_string(options_.max_header_bytes) + " bytes");
  }
  if (ec == http::error::body_limit) {
    return SendServerError(
        c, 413, "payload_too_large",
        "request body is larger than " + std::to_string(options_.max_body_bytes) + " bytes");
  }
  return SendServerError(c, 400, "bad_request", "malformed request: " + ec.message());
}

bool HttpServer::Impl::Dispatch(Conn* c) {
  auto& msg = c->parser->get();
  if (c->timer != 0) {
    c->loop->ev->CancelTimer(c->timer);
    c->timer = 0;
  }
  c->state = State::kHandling;
  in_flight_.fetch_add(1, std::memory_order_relaxed);

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
  req.remote_addr = c->remote;
  c->version = msg.version();
  c->keep_alive = msg.keep_alive();
  c->head_only = msg.method() == http::verb::head;
  c->parser.reset();
  // The next request starts where this one ended in the buffer.
  c->request_bytes = c->buffer.size();

  auto state = std::make_shared<Responder::State>();
  state->server = this;
  state->loop = c->loop;
  state->conn_id = c->id;
  Responder responder(std::move(state));
  Loop* loop = c->loop;
  const uint64_t id = c->id;
  c->dispatching = true;  // an answer given before Dispatch returns must not read on
  if (handler_) {
    auto box = std::make_shared<HttpRequest>(std::move(req));
    const bool queued = pool_->Run([this, box, responder] {
      HttpResponse res;
      try {
        handler_(*box, res);
      } catch (const std::exception& e) {
        FAAS_LOG(log_, err, "http.handler_exception", {"method", box->method}, {"path", box->path},
                 {"error", e.what()});
        res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
      } catch (...) {
        FAAS_LOG(log_, err, "http.handler_exception", {"method", box->method}, {"path", box->path},
                 {"error", "non-std exception"});
        res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
      }
      responder.Send(std::move(res));
    });
    if (!queued) {
      FAAS_LOG(log_, err, "http.thread_failed", {"remote", c->remote});
      responder.Send(MakeErrorResponse(503, "no_capacity", "cannot start a thread for the request",
                                       NewInvocationId(), 1));
    }
  } else {
    try {
      async_(req, responder);
    } catch (const std::exception& e) {
      FAAS_LOG(log_, err, "http.handler_exception", {"method", req.method}, {"path", req.path},
               {"error", e.what()});
      responder.Send(MakeErrorResponse(500, "internal", "internal error", NewInvocationId()));
    } catch (...) {
      FAAS_LOG(log_, err, "http.handler_exception", {"method", req.method}, {"path", req.path},
               {"error", "non-std exception"});
      responder.Send(MakeErrorResponse(500, "internal", "internal error", NewInvocationId()));
    }
  }
  // The responder (our copy) goes here; an inline answer may have closed the connection.
  responder = Responder(nullptr);
  Conn* still = Find(loop, id);
  if (still == nullptr) {
    return false;
  }
  still->dispatching = false;
  return true;
}

void HttpServer::Impl::FinishHandling() {
  {
    std::lock_guard lock(mu_);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }
  cv_.notify_all();
}

void HttpServer::Impl::OnResponse(Loop* loop, uint64_t conn_id, HttpResponse res) {
  FinishHandling();
  Conn* c = Find(loop, conn_id);
  if (c == nullptr || c->state != State::kHandling) {
    return;  // the connection was shut down (drain grace expired)
  }
  if (res.status < 200 || res.status > 599) {
    FAAS_LOG(log_, err, "http.bad_status", {"status", res.status});
    res = MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
  }
  c->close_after = res.close || !c->keep_alive || draining_.load();
  c->linger_after = false;
  PrepareResponse(c, res, &res, c->version, c->head_only);
  c->state = State::kWriting;
  if (!ContinueWrite(c)) {
    return;
  }
  if (c->state == State::kReading && !c->dispatching) {
    ProcessInput(c);
  }
}

void HttpServer::Impl::PrepareResponse(Conn* c, const HttpResponse& res, HttpResponse* owned,
                                       unsigned version, bool head_only) {
  const auto status = static_cast<unsigned>(res.status);
  const http::status known = http::int_to_status(status);
  const beast::string_view reason =
      known == http::status::unknown ? beast::string_view("Unknown") : http::obsolete_reason(known);
  std::string& head = c->head;
  head.clear();
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
  if (c->close_after) {
    head += "Connection: close\r\n";
  } else if (version == 10) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  c->body.clear();
  if (!no_body && !head_only) {
    if (owned != nullptr) {
      c->body = std::move(owned->body);
    } else {
      c->body = res.body;
    }
  }
  c->sent = 0;
}

bool HttpServer::Impl::ContinueWrite(Conn* c) {
  if (!SendSome(c->fd.Get(), c->head, c->body, &c->sent)) {
    FAAS_LOG(log_, debug, "http.write_failed", {"remote", c->remote});
    Close(c);
    return false;
  }
  if (c->sent < c->head.size() + c->body.size()) {
    if (c->timer == 0) {  // one deadline for the whole response
      SetTimer(c, Clock::now() + options_.write_timeout, &Impl::OnCloseTimeout);
    }
    return true;  // EPOLLOUT continues it
  }
  c->head.clear();
  c->body.clear();
  c->body.shrink_to_fit();
  if (c->timer != 0) {
    c->loop->ev->CancelTimer(c->timer);
    c->timer = 0;
  }
  if (c->close_after) {
    if (c->linger_after) {
      StartLinger(c);
      return true;
    }
    Close(c);
    return false;
  }
  if (draining_.load()) {
    Close(c);
    return false;
  }
  StartRequest(c);
  return true;
}

bool HttpServer::Impl::SendServerError(Conn* c, int status, std::string_view code,
                                       std::string_view message) {
  switch (status) {
    case 400:
      rejected_bad_request_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 414:
      rejected_header_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 408:
      rejected_timeout_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 413:
      rejected_payload_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 431:
      rejected_header_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
  const std::string inv = NewInvocationId();
  FAAS_LOG(log_, debug, "http.request_rejected", {"remote", c->remote}, {"status", status},
           {"code", code}, {"inv", inv});
  HttpResponse res = MakeErrorResponse(status, code, message, inv);
  if (c->timer != 0) {
    c->loop->ev->CancelTimer(c->timer);
    c->timer = 0;
  }
  c->close_after = true;
  c->linger_after = true;
  PrepareResponse(c, res, &res, 11, /*head_only=*/false);
  c->state = State::kWriting;
  return ContinueWrite(c);
}

void HttpServer::Impl::StartLinger(Conn* c) {
  ::shutdown(c->fd.Get(), SHUT_WR);
  c->state = State::kLingering;
  SetTimer(c, Clock::now() + std::min(options_.read_timeout, kMaxLinger), &Impl::OnCloseTimeout);
  Linger(c);
}

bool HttpServer::Impl::Linger(Conn* c) {
  std::array<char, 16384> buf{};
  for (int budget = kTurnBudget;; --budget) {
    if (budget == 0) {  // a client still streaming: the others first (see kTurnBudget)
      ResumeLater(c, State::kLingering, &Impl::Linger);
      return true;
    }
    const ssize_t n = ::recv(c->fd.Get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    }
    Close(c);  // EOF or error
    return false;
  }
}

void HttpServer::Impl::Close(Conn* c) {
  Loop* loop = c->loop;
  if (c->timer != 0) {
    loop->ev->CancelTimer(c->timer);
  }
  loop->ev->Unwatch(c->fd.Get());
  c->fd.Reset();
  {
    std::lock_guard lock(mu_);
    --open_;
    ReleaseClientLocked(c->client);
  }
  cv_.notify_all();
  loop->conns.erase(c->id);  // frees c
}

void HttpServer::Impl::Drain(std::chrono::milliseconds grace) {
  std::lock_guard drain_lock(drain_mu_);
  StopAccepting();
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) {
      return;
    }
  }
  draining_.store(true);
  std::atomic<std::size_t> idle{0};
  OnEveryLoop([&](Loop* loop) { idle += CloseWhere(loop, [&](Conn* c) { return Idle(c); }); });
  std::unique_lock lock(mu_);
  if (open_ > 0) {
    FAAS_LOG(log_, info, "http.draining", {"connections", open_}, {"idle", idle.load()},
             {"grace_ms", grace.count()});
  }
  auto done = [&] { return open_ == 0 && in_flight_.load() == 0; };
  if (!cv_.wait_until(lock, Clock::now() + grace, done)) {
    FAAS_LOG(log_, warn, "http.drain_grace_expired", {"connections", open_});
    lock.unlock();
    // Everything not waiting for a handler closes now; those that are close when it answers
    // (the answer is not sent: the drain is over).
    OnEveryLoop([&](Loop* loop) {
      CloseWhere(loop, [](Conn* c) {
        if (c->state == State::kHandling) {
          ::shutdown(c->fd.Get(), SHUT_RDWR);  // its answer's write will fail, and close it
          return false;
        }
        return true;
      });
    });
    lock.lock();
    while (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return in_flight_.load() == 0; })) {
      FAAS_LOG(log_, warn, "http.drain_waiting_for_handlers", {"requests", in_flight_.load()});
    }
    lock.unlock();
    // Their answers arrived (and failed to send): close what is left.
    OnEveryLoop([&](Loop* loop) { CloseWhere(loop, [](Conn*) { return true; }); });
    lock.lock();
  }
  stopped_ = true;
  lock.unlock();
  for (auto& loop : loops_) {
    loop->ev->Stop();
  }
  for (auto& loop : loops_) {
    loop->thread.join();
  }
  pool_.reset();  // joins its threads; every handler has answered
}

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), nullptr)) {}

HttpServer::HttpServer(ServerOptions options, AsyncHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), nullptr, std::move(handler))) {}

HttpServer::~HttpServer() = default;  // ~Impl drains with no grace

Result<uint16_t> HttpServer::Start() {
  return impl_->Start();
}
void HttpServer::StopAccepting() {
  impl_->StopAccepting();
}
void HttpServer::Drain(std::chrono::milliseconds grace) {
  impl_->Drain(grace);
}
std::size_t HttpServer::ActiveConnections() const {
  return impl_->ActiveConnections();
}
std::size_t HttpServer::InFlightRequests() const {
  return impl_->InFlightRequests();
}
HttpServer::Rejections HttpServer::GetRejections() const {
  return impl_->GetRejections();
}

}  // namespace faas::gateway
