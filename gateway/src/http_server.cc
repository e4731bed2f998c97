// HttpServer: the listener, accepting (the per-client and global connection caps), handing each
// connection to a loop, and drain. The design is described in http_server_impl.h; a
// connection's own life is in http_connection.cc.
#include "faas/gateway/http_server.h"

#include "faas/base/thread.h"

#include "http_server_impl.h"

namespace faas::gateway {
namespace {

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

}  // namespace

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) {
      return &value;
    }
  }
  return nullptr;
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
    loop->impl = this;
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
      loop->thread = std::thread([loop, i] {
        NameThisThread("faas-http-" + std::to_string(i));
        loop->ev->Run();
      });
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
