// Health checks of the worker nodes (faas/cluster/health.h): the policy (fall/rise, passive
// marks, list changes) and the HTTP prober, one poll loop over non-blocking sockets.
#include "faas/cluster/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/unique_fd.h"

namespace faas::cluster {
namespace {

auto& Log() {
  static auto log = faas::log::Get("cluster");
  return log;
}

int64_t MillisBetween(faas::Clock::time_point a, faas::Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// "host:port" (numeric IPv4, [IPv6], or localhost) as a socket address; false if it is not one.
bool ParseAddress(std::string_view text, sockaddr_storage& out, socklen_t& len) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return false;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint16_t p = 0;
  if (std::from_chars(port.data(), port.data() + port.size(), p).ec != std::errc() || p == 0) {
    return false;
  }
  const std::string h = host == "localhost" ? "127.0.0.1" : std::string(host);
  std::memset(&out, 0, sizeof(out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(p);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(p);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// 4 KiB: a /readyz answer is a status line, a few headers and a small JSON body.
constexpr std::size_t kMaxAnswerBytes = 4096;

// One probe in flight.
struct Probe {
  enum class Phase { kConnecting, kSending, kReading, kDone };
  faas::UniqueFd fd;
  Phase phase = Phase::kDone;
  std::string request;
  std::size_t sent = 0;
  std::string answer;
  ProbeResult result;

  void Fail(std::string why) {
    result = {false, std::move(why), -1};
    phase = Phase::kDone;
    fd.Reset();
  }
  void FailErrno(const char* what, int err) { Fail(std::string(what) + ": " + std::strerror(err)); }
  // True once `answer` holds the status line, the headers and Content-Length bytes of body.
  bool Complete() const {
    const std::size_t end = answer.find("\r\n\r\n");
    if (end == std::string::npos) {
      return false;
    }
    std::string lower = answer.substr(0, end);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::size_t cl = lower.find("\r\ncontent-length:");
    if (cl == std::string::npos) {
      return false;  // read until the peer closes (we asked for Connection: close)
    }
    std::size_t i = cl + 17;
    while (i < lower.size() && lower[i] == ' ') {
      ++i;
    }
    std::size_t length = 0;
    std::from_chars(lower.data() + i, lower.data() + lower.size(), length);
    return answer.size() >= end + 4 + length;
  }
  // Judges the answer read so far.
  void Finish() {
    phase = Phase::kDone;
    fd.Reset();
    // "HTTP/1.1 200 OK"
    int status = 0;
    if (answer.starts_with("HTTP/1.") && answer.size() >= 12) {
      std::from_chars(answer.data() + 9, answer.data() + 12, status);
    }
    if (status == 200) {
      const std::size_t headers_end = answer.find("\r\n\r\n");
      const std::string_view body = headers_end == std::string::npos
                                        ? std::string_view()
                                        : std::string_view(answer).substr(headers_end + 4);
      result = {true, "", ParseReportedLoad(body)};
    } else if (status != 0) {
      result = {false, "status " + std::to_string(status), -1};
    } else {
      result = {false, answer.empty() ? "closed without an answer" : "not an HTTP answer", -1};
    }
  }
  // Sends what is left of the request; moves on to reading when it is all out.
  void Send() {
    while (sent < request.size()) {
      const ssize_t n =
          ::send(fd.Get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        }
        FailErrno("send", errno);
        return;
      }
      sent += static_cast<std::size_t>(n);
    }
    phase = Phase::kReading;
  }
  void Read() {
    char buf[1024];
    for (;;) {
      const ssize_t n = ::recv(fd.Get(), buf, sizeof(buf), 0);
      if (n == 0) {
        Finish();
        return;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        }
        FailErrno("recv", errno);  // e.g. reset by peer
        return;
      }
      answer.append(buf, static_cast<std::size_t>(n));
      if (answer.size() >= kMaxAnswerBytes || Complete()) {
        Finish();
        return;
      }
    }
  }
};

class HttpProber final : public Prober {
 public:
  std::vector<ProbeResult> ProbeAll(const std::vector<std::string>& addresses,
                                    std::chrono::milliseconds timeout) override {
    const auto deadline = faas::Clock::now() + timeout;
    std::vector<Probe> probes(addresses.size());
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      Start(probes[i], addresses[i]);
    }
    std::vector<pollfd> fds;
    std::vector<Probe*> owners;
    for (;;) {
      fds.clear();
      owners.clear();
      for (Probe& p : probes) {
        if (p.phase != Probe::Phase::kDone) {
          const auto events = p.phase == Probe::Phase::kReading ? POLLIN : POLLOUT;
          fds.push_back({p.fd.Get(), static_cast<short>(events), 0});
          owners.push_back(&p);
        }
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - faas::Clock::now());
      if (fds.empty() || left.count() <= 0) {
        break;
      }
      const int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
      if (n < 0 && errno != EINTR) {
        const int err = errno;
        for (Probe* p : owners) {
          p->FailErrno("poll", err);
        }
        break;
      }
      for (std::size_t i = 0; n > 0 && i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          Step(*owners[i]);
        }
      }
    }
    std::vector<ProbeResult> out;
    out.reserve(probes.size());
    for (Probe& p : probes) {
      if (p.phase == Probe::Phase::kConnecting) {
        p.Fail("connect timeout after " + std::to_string(timeout.count()) + "ms");
      } else if (p.phase != Probe::Phase::kDone) {
        p.Fail("no answer within " + std::to_string(timeout.count()) + "ms");
      }
      out.push_back(std::move(p.result));
    }
    return out;
  }

