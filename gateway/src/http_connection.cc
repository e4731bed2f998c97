// One connection's life on its event loop: wait for a request, read and parse it (Beast),
// dispatch it to the handler, write the answer, then the next request, or linger and close.
// Answers come back through the Responder. The design is described in http_server_impl.h.
#include "faas/gateway/http_server.h"

#include "http_server_impl.h"

namespace faas::gateway {
namespace {

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
  // A plain loop: find_first_of with a set calls memchr once per byte of the value.
  return std::none_of(value.begin(), value.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// Headers the server owns: it frames every response itself.
bool IsFramingHeader(std::string_view std_name) {
  const beast::string_view name(std_name.data(), std_name.size());
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection");
}

void AsciiLower(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
}

// A handler threw: logs it and returns the 500 its client gets.
HttpResponse HandlerFailed(const std::shared_ptr<spdlog::logger>& log, const HttpRequest& req,
                           const char* error) {
  FAAS_LOG(log, err, "http.handler_exception", {"method", req.method}, {"path", req.path},
           {"error", error});
  return MakeErrorResponse(500, "internal", "internal error", NewInvocationId());
}

}  // namespace

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

void Responder::Send(HttpResponse res) const {
  if (state_->sent.exchange(true)) {
    return;
  }
  state_->server->ResponseFromAnyThread(state_->loop, state_->conn_id, std::move(res));
}

EventLoop* Responder::Loop() const {
  return state_->loop->ev.get();
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
  c->on_timer = on_expiry;
  // Moved, not replaced, when one is pending: no allocation (the header's deadline after the
  // idle one, per request on a keep-alive connection).
  if (c->timer != 0 && ev->RescheduleTimer(c->timer, when)) {
    return;
  }
  // Two words, so std::function keeps them inline (no allocation); the rest is in the Conn.
  Loop* loop = c->loop;
  const uint64_t id = c->id;
  c->timer = ev->AddTimer(when, [loop, id] {
    if (Conn* conn = Find(loop, id)) {
      conn->timer = 0;
      (loop->impl->*conn->on_timer)(conn);
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
        res = HandlerFailed(log_, *box, e.what());
      } catch (...) {
        res = HandlerFailed(log_, *box, "non-std exception");
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
      responder.Send(HandlerFailed(log_, req, e.what()));
    } catch (...) {
      responder.Send(HandlerFailed(log_, req, "non-std exception"));
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
      return StartLinger(c);  // false: the client had already closed, and so has c
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
    case 408:
      rejected_timeout_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 413:
      rejected_payload_.fetch_add(1, std::memory_order_relaxed);
      break;
    case 414:  // counted with 431: both are a request head over its limit
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

bool HttpServer::Impl::StartLinger(Conn* c) {
  ::shutdown(c->fd.Get(), SHUT_WR);
  c->state = State::kLingering;
  SetTimer(c, Clock::now() + std::min(options_.read_timeout, kMaxLinger), &Impl::OnCloseTimeout);
  return Linger(c);
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
}  // namespace faas::gateway
