// Private to gateway/src/http_server.cc and http_connection.cc: HttpServer::Impl.
//
// http_server.cc: the listener, accepting and the connection caps, handing connections to the
// loops, and drain. http_connection.cc: one connection's state machine (read, parse with Beast,
// dispatch to the handler, write the answer, linger) and the Responder that brings answers back.
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
// - Everything Boost stays in this header and those two files: Beast headers take ~30 s to
//   compile.
#pragma once

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
#include <utility>  // before Boost: 1.74's Asio uses std::exchange without including it

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
#include "faas/gateway/http_server.h"

namespace faas::gateway {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

// One non-blocking sendmsg of what is left of `head` then `body`; advances `*sent` (counted
// over both). Returns false on a socket error; true otherwise (EAGAIN included: check *sent).
bool SendSome(int fd, std::string_view head, std::string_view body, std::size_t* sent);

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
    Impl* impl = nullptr;  // its server: lets a connection's timer capture two words (SetTimer)
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
    void (Impl::*on_timer)(Conn*) = nullptr;  // what `timer` calls when it fires
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
  // Half-closes and reads what the client still sends until it closes. False when c is closed
  // (and freed) already.
  bool StartLinger(Conn* c);
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
      try {
        server->ResponseFromAnyThread(
            loop, conn_id, MakeErrorResponse(500, "internal", "internal error", NewInvocationId()));
      } catch (...) {  // out of memory: the connection then ends at its timeout, unanswered
      }
    }
  }
};

}  // namespace faas::gateway
