// The libpq layer shared by the store's PostgreSQL parts (pg.h).
#include "pg.h"

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
  Rows rows(PQexecParams(c, sql, static_cast<int>(n), types.data(), values.data(), lengths.data(),
                         formats.data(), binary_result ? 1 : 0));
  const ExecStatusType st = PQresultStatus(rows.get());
  if (rows.get() == nullptr || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
    return Error(c, rows.get());
  }
  return rows;
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
  RouteNotices(conn);
  Log().info(faas::log::Format("store.connected", {{"backend", "postgresql"}}));
  return faas::OkStatus();
}

faas::Status Migrate(PGconn* conn) {
  for (;;) {
    faas::Result<bool> done = InTransaction(conn, [&]() -> faas::Result<bool> {
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
      // PQexec: a migration may hold several statements (no parameters).
      Rows applied(PQexec(conn, Migration(static_cast<int>(at))));
      if (PQresultStatus(applied.get()) != PGRES_COMMAND_OK) {
        faas::Status s = Error(conn, applied.get());
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
