#include "sqlite.h"

#include <mutex>
#include <utility>

#include "faas/base/log.h"

namespace faas::store::sql {

faas::Status Error(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "sqlite " + std::string(what) + ": " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return faas::UnavailableError(std::move(msg));
    case SQLITE_FULL:
      return faas::ResourceExhaustedError(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return faas::FailedPreconditionError(std::move(msg));
    default:
      return faas::InternalError(std::move(msg));
  }
}

faas::Status Exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return Error(db, rc, sql);
  }
  return faas::OkStatus();
}

namespace {

// A writer waits this long for another connection's lock before SQLITE_BUSY (Unavailable).
constexpr int kBusyTimeoutMs = 5000;

faas::Status SetUp(sqlite3* db, const std::string& path, const OpenOptions& options) {
  int rc = sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (rc != SQLITE_OK) {
    return Error(db, rc, "busy_timeout");
  }
  {
    FAAS_ASSIGN_OR_RETURN(Stmt wal, Stmt::Prepare(db, "PRAGMA journal_mode=WAL"));
    FAAS_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      auto log = faas::log::Get(options.logger);
      FAAS_LOG(log, warn, options.no_wal_event, {"db", path},
               {"journal_mode", row ? wal.Text(0) : ""});
    }
  }
  FAAS_RETURN_IF_ERROR(
      Exec(db, ("PRAGMA synchronous=" + std::string(options.synchronous)).c_str()));
  if (options.foreign_keys) {
    FAAS_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=ON"));
  }
  return faas::OkStatus();
}

}  // namespace

faas::Result<sqlite3*> Open(const std::string& path, const OpenOptions& options) {
  // Before SQLite initialises (the first open): no global memory statistics. They take a
  // process-wide mutex on every allocation SQLite makes; the ledger's writer allocates for each
  // row it inserts, and nobody reads the statistics. Too late (SQLITE_MISUSE) only if something
  // opened a database without this function, which then keeps the default.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // The handle exists (and must be closed) even when open fails.
  faas::Status s = rc == SQLITE_OK ? SetUp(db, path, options) : Error(db, rc, "open " + path);
  if (!s.ok()) {
    rc = sqlite3_close(db);  // no statement is left open, so this closes
    if (rc != SQLITE_OK) {
      auto log = faas::log::Get(options.logger);
      FAAS_LOG(log, err, "sqlite.close_failed", {"db", path}, {"error", sqlite3_errstr(rc)});
    }
    return s;
  }
  return db;
}

faas::Result<Stmt> Stmt::Prepare(sqlite3* db, const char* sql,
                                 std::initializer_list<Param> params) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return Error(db, rc, "prepare");
  }
  Stmt stmt(db, raw);
  FAAS_RETURN_IF_ERROR(stmt.Bind(params));
  return stmt;
}

faas::Status Stmt::Rebind(std::initializer_list<Param> params) {
  sqlite3_reset(stmt_);  // repeats the last step's error, which Step() already reported
  return Bind(params);
}

faas::Status Stmt::RebindBorrowed(std::initializer_list<Param> params) {
  sqlite3_reset(stmt_);
  return Bind(params, SQLITE_STATIC);
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
}

faas::Status Stmt::BindBorrowedAt(int first, std::initializer_list<Param> params) {
  return Bind(params, SQLITE_STATIC, first);
}

faas::Status Stmt::Bind(std::initializer_list<Param> params, sqlite3_destructor_type bytes,
                        int first) {
  int index = first - 1;
  for (const Param& p : params) {
    ++index;
    int rc;
    if (const int64_t* i = std::get_if<int64_t>(&p)) {
      rc = sqlite3_bind_int64(stmt_, index, *i);
    } else if (const Blob* blob = std::get_if<Blob>(&p)) {
      // A null data pointer would bind NULL; an empty blob must stay an empty blob.
      rc = sqlite3_bind_blob64(stmt_, index, blob->bytes.empty() ? "" : blob->bytes.data(),
                               blob->bytes.size(), bytes);
    } else {
      std::string_view text = std::get<std::string_view>(p);
      rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), bytes, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) {
      return Error(db_, rc, "bind");
    }
  }
  return faas::OkStatus();
}

Stmt::Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Stmt::~Stmt() {
  // sqlite3_finalize repeats the last step's error, which Step() already reported.
  sqlite3_finalize(stmt_);
}

faas::Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return Error(db_, rc, "step");
}

faas::Status Stmt::Run() {
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) {
      return faas::OkStatus();
    }
  }
}

int64_t Stmt::Int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Stmt::Text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  int len = sqlite3_column_bytes(stmt_, col);
  if (text == nullptr || len <= 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(len));
}

std::string Stmt::Bytes(int col) const {
  // sqlite3_column_blob first, then sqlite3_column_bytes (the order the SQLite docs require).
  const void* data = sqlite3_column_blob(stmt_, col);
  int len = sqlite3_column_bytes(stmt_, col);
  if (data == nullptr || len <= 0) {
    return {};
  }
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(len));
}

bool Stmt::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

faas::Result<Transaction> Transaction::Begin(sqlite3* db) {
  FAAS_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ == nullptr) {
    return;
  }
  faas::Status s = Exec(db_, "ROLLBACK");
  if (!s.ok()) {
    faas::log::Get("store")->error(
        faas::log::Format("sqlite.rollback_failed", {{"error", s.message()}}));
  }
}

faas::Status Transaction::Commit() {
  FAAS_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
  db_ = nullptr;
  return faas::OkStatus();
}

}  // namespace faas::store::sql