 private:
  static void Start(Probe& p, const std::string& address) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!ParseAddress(address, addr, len)) {
      p.Fail("bad address \"" + address + "\" (want IP:PORT)");
      return;
    }
    p.fd.Reset(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (p.fd.Get() < 0) {
      p.FailErrno("socket", errno);
      return;
    }
    p.request = "GET /readyz HTTP/1.1\r\nHost: " + address +
                "\r\nUser-Agent: faas-health\r\nConnection: close\r\n\r\n";
    if (::connect(p.fd.Get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
      p.phase = Probe::Phase::kSending;
      p.Send();
    } else if (errno == EINPROGRESS) {
      p.phase = Probe::Phase::kConnecting;
    } else {
      const int err = errno;
      p.FailErrno("connect", err);
      p.result.refused = err == ECONNREFUSED;
    }
  }

  static void Step(Probe& p) {
    if (p.phase == Probe::Phase::kConnecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(p.fd.Get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      if (err != 0) {
        p.FailErrno("connect", err);  // e.g. Connection refused
        p.result.refused = err == ECONNREFUSED;
        return;
      }
      p.phase = Probe::Phase::kSending;
    }
    if (p.phase == Probe::Phase::kSending) {
      p.Send();
    } else if (p.phase == Probe::Phase::kReading) {
      p.Read();
    }
  }
};

}  // namespace

std::unique_ptr<Prober> MakeHttpProber() {
  return std::make_unique<HttpProber>();
}

double ParseReportedLoad(std::string_view body) {
  const std::size_t key = body.find("\"load\"");
  if (key == std::string_view::npos) {
    return -1;
  }
  std::size_t i = key + 6;
  auto skip_space = [&] {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n')) {
      ++i;
    }
  };
  skip_space();
  if (i >= body.size() || body[i] != ':') {
    return -1;
  }
  ++i;
  skip_space();
  double v = -1;
  if (std::from_chars(body.data() + i, body.data() + body.size(), v).ec != std::errc() ||
      !std::isfinite(v) || v < 0) {
    return -1;
  }
  return v;
}

HealthChecker::HealthChecker(ListFn list, HealthOptions options, std::unique_ptr<Prober> prober)
    : list_(std::move(list)),
      options_(std::move(options)),
      prober_(prober != nullptr ? std::move(prober) : MakeHttpProber()) {}

HealthChecker::~HealthChecker() {
  Stop();
}

void HealthChecker::Start() {
  if (refresher_.joinable()) {
    return;
  }
  (void)Refresh();  // a failure is logged; the refresher tries again
  refresher_ = std::thread([this] { RefreshLoop(); });
  prober_thread_ = std::thread([this] { ProbeLoop(); });
}

void HealthChecker::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (refresher_.joinable()) {
    refresher_.join();
  }
  if (prober_thread_.joinable()) {
    prober_thread_.join();
  }
}

std::vector<NodeInfo> HealthChecker::Up() const {
  std::lock_guard lock(mu_);
  std::vector<NodeInfo> up;
  for (const auto& [id, e] : nodes_) {
    if (e.health.up) {
      up.push_back(e.health.info);
    }
  }
  return up;
}

void HealthChecker::MarkDown(std::string_view id, std::string_view why) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) {
    return;
  }
  it->second.health.passes = 0;  // `rise` passes from now on bring it back
  if (it->second.health.up) {
    SetDown(it->second, "passive: " + std::string(why));
  }
}

std::vector<NodeHealth> HealthChecker::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<NodeHealth> out;
  for (const auto& [id, e] : nodes_) {
    out.push_back(e.health);
  }
  return out;
}

faas::Status HealthChecker::Refresh() {
  faas::Result<std::vector<NodeInfo>> listed = list_();
  if (!listed.ok()) {
    // The last list stays in force: a store outage must not take every node out.
    FAAS_LOG(Log(), warn, "node.list_failed", {"error", listed.status().message()});
    return listed.status();
  }
  std::lock_guard lock(mu_);
  std::map<std::string, Entry, std::less<>> next;
  for (NodeInfo& n : *listed) {
    auto it = nodes_.find(n.id);
    if (it != nodes_.end() && it->second.health.info.http_address == n.http_address &&
        it->second.health.info.address == n.address) {
      Entry e = std::move(it->second);
      n.reported_load = e.health.info.reported_load;  // the list does not know them
      n.others_load = e.health.info.others_load;
      e.health.info = std::move(n);
      next.emplace(e.health.info.id, std::move(e));
      continue;
    }
    // New, or moved to another address: unknown until probed; its first pass admits it.
    Entry e;
    e.health.info = std::move(n);
    e.health.last_error = "not probed yet";
    e.down_since = options_.now();
    FAAS_LOG(Log(), info, "node.added", {"node", e.health.info.id},
             {"http", e.health.info.http_address});
    next.emplace(e.health.info.id, std::move(e));
  }
  for (const auto& [id, e] : nodes_) {
    if (next.find(id) == next.end()) {
      FAAS_LOG(Log(), info, "node.removed", {"node", id});
    }
  }
  nodes_ = std::move(next);
  return faas::OkStatus();
}

