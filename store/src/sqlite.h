// Private: thin RAII wrappers over the SQLite C API that turn result codes into Status, and the
// one open sequence the store's databases share. Statements take bound parameters only; SQL text
// is always a constant.
//
//   FAAS_ASSIGN_OR_RETURN(sqlite3* db, sql::Open(path, {.synchronous = "FULL",
//                                                      .no_wal_event = "queue.no_wal"}));
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <sqlite3.h>

#include "faas/base/status.h"

namespace faas::store::sql {

// Maps an SQLite result code to a Status carrying sqlite3_errmsg: BUSY/LOCKED -> Unavailable,
// FULL -> ResourceExhausted, host problems (I/O, permissions, corruption) -> FailedPrecondition,
// anything else -> Internal.
faas::Status Error(sqlite3* db, int rc, std::string_view what);

// Runs constant SQL (no parameters, rows ignored).
faas::Status Exec(sqlite3* db, const char* sql);

// What differs between the store's databases when Open sets one up.
struct OpenOptions {
  // PRAGMA synchronous: "NORMAL" or "FULL" (in WAL mode NORMAL may lose the last commits on
  // power loss, never consistency).
  const char* synchronous = "NORMAL";
  // PRAGMA foreign_keys=ON when true.
  bool foreign_keys = false;
  // Logged at warn (fields db, journal_mode) on `logger` when the file cannot use WAL. The
  // database still works, durably, with a rollback journal: only slower, and readers wait.
  const char* no_wal_event = "sqlite.no_wal";
  // The faas::log logger the warnings go to.
  const char* logger = "store";
};

// Opens `path` read-write, creating it (SQLITE_OPEN_NOMUTEX: the caller serialises use), then
// sets a 5 s busy timeout, journal_mode=WAL, synchronous and foreign_keys as `options` says, in
// that order. Returns the handle, which the caller owns and closes with sqlite3_close. On error
// the handle is already closed; the Status is Error()'s for the failed step, e.g.
// "sqlite open /var/lib/faas/faas.db: unable to open database file" (FailedPrecondition).
faas::Result<sqlite3*> Open(const std::string& path, const OpenOptions& options);

// Bytes bound as a BLOB (copied by SQLite): any content, embedded NULs included, never
// interpreted as UTF-8. Read back with Stmt::Bytes.
struct Blob {
  std::string_view bytes;
};

// A bound parameter: integers (uint64_t must be cast explicitly), text or a Blob (both copied
// by SQLite).
using Param = std::variant<int64_t, std::string_view, Blob>;

// A prepared statement; move-only.
class Stmt {
 public:
  static faas::Result<Stmt> Prepare(sqlite3* db, const char* sql,
                                    std::initializer_list<Param> params = {});
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  // Resets the statement and binds new parameters (a statement prepared once, run many times).
  faas::Status Rebind(std::initializer_list<Param> params);
  // Rebind without copying text and blobs: SQLite reads them where they are, so they must stay
  // alive and unchanged until the next Rebind or the statement's end. For a batch insert whose
  // rows outlive the statement (one copy and one free fewer per column and row).
  faas::Status RebindBorrowed(std::initializer_list<Param> params);
  // Resets the statement, keeping its bindings, for BindBorrowedAt.
  void Reset();
  // Binds `params` to the parameters from `first` (1-based) on, borrowing text and blobs as
  // RebindBorrowed does: one row's values of a multi-row INSERT at a time.
  faas::Status BindBorrowedAt(int first, std::initializer_list<Param> params);
  // Advances one row: true when a row is ready, false when the statement is done.
  faas::Result<bool> Step();
  // Steps to completion, ignoring rows.
  faas::Status Run();
  int64_t Int(int col) const;
  std::string Text(int col) const;
  // The column's bytes exactly (a BLOB, or TEXT as stored); "" for NULL.
  std::string Bytes(int col) const;
  // True when the column is NULL.
  bool IsNull(int col) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  // `bytes`: SQLITE_TRANSIENT (copy text and blobs) or SQLITE_STATIC (borrow them).
  faas::Status Bind(std::initializer_list<Param> params,
                    sqlite3_destructor_type bytes = SQLITE_TRANSIENT, int first = 1);
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Steps `s` to its end and returns read(s) of every row, in order; `read` returns a
// faas::Result<T>. The first failure, of a step or a read, is returned instead.
template <typename T, typename Read>
faas::Result<std::vector<T>> ReadAll(Stmt& s, Read read) {
  std::vector<T> out;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return out;
    }
    FAAS_ASSIGN_OR_RETURN(T value, read(s));
    out.push_back(std::move(value));
  }
}

// BEGIN IMMEDIATE ... COMMIT; rolls back in the destructor unless committed. Move-only.
class Transaction {
 public:
  static faas::Result<Transaction> Begin(sqlite3* db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  faas::Status Commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;  // null once committed or moved from
};

}  // namespace faas::store::sql
