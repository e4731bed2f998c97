// The libpq layer shared by the store's PostgreSQL parts (pg.h).
#include "pg.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "faas/base/time.h"

namespace faas::store::pg {

spdlog::logger& Log() {
  static auto log = faas::log::Get("store");
  return *log;
}

std::string OneLine(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += c;
  }
  return out;
}

faas::Status Error(PGconn* c, const PGresult* r) {
  std::string msg = r != nullptr ? PQresultErrorMessage(r) : "";
  if (msg.empty()) {
    msg = PQerrorMessage(c);
  }
  const char* state_field = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view state = state_field != nullptr ? state_field : "";
  std::string text = "postgresql: " + OneLine(msg);
  if (PQstatus(c) != CONNECTION_OK || state.starts_with("08") || state.starts_with("57P")) {
    return faas::UnavailableError(std::move(text));
  }
  if (state == "57014") {  // query_canceled: statement_timeout, or a cancel request
    return faas::DeadlineExceededError(std::move(text));
  }
  if (state == "40001" || state == "40P01") {
    return faas::AbortedError(std::move(text));
  }
  if (state.starts_with("53")) {
    return faas::ResourceExhaustedError(std::move(text));
  }
  return faas::InternalError(std::move(text));
}

ConnectParams::ConnectParams(const std::string& url)
    : connect_timeout_(std::to_string(kConnectTimeout.count())),
      options_("-c statement_timeout=" +
               std::to_string(std::chrono::milliseconds(kStatementTimeout).count())) {
  // The URI comes last so that it may override these defaults.
  const char* const keys[] = {"connect_timeout",  "options",         "application_name",
                              "keepalives",       "keepalives_idle", "keepalives_interval",
                              "keepalives_count", "dbname"};
  const char* const values[] = {
      connect_timeout_.c_str(), options_.c_str(), "faasd", "1", "5", "2", "5", url.c_str()};
  for (std::size_t i = 0; i < std::size(keys); ++i) {
    keys_[i] = keys[i];
    values_[i] = values[i];
  }
}

void RouteNotices(PGconn* c) {
  PQsetNoticeProcessor(
      c,
      [](void*, const char* message) {
        Log().debug(faas::log::Format("store.pg_notice", {{"message", OneLine(message)}}));
      },
      nullptr);
}

faas::Status Notify(PGconn* c, std::string_view channel, std::string_view payload) {
  constexpr std::size_t kMaxPayload = 7900;  // PostgreSQL's limit is 8000 bytes, exclusive
  if (payload.size() > kMaxPayload) {
    payload = payload.substr(0, kMaxPayload);
  }
  return Exec(c, "SELECT pg_notify($1, $2)", {channel, payload}).status();
}

namespace {

// Set by LongerStatements on this thread: replaces the connection's statement_timeout in Await.
thread_local std::chrono::milliseconds t_longer_statements{0};

// The statement_timeout `c` was opened with (its "options" parameter: ours, or the URI's), 0 when
// it has none. Units as PostgreSQL reads them: ms by default, or s, min, h.
std::chrono::milliseconds StatementTimeoutOf(PGconn* c) {
  std::chrono::milliseconds out{0};
  PQconninfoOption* info = PQconninfo(c);
  for (PQconninfoOption* o = info; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) != "options" || o->val == nullptr) {
      continue;
    }
    const std::string_view v = o->val;
    const std::string_view key = "statement_timeout=";
    const std::size_t at = v.rfind(key);
    if (at == std::string_view::npos) {
      continue;
    }
    int64_t n = 0;
    const char* first = v.data() + at + key.size();
    const char* last = v.data() + v.size();
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || n < 0) {
      out = kStatementTimeout;
      continue;
    }
    const std::string_view unit(end, static_cast<std::size_t>(last - end));
    out = std::chrono::milliseconds(n);  // no unit, or "ms"
    if (unit.starts_with("min")) {
      out = std::chrono::minutes(n);
    } else if (unit.starts_with("s")) {
      out = std::chrono::seconds(n);
    } else if (unit.starts_with("h")) {
      out = std::chrono::hours(n);
    }
  }
  PQconninfoFree(info);
  return out;
}

