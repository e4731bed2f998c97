// Private to store/src: a thin RAII layer over libpq shared by every PostgreSQL-backed part of the
// store (the registry today; the ledger, node registry and others as they move there): bound
// parameters, owned results, transactions retried on serialization failures and deadlocks,
// connecting with our defaults, and the one versioned schema (pg_schema.cc) that Migrate applies.
// docs/design/0016-store-backends.md explains the design.
#pragma once

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "faas/base/log.h"
#include "faas/base/status.h"

namespace faas::store::pg {

// A transaction that fails on a serialization failure or deadlock is run again this often.
constexpr int kMaxTransactionAttempts = 5;

// pg_advisory_xact_lock keys: "faas" then a number. Add new ones here so that none collide.
constexpr int64_t kMigrationLockKey = 0x6661617300000001;
constexpr int64_t kUidLockKey = 0x6661617300000002;
// Session-level (pg_try_advisory_lock): held by the one node-registry janitor (pg_nodes.cc).
constexpr int64_t kNodeJanitorLockKey = 0x6661617300000003;

spdlog::logger& Log();

// Every connection faasd opens (Connect, and the change listener's) gets these, so a server that
// does not answer never holds a thread for long (docs/operations.md "Timeouts"):
// - connect_timeout: a connection attempt gives up after this long;
// - statement_timeout: the server cancels any statement running longer (SQLSTATE 57014, which
//   Error maps to DeadlineExceeded); lock waits count, so a deploy stuck behind a lock fails too;
// - TCP keepalives: a peer that vanished is noticed within about 15 s on an idle connection.
// The URI may override each of them (e.g. "?options=-c%20statement_timeout%3D30000").
constexpr std::chrono::seconds kConnectTimeout{5};
constexpr std::chrono::seconds kStatementTimeout{5};

// Longer limits for work that is slow by nature, with the reason documented where used
// (docs/operations.md "Timeouts"): schema migrations (and the wait for another process's), and the
// aggregate reads behind `faasctl bill` over the central ledger.
constexpr std::chrono::minutes kMigrationTimeout{10};
constexpr std::chrono::seconds kReportTimeout{60};

// Raises the statement_timeout of what this thread runs next in the current transaction on `c`:
// SET LOCAL on the server (it ends with the transaction), and, while the returned guard lives,
// the client-side deadline Await applies on this thread. Use inside InTransaction, with the
// guard outliving the statements.
class LongerStatements {
 public:
  explicit LongerStatements(std::chrono::milliseconds timeout);
  ~LongerStatements();
  LongerStatements(const LongerStatements&) = delete;
  LongerStatements& operator=(const LongerStatements&) = delete;
  // The SET LOCAL; call it inside the transaction.
  faas::Status Apply(PGconn* c) const;

 private:
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds previous_;
};

// The connection parameters above, followed by ("dbname", url) with expand_dbname, as the
// null-terminated key and value arrays PQconnectdbParams and PQconnectStartParams take.
struct ConnectParams {
  explicit ConnectParams(const std::string& url);
  const char* const* keys() const { return keys_; }
  const char* const* values() const { return values_; }

