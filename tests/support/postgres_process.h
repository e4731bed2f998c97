// Test support: a throwaway PostgreSQL 15 server in its own temp dir, reachable only through a
// unix socket in that dir, stopped by PID. initdb and postgres refuse to run as root, so as root
// they run as the `postgres` user the Debian package creates.
//
//   PostgresProcess pg;
//   FAAS_START_POSTGRES_OR_SKIP(pg, "t1");  // initdb once, then postgres; waits until ready
//   ... pg.Url("t1") ...  // "postgresql:///t1?host=<dir>/sock&user=postgres"
//   pg.Stop();            // fast shutdown; Start() again keeps the data
//
// Not thread-safe; one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "subprocess.h"

namespace faas::testing {

class PostgresProcess {
 public:
  PostgresProcess();   // a fresh temp dir; no server yet
  ~PostgresProcess();  // Stop()s a running server; removes the dir
  PostgresProcess(const PostgresProcess&) = delete;
  PostgresProcess& operator=(const PostgresProcess&) = delete;

  // "" when a server can be started here; otherwise why not (binaries or the postgres user
  // missing), for GTEST_SKIP.
  static std::string Unavailable();
  // The folder with initdb, postgres and psql (/usr/lib/postgresql/15/bin).
  static std::string BinDir();

  // Runs initdb the first time, then starts postgres and waits (up to 60 s) until it accepts
  // connections. False with `error` set (the server's log included) on failure.
  bool Start(std::string* error = nullptr);
  // SIGINT (fast shutdown: clients are disconnected) and wait; SIGKILL at the deadline.
  // Idempotent.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool Running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // A libpq URI for database `db` over the unix socket.
  std::string Url(const std::string& db = "postgres") const;
  // Runs `sql` with psql on `db` (stops at the first error); `out` gets the unaligned tuples.
  bool Sql(const std::string& db, const std::string& sql, std::string* out = nullptr,
           std::string* error = nullptr) const;
  bool CreateDatabase(const std::string& name, std::string* error = nullptr) const;
  std::string Logs() const;  // the server's log file

 private:
  TempDir tmp_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string log_path_;
  bool initialised_ = false;
  pid_t pid_ = -1;
};

}  // namespace faas::testing

// Starts `pg` (a PostgresProcess, not yet started) and creates the empty database `db` in it,
// in a test body or SetUp(): skips the test with the reason (GTEST_SKIP) where no server can be
// started here, fails it (ASSERT_TRUE, with the error) where one does not start; in both cases
// the function it stands in returns there. The caller includes <gtest/gtest.h>.
#define FAAS_START_POSTGRES_OR_SKIP(pg, db)                                        \
  do {                                                                             \
    if (std::string faas_pg_why = ::faas::testing::PostgresProcess::Unavailable(); \
        !faas_pg_why.empty()) {                                                    \
      GTEST_SKIP() << faas_pg_why;                                                 \
    }                                                                              \
    std::string faas_pg_error;                                                     \
    ASSERT_TRUE((pg).Start(&faas_pg_error)) << faas_pg_error;                      \
    ASSERT_TRUE((pg).CreateDatabase((db), &faas_pg_error)) << faas_pg_error;       \
  } while (false)