// Waits until `c`'s socket is ready for `events` or `deadline` (none when `bounded` is false)
// passes: false on timeout.
bool WaitSocket(PGconn* c, short events, bool bounded,
                std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int timeout = -1;
    if (bounded) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd p{PQsocket(c), events, 0};
    const int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return n != 0;  // ready, or an error libpq will report
  }
}

// Reads the results of the query just sent on `c`: the first failed one as a Status, else the
// last. The server cancels a statement at its statement_timeout; one that does not answer
// kClientSlack after that is hung (stopped, or cut off by the network): its connection is shut
// down, so the next Connect makes a new one, and the call fails DeadlineExceeded.
faas::Result<Rows> Await(PGconn* c) {
  constexpr std::chrono::seconds kClientSlack{2};
  const std::chrono::milliseconds limit =
      t_longer_statements.count() > 0 ? t_longer_statements : StatementTimeoutOf(c);
  const bool bounded = limit.count() > 0;
  const auto deadline = std::chrono::steady_clock::now() + limit + kClientSlack;
  auto hung = [&]() -> faas::Status {
    ::shutdown(PQsocket(c), SHUT_RDWR);  // libpq now sees the connection as lost
    while (PGresult* r = PQgetResult(c)) {
      PQclear(r);
    }
    return faas::DeadlineExceededError(
        "postgresql: no answer within " +
        std::to_string(std::chrono::milliseconds(limit + kClientSlack).count()) +
        " ms (statement_timeout and 2 s): the server hangs or is unreachable; the connection was "
        "dropped");
  };
  int flushed = 0;
  while ((flushed = PQflush(c)) == 1) {  // the socket's buffer is full: wait, reading meanwhile
    if (!WaitSocket(c, POLLIN | POLLOUT, bounded, deadline)) {
      return hung();
    }
    if (PQconsumeInput(c) == 0) {
      break;
    }
  }
  std::optional<faas::Status> failed;
  PGresult* last = nullptr;  // owned
  for (;;) {
    while (PQisBusy(c) != 0) {
      if (!WaitSocket(c, POLLIN, bounded, deadline)) {
        return hung();
      }
      if (PQconsumeInput(c) == 0) {
        break;  // lost: PQgetResult reports it
      }
    }
    PGresult* r = PQgetResult(c);
    if (r == nullptr) {
      break;
    }
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !failed) {
      failed = Error(c, r);
    }
    PQclear(last);
    last = r;
  }
  Rows rows(last);
  if (failed) {
    return *failed;
  }
  if (last == nullptr) {
    return Error(c, nullptr);
  }
  return rows;
}

}  // namespace

faas::Result<Rows> Exec(PGconn* c, const char* sql, std::initializer_list<Param> params,
                        bool binary_result) {
  const std::size_t n = params.size();
  std::vector<std::string> ints;
  ints.reserve(n);  // never reallocates: values below point into it
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<int> formats(n);
  std::vector<Oid> types(n);
  std::size_t i = 0;
  for (const Param& p : params) {
    if (const auto* v = std::get_if<int64_t>(&p)) {
      ints.push_back(std::to_string(*v));
      values[i] = ints.back().c_str();
      lengths[i] = static_cast<int>(ints.back().size());
    } else if (const auto* s = std::get_if<std::string_view>(&p)) {
      values[i] = s->data();
      lengths[i] = static_cast<int>(s->size());
      formats[i] = 1;  // binary format of text is its bytes: no NUL terminator needed
      types[i] = 25;   // TEXTOID
    } else {
      const Bytes& b = std::get<Bytes>(p);
      values[i] = b.bytes.data();
      lengths[i] = static_cast<int>(b.bytes.size());
      formats[i] = 1;
      types[i] = 17;  // BYTEAOID
    }
    ++i;
  }
  if (PQsendQueryParams(c, sql, static_cast<int>(n), types.data(), values.data(), lengths.data(),
                        formats.data(), binary_result ? 1 : 0) == 0) {
    return Error(c, nullptr);
  }
  return Await(c);
}

