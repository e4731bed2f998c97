// HttpServer: a small HTTP/1.1 server for the gateway (docs/http-api.md). A few event-loop threads
// own the connections (epoll, non-blocking I/O); keep-alive, bounded header/body sizes,
// read/write timeouts and graceful drain. No Boost types leak from this header (pimpl).
//
// Two kinds of handler:
//   * Handler (blocking): runs on a thread of its own (BlockingPool), may block.
//       faas::gateway::HttpServer server({.port = 0}, [](HttpRequest& req, HttpResponse& res) {
//         res.body = "hello " + req.path;
//       });
//   * AsyncHandler: runs on the connection's event-loop thread and must not block; it answers
//     through the Responder, at once or later from any thread (docs/design/0006).
//       HttpServer server(opts, [](HttpRequest& req, Responder r) { r.Send(HttpResponse{}); });
//   FAAS_ASSIGN_OR_RETURN(uint16_t port, server.Start());
//   ...
//   server.Drain(std::chrono::seconds(10));  // on SIGTERM
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"

namespace faas {
class EventLoop;
}  // namespace faas

namespace faas::gateway {

// One parsed request, handed to the Handler. The handler may move strings out of it.
struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // raw request-target
  std::string path;    // target before '?', percent-decoding NOT applied
  std::string query;   // after '?', without it
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  std::string remote_addr;  // "127.0.0.1:54321" ("[::1]:54321" for IPv6)

  // First header named `lower_name` (which must be lower-case), or nullptr.
  const std::string* Header(std::string_view lower_name) const;
};

// The handler's answer. The server writes Content-Length (except for 204/304) and Connection
// itself; handler headers named Content-Length, Transfer-Encoding or Connection are ignored, and
// headers containing CR, LF or NUL are dropped (logged) so a value cannot split the response.
// For HEAD requests the body is not sent. A status outside 200..599 becomes a 500 "internal".
struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // send Connection: close and close after writing
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // a numeric IPv4 or IPv6 address
  uint16_t port = 0;               // 0 = pick a free port
  // Beyond: 413 "payload_too_large", then the connection is closed. With Content-Length the
  // answer comes before the body is read (no 100 Continue); chunked: as soon as it passes.
  std::size_t max_body_bytes = 6u << 20;
  // Beyond (request line + headers): 431 "header_too_large", then close.
  std::size_t max_header_bytes = 16u << 10;
  // Beyond (the request-target: path and query): 414 "uri_too_long", then close.
  std::size_t max_target_bytes = 8u << 10;
  // Bounds, each on its own: the idle keep-alive wait for a request's first byte, the header
  // read, and the body read. On expiry the connection is closed, after a 408 "request_timeout"
  // if a request was partly read.
  std::chrono::milliseconds read_timeout{30'000};
  // Bounds writing one response; on expiry the connection is closed.
  std::chrono::milliseconds write_timeout{30'000};
  // Event-loop threads serving the connections; 0 = one per CPU, at most 4.
  unsigned threads = 0;
  // Beyond: the connection is accepted, answered 503 "no_capacity" and closed.
  std::size_t max_connections = 4096;
  // Open connections from one client address (IPv4, or IPv6 /128; an IPv4-mapped IPv6 peer
  // counts as its IPv4 address); 0 = no cap. Beyond: the connection is accepted, answered 429
  // "rate_limited" with Retry-After: 1, and closed. Behind a proxy or load balancer every
  // connection shares its address: raise this (or set 0) there.
  std::size_t max_connections_per_ip = 256;
};

// Called on a thread of its own for each complete request; fills `res` (which starts as an
// empty 200). May block (it runs the function). Exceptions are caught: the client gets a 500
// "internal" and the server logs it.
using Handler = std::function<void(HttpRequest& req, HttpResponse& res)>;

// Answers one request of an AsyncHandler. Send exactly once, from any thread (later calls are
// ignored); when the last copy is dropped unsent, the client gets a 500 "internal". Sending on
// the connection's own loop thread writes at once, without a thread hand-off.
class Responder {
 public:
  struct State;
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}
  void Send(HttpResponse res) const;
  // The event loop that owns the connection: the handler may watch fds and set timers on it
  // (from its thread only) to finish the request there.
  EventLoop* Loop() const;

 private:
  std::shared_ptr<State> state_;
};

// Called on the connection's event-loop thread for each complete request. Must not block.
// Exceptions thrown before Send are caught: the client gets a 500 "internal".
using AsyncHandler = std::function<void(HttpRequest& req, Responder responder)>;

// Thread-safe. Start, StopAccepting, Drain and Stop must not be called from inside the handler.
class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler);
  HttpServer(ServerOptions options, AsyncHandler handler);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (SO_REUSEADDR) and starts the accept thread; returns the bound port.
  // Errors: InvalidArgument (host is not a numeric address), Unavailable for socket errors
  // ("bind(127.0.0.1:8080): Address already in use [EADDRINUSE]"), FailedPrecondition when
  // called twice or after Stop.
  faas::Result<uint16_t> Start();
  // Closes the listener and joins the accept thread; existing connections continue. Idempotent.
  void StopAccepting();
  // StopAccepting, then: idle keep-alive connections are closed at once; requests in flight
  // finish and are answered with Connection: close; after `grace`, the remaining connections are
  // shut down (a handler still running is not interrupted: it must honour its own deadline).
  // Returns when every connection has closed and every handler has answered.
  void Drain(std::chrono::milliseconds grace);
  void Stop() { Drain(std::chrono::milliseconds(0)); }

  // Open connections being served (not counting rejected ones: 503, 429).
  std::size_t ActiveConnections() const;
  // Requests whose header has been read and whose response has not yet been written.
  std::size_t InFlightRequests() const;

  // What the server itself turned away since construction, by reason (answers the handler
  // gives, e.g. a function's own body limit, are not counted). Each counter is exact; the set is
  // not one snapshot.
  struct Rejections {
    uint64_t connections_global = 0;  // 503 no_capacity: max_connections reached
    uint64_t connections_per_ip = 0;  // 429 rate_limited: max_connections_per_ip reached
    uint64_t header_too_large = 0;    // 431 and 414
    uint64_t payload_too_large = 0;   // 413
    uint64_t request_timeout = 0;     // 408
    uint64_t bad_request = 0;         // 400: malformed or unsupported framing
  };
  Rejections GetRejections() const;

 private:
  friend struct Responder::State;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::gateway