void HealthChecker::SetOwnInFlight(std::function<double(std::string_view id)> f) {
  auto shared =
      f ? std::make_shared<const std::function<double(std::string_view)>>(std::move(f)) : nullptr;
  std::lock_guard lock(mu_);
  own_in_flight_ = std::move(shared);
}

void HealthChecker::SetOnUp(std::function<void(const NodeInfo& node)> f) {
  auto shared =
      f ? std::make_shared<const std::function<void(const NodeInfo&)>>(std::move(f)) : nullptr;
  std::lock_guard lock(mu_);
  on_up_ = std::move(shared);
}

void HealthChecker::ProbeRound() {
  std::vector<std::string> ids;
  std::vector<std::string> addresses;
  std::shared_ptr<const std::function<double(std::string_view)>> own_in_flight;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : nodes_) {
      ids.push_back(id);
      addresses.push_back(e.health.info.http_address);
    }
    own_in_flight = own_in_flight_;
  }
  if (ids.empty()) {
    return;
  }
  // Our calls in flight on each node as its probe goes out: the node counts its load a round
  // trip later (well under a millisecond on a LAN), when it answers. Noted at the send and not
  // at the answer, because a round returns all answers together, after the slowest node.
  std::vector<double> own(ids.size(), -1);
  for (std::size_t i = 0; own_in_flight != nullptr && i < ids.size(); ++i) {
    own[i] = (*own_in_flight)(ids[i]);
  }
  std::vector<ProbeResult> results = prober_->ProbeAll(addresses, options_.timeout);
  std::vector<NodeInfo> came_up;
  std::shared_ptr<const std::function<void(const NodeInfo&)>> on_up;
  {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < ids.size() && i < results.size(); ++i) {
      auto it = nodes_.find(ids[i]);
      // A node removed or moved during the round: its result is about an old address.
      if (it != nodes_.end() && it->second.health.info.http_address == addresses[i] &&
          Record(it->second, results[i], own[i])) {
        came_up.push_back(it->second.health.info);
      }
    }
    on_up = on_up_;
  }
  for (const NodeInfo& node : came_up) {
    if (on_up != nullptr) {
      (*on_up)(node);
    }
  }
}

bool HealthChecker::Record(Entry& e, const ProbeResult& r, double own) {
  NodeHealth& h = e.health;
  if (r.ok) {
    h.misses = 0;
    ++h.passes;
    h.info.reported_load = r.load;
    if (r.load >= 0 && own >= 0) {
      // Our calls are inside the report: take them out (a node counts its load a moment after
      // we counted ours, so the difference can be a little off either way; never below 0).
      const double sample = std::max(0.0, r.load * h.info.capacity - own);
      const double prev = h.info.others_load;
      h.info.others_load =
          prev < 0 ? sample : (1 - options_.others_alpha) * prev + options_.others_alpha * sample;
    } else {
      h.info.others_load = -1;
    }
    const bool came_up = !h.up && (h.passes >= options_.rise || !e.seen_pass);
    if (came_up) {
      h.up = true;
      FAAS_LOG(Log(), info, "node.up", {"node", h.info.id}, {"passes", h.passes},
               {"down_ms", MillisBetween(e.down_since, options_.now())});
    }
    e.seen_pass = true;
    return came_up;
  }
  h.passes = 0;
  ++h.misses;
  h.last_error = r.why;
  if (h.up && r.refused) {
    SetDown(e, r.why + " (refused: out at once)");
  } else if (h.up && h.misses >= options_.fall) {
    SetDown(e, r.why + " (" + std::to_string(h.misses) + " misses in a row)");
  }
  return false;
}

void HealthChecker::SetDown(Entry& e, std::string_view why) {
  e.health.up = false;
  e.health.last_error = std::string(why);
  e.down_since = options_.now();
  FAAS_LOG(Log(), warn, "node.down", {"node", e.health.info.id}, {"why", std::string(why)});
}

void HealthChecker::RefreshLoop() {
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, options_.refresh, [this] { return stopping_; })) {
    lock.unlock();
    (void)Refresh();  // a failure is logged and keeps the last list
    lock.lock();
  }
}

void HealthChecker::ProbeLoop() {
  auto next = faas::Clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    ProbeRound();
    // A fixed cadence: a round that took `timeout` still starts the next one `interval` after
    // its own start.
    next = std::max(next + options_.interval, faas::Clock::now());
    lock.lock();
    wake_.wait_until(lock, next, [this] { return stopping_; });
  }
}

}  // namespace faas::cluster