LongerStatements::LongerStatements(std::chrono::milliseconds timeout)
    : timeout_(timeout), previous_(t_longer_statements) {
  t_longer_statements = timeout;
}

LongerStatements::~LongerStatements() {
  t_longer_statements = previous_;
}

faas::Status LongerStatements::Apply(PGconn* c) const {
  const std::string ms = std::to_string(timeout_.count());
  return Exec(c, "SELECT set_config('statement_timeout', $1, true)", {std::string_view(ms)})
      .status();
}

faas::Status Connect(PGconn*& conn, const std::string& url) {
  if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) {
    return faas::OkStatus();
  }
  if (conn == nullptr) {
    const ConnectParams params(url);
    conn = PQconnectdbParams(params.keys(), params.values(), /*expand_dbname=*/1);
    if (conn == nullptr) {
      return faas::UnavailableError("postgresql connect: out of memory");
    }
  } else {
    PQreset(conn);  // the server went away since the last call: try again now
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    return faas::UnavailableError("postgresql connect: " + OneLine(PQerrorMessage(conn)));
  }
  // Non-blocking: Exec waits for the socket itself, with a deadline (Await).
  if (PQsetnonblocking(conn, 1) != 0) {
    return faas::UnavailableError("postgresql connect: " + OneLine(PQerrorMessage(conn)));
  }
  RouteNotices(conn);
  Log().info(faas::log::Format("store.connected", {{"backend", "postgresql"}}));
  return faas::OkStatus();
}

faas::Status Migrate(PGconn* conn) {
  // A migration rewriting a large table may run for minutes, and a process starting meanwhile
  // must wait for it on the lock below, not give up after kStatementTimeout and fail to start.
  const LongerStatements longer(kMigrationTimeout);
  for (;;) {
    faas::Result<bool> done = InTransaction(conn, [&]() -> faas::Result<bool> {
      FAAS_RETURN_IF_ERROR(longer.Apply(conn));
      // Two processes starting at once: the second waits here, then sees the first's work.
      FAAS_RETURN_IF_ERROR(
          Exec(conn, "SELECT pg_advisory_xact_lock($1::bigint)", {kMigrationLockKey}).status());
      FAAS_RETURN_IF_ERROR(Exec(conn,
                                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                "version INTEGER PRIMARY KEY, applied_unix_ms BIGINT NOT NULL)")
                               .status());
      FAAS_ASSIGN_OR_RETURN(Rows cur,
                            Exec(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
      const int64_t at = cur.Int(0, 0);
      if (at > SchemaVersion()) {
        return faas::FailedPreconditionError(
            "the registry database's schema is version " + std::to_string(at) +
            ", newer than this faasd knows (" + std::to_string(SchemaVersion()) +
            "): upgrade faasd, or point it at another database");
      }
      if (at == SchemaVersion()) {
        return true;
      }
      // PQsendQuery: a migration may hold several statements (no parameters).
      faas::Result<Rows> applied = PQsendQuery(conn, Migration(static_cast<int>(at))) != 0
                                       ? Await(conn)
                                       : faas::Result<Rows>(Error(conn, nullptr));
      if (!applied.ok()) {
        const faas::Status& s = applied.status();
        return faas::Status(s.code(),
                            "schema migration " + std::to_string(at + 1) + ": " + s.message());
      }
      FAAS_RETURN_IF_ERROR(Exec(conn,
                                "INSERT INTO schema_migrations (version, applied_unix_ms) "
                                "VALUES ($1, $2)",
                                {at + 1, faas::UnixMillisNow()})
                               .status());
      Log().info(faas::log::Format("store.migrated", {{"schema_version", at + 1}}));
      return false;
    });
    if (!done.ok()) {
      return done.status();
    }
    if (*done) {
      return faas::OkStatus();
    }
  }
}

}  // namespace faas::store::pg
