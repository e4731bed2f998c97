// The change listener (faas/store/change_listener.h): one libpq connection in non-blocking mode,
// driven by poll(2) on its socket and an eventfd that Stop() writes, so that no wait, not even
// for a server that does not answer, outlasts a deadline or delays Stop().
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"
#include "faas/store/change_listener.h"

#include "pg.h"

namespace faas::store {
namespace {

using SteadyClock = std::chrono::steady_clock;

// How long the listener waits for LISTEN or a ping to be answered: the server cancels a
// statement at kStatementTimeout, so an answer later than this will not come.
constexpr std::chrono::milliseconds kAnswerWithin = pg::kStatementTimeout + std::chrono::seconds(1);

bool IsChannelName(std::string_view s) {
  if (s.empty() || s.size() > 63 || (s[0] >= '0' && s[0] <= '9')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

struct ChangeListener::Impl {
  explicit Impl(ChangeListenerOptions o) : options(std::move(o)) {}

  const ChangeListenerOptions options;
  UniqueFd wake;  // eventfd: readable once Stop() was called
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> resyncs{0};
  std::atomic<bool> listening{false};
  bool down_logged = false;  // listener thread only: one warning per outage
  std::thread thread;

  // Waits until `fd` (ignored when negative) is ready for `events`, Stop() is called, or
  // `deadline` passes: 1, -1 and 0 respectively.
  int Wait(int fd, short events, SteadyClock::time_point deadline) const {
    for (;;) {
      if (stop.load()) {
        return -1;
      }
      pollfd fds[2] = {{wake.Get(), POLLIN, 0}, {fd, events, 0}};
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
      const int timeout = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60'000));
      const int n = ::poll(fds, 2, timeout);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (fds[0].revents != 0 || stop.load()) {
        return -1;
      }
      if (n > 0 && fds[1].revents != 0) {
        return 1;
      }
      if (SteadyClock::now() >= deadline) {
        return 0;
      }
    }
  }

  void Down(std::string_view event, std::string_view why) {
    // The first failure of an outage is a warning, the retries that follow are debug lines.
    const auto level = down_logged ? spdlog::level::debug : spdlog::level::warn;
    pg::Log().log(level, faas::log::Format(event, {{"error", pg::OneLine(why)}}));
    down_logged = true;
  }

  // A new connection, made without blocking; nullptr when it failed (logged) or Stop() came.
  PGconn* Connect() {
    const pg::ConnectParams params(options.url);
    PGconn* c = PQconnectStartParams(params.keys(), params.values(), /*expand_dbname=*/1);
    if (c == nullptr) {
      Down("store.listen_connect_failed", "out of memory");
      return nullptr;
    }
    // connect_timeout binds only blocking connects: this one keeps its own deadline.
    const auto deadline = SteadyClock::now() + pg::kConnectTimeout;
    PostgresPollingStatusType st =
        PQstatus(c) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
      if (st == PGRES_POLLING_FAILED) {
        Down("store.listen_connect_failed", PQerrorMessage(c));
        PQfinish(c);
        return nullptr;
      }
      const int ready = Wait(PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
      if (ready <= 0) {
        if (ready == 0) {
          Down("store.listen_connect_failed", "no answer within the connect timeout");
        }
        PQfinish(c);
        return nullptr;
      }
      st = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) {
      Down("store.listen_connect_failed", PQerrorMessage(c));
      PQfinish(c);
      return nullptr;
    }
    pg::RouteNotices(c);
    return c;
  }

  // Sends `sql` and reads every result. False when a statement failed, the connection broke,
  // no answer came within kAnswerWithin, or Stop() came.
  bool Query(PGconn* c, const std::string& sql) {
    const auto deadline = SteadyClock::now() + kAnswerWithin;
    if (PQsendQuery(c, sql.c_str()) == 0) {
      Down("store.listen_lost", PQerrorMessage(c));
      return false;
    }
    int flushed = 0;
    while ((flushed = PQflush(c)) == 1) {  // the socket's buffer is full: wait, reading meanwhile
      if (Wait(PQsocket(c), POLLIN | POLLOUT, deadline) <= 0 || PQconsumeInput(c) == 0) {
        return false;
      }
    }
    if (flushed < 0) {
      Down("store.listen_lost", PQerrorMessage(c));
      return false;
    }
    bool ok = true;
    for (;;) {
      while (PQisBusy(c) != 0) {
        const int ready = Wait(PQsocket(c), POLLIN, deadline);
        if (ready == 0) {
          Down("store.listen_lost", "no answer to \"" + sql + "\" within " +
                                        std::to_string(kAnswerWithin.count()) + " ms");
        }
        if (ready <= 0) {
          return false;
        }
        if (PQconsumeInput(c) == 0) {
          Down("store.listen_lost", PQerrorMessage(c));
          return false;
        }
      }
      PGresult* r = PQgetResult(c);
      if (r == nullptr) {
        return ok;
      }
      const ExecStatusType st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        Down("store.listen_failed", PQresultErrorMessage(r));
        ok = false;
      }
      PQclear(r);
    }
  }

  // Hands over what the connection has received.
  void Deliver(PGconn* c) {
    while (PGnotify* n = PQnotifies(c)) {
      Change change{n->relname != nullptr ? n->relname : "", n->extra != nullptr ? n->extra : ""};
      PQfreemem(n);
      if (options.on_notify) {
        options.on_notify(change);
      }
    }
  }

  // Serves notifications until the connection is lost or Stop() comes.
  void Serve(PGconn* c) {
    auto heard = SteadyClock::now();
    for (;;) {
      Deliver(c);
      const int ready = Wait(PQsocket(c), POLLIN, heard + options.ping_after);
      if (ready < 0) {
        return;
      }
      if (ready == 0) {
        // Silent for a while: make sure someone is still there (a server that hangs, or a
        // network that drops everything, would otherwise look like a quiet cluster).
        if (!Query(c, "SELECT 1")) {
          return;
        }
      } else if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK) {
        Down("store.listen_lost", PQerrorMessage(c));
        return;
      }
      heard = SteadyClock::now();
    }
  }

  void Run() {
    std::string listen;
    for (const std::string& ch : options.channels) {
      listen += "LISTEN " + ch + ";";
    }
    std::chrono::milliseconds backoff = options.min_backoff;
    while (!stop.load()) {
      if (PGconn* c = Connect()) {
        if (Query(c, listen)) {
          listening = true;
          backoff = options.min_backoff;
          down_logged = false;
          pg::Log().info(faas::log::Format("store.listening", {{"resync", resyncs.load() + 1}}));
          // Whatever changed while nobody listened was not announced: re-read everything.
          if (options.on_resync) {
            options.on_resync();
          }
          resyncs.fetch_add(1);
          Serve(c);
          listening = false;
        }
        PQfinish(c);
      }
      if (Wait(-1, 0, SteadyClock::now() + backoff) < 0) {
        break;
      }
      backoff = std::min(backoff * 2, options.max_backoff);
    }
  }
};

ChangeListener::ChangeListener(ChangeListenerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ChangeListener::~ChangeListener() {
  Stop();
}

faas::Status ChangeListener::Start() {
  if (impl_->thread.joinable()) {
    return faas::OkStatus();
  }
  for (const std::string& ch : impl_->options.channels) {
    if (!IsChannelName(ch)) {
      return faas::InvalidArgumentError("channel \"" + ch + "\" must match [a-z_][a-z0-9_]{0,62}");
    }
  }
  if (impl_->options.channels.empty()) {
    return faas::InvalidArgumentError("a change listener needs at least one channel");
  }
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    return faas::ErrnoError(errno, "eventfd", "change listener");
  }
  impl_->wake = UniqueFd(fd);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
  return faas::OkStatus();
}

void ChangeListener::Stop() {
  if (!impl_->thread.joinable()) {
    return;
  }
  impl_->stop = true;
  const uint64_t one = 1;
  if (::write(impl_->wake.Get(), &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
    // Cannot happen with a fresh eventfd; the thread still sees `stop` within its next wait.
    pg::Log().warn(faas::log::Format("store.listen_wake_failed", {{"errno", errno}}));
  }
  impl_->thread.join();
}

uint64_t ChangeListener::resyncs() const {
  return impl_->resyncs.load();
}

bool ChangeListener::listening() const {
  return impl_->listening.load();
}

}  // namespace faas::store