 private:
  std::string connect_timeout_;
  std::string options_;
  const char* keys_[9] = {};
  const char* values_[9] = {};
};

// Sends the server's notices ("relation ... already exists, skipping") to our log, not stderr.
void RouteNotices(PGconn* c);

// Bytes sent in binary format as a bytea (no escaping, embedded NULs kept).
struct Bytes {
  std::string_view bytes;
};

// A bound parameter: an integer, text, or Bytes. SQL text is always a constant.
using Param = std::variant<int64_t, std::string_view, Bytes>;

// One line: libpq's messages end in newlines and indent their hints with tabs.
std::string OneLine(std::string_view s);

// Maps a failed command to a Status: a lost or refused connection (SQLSTATE class 08, an
// administrator's shutdown 57P) is Unavailable, so callers may retry; serialization failures and
// deadlocks Aborted (InTransaction retries them); a statement cancelled by statement_timeout
// (57014) DeadlineExceeded; insufficient resources (53) ResourceExhausted; anything else
// Internal.
faas::Status Error(PGconn* c, const PGresult* r);

// An owned PGresult with typed column access. Move-only.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r) {}
  Rows(Rows&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  Rows& operator=(Rows&&) = delete;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows() { PQclear(r_); }

  const PGresult* get() const { return r_; }
  int Count() const { return PQntuples(r_); }
  std::size_t Size() const { return static_cast<std::size_t>(Count()); }
  // Rows an INSERT/UPDATE/DELETE touched.
  int64_t Affected() const {
    const char* n = PQcmdTuples(r_);
    int64_t v = 0;
    std::from_chars(n, n + std::char_traits<char>::length(n), v);
    return v;
  }
  // The column's bytes exactly (text format: the text; binary: the raw value); "" for NULL.
  std::string Text(int row, int col) const {
    if (PQgetisnull(r_, row, col) != 0) {
      return "";
    }
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  // A text-format integer column; 0 for NULL.
  int64_t Int(int row, int col) const {
    std::string t = Text(row, col);
    int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
  }

 private:
  PGresult* r_;
};

// Runs `sql` with `params` ($1, $2, ...). Results come as text unless `binary_result`.
faas::Result<Rows> Exec(PGconn* c, const char* sql, std::initializer_list<Param> params = {},
                        bool binary_result = false);

template <typename T>
faas::Status StatusOf(const faas::Result<T>& r) {
  return r.status();
}
inline faas::Status StatusOf(const faas::Status& s) {
  return s;
}

// Runs `body` between BEGIN and COMMIT (READ COMMITTED; the bodies lock what they change), rolls
// back when it fails, and runs it again, up to kMaxTransactionAttempts, when PostgreSQL aborted
// it for a serialization failure or a deadlock (Aborted).
template <typename Body>
auto InTransaction(PGconn* c, Body&& body) -> decltype(body()) {
  for (int attempt = 1;; ++attempt) {
    if (faas::Result<Rows> begin = Exec(c, "BEGIN"); !begin.ok()) {
      return begin.status();
    }
    auto result = body();
    faas::Status failed = StatusOf(result);
    if (failed.ok()) {
      faas::Result<Rows> commit = Exec(c, "COMMIT");
      if (commit.ok()) {
        return result;
      }
      failed = commit.status();
    } else {
      (void)Exec(c, "ROLLBACK");  // a failure here (connection gone) also ends the transaction
    }
    if (failed.code() != faas::StatusCode::kAborted || attempt == kMaxTransactionAttempts) {
      return failed;
    }
    Log().info(
        faas::log::Format("store.txn_retry", {{"attempt", attempt}, {"error", failed.message()}}));
  }
}

// pg_notify(`channel`, `payload`) on `c`: inside a transaction it is delivered at COMMIT and
// dropped by a rollback. PostgreSQL refuses payloads of 8000 bytes or more; longer ones are cut
// (listeners re-read what changed, so the payload is only a hint).
faas::Status Notify(PGconn* c, std::string_view channel, std::string_view payload);

// Connects `*conn` (when null) with the libpq URI `url`, or resets it when the server went away
// since the last call; a no-op when it is connected. Unavailable when it cannot connect.
faas::Status Connect(PGconn*& conn, const std::string& url);

// The newest schema version this binary knows, and the migration that takes the schema from
// version i to i + 1 (pg_schema.cc; append only).
int SchemaVersion();
const char* Migration(int i);

// Brings the database's schema to SchemaVersion(), one migration per transaction under an
// advisory lock (processes starting at once queue on it), with kMigrationTimeout instead of
// kStatementTimeout: neither a long migration nor the wait for another process's is cut off.
// FailedPrecondition when the database is newer than this binary.
faas::Status Migrate(PGconn* conn);

}  // namespace faas::store::pg
