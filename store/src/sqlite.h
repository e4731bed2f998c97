// Private: thin RAII wrappers over the SQLite C API that turn result codes into Status.
// Statements take bound parameters only; SQL text is always a constant.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include <sqlite3.h>

#include "faas/base/status.h"

namespace faas::store::sql {

// Maps an SQLite result code to a Status carrying sqlite3_errmsg: BUSY/LOCKED -> Unavailable,
// FULL -> ResourceExhausted, host problems (I/O, permissions, corruption) -> FailedPrecondition,
// anything else -> Internal.
faas::Status Error(sqlite3* db, int rc, std::string_view what);

// Runs constant SQL (no parameters, rows ignored).
faas::Status Exec(sqlite3* db, const char* sql);

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
  faas::Status Bind(std::initializer_list<Param> params);
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

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
