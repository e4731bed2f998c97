// The registry suite's fixture, parameterised over the backends OpenRegistry picks: every test
// that uses it runs once on SQLite and once on a real PostgreSQL server (one server for the
// whole binary, a fresh database per test). Without PostgreSQL 15 the postgres instances skip
// with the reason.
//
//   class FooTest : public faas::store::testing::RegistryBackendTest {};
//   TEST_P(FooTest, Bar) { ASSERT_TRUE(reg_->ListRoutes().ok()); }
//   FAAS_REGISTRY_BACKENDS(FooTest);
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "faas/store/registry.h"

#include "postgres_process.h"
#include "subprocess.h"

namespace faas::store::testing {

// The binary's PostgreSQL server, started on first use and stopped at exit. Null (with `why`)
// when it cannot run here.
inline faas::testing::PostgresProcess* SharedPostgres(std::string* why) {
  static std::string unavailable = faas::testing::PostgresProcess::Unavailable();
  static std::unique_ptr<faas::testing::PostgresProcess> pg;
  static std::string start_error;
  if (unavailable.empty() && pg == nullptr && start_error.empty()) {
    pg = std::make_unique<faas::testing::PostgresProcess>();
    if (!pg->Start(&start_error)) {
      pg.reset();
      start_error = start_error.empty() ? "postgres did not start" : start_error;
    }
  }
  *why = !unavailable.empty() ? unavailable : start_error;
  return pg.get();
}

class RegistryBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      std::string why;
      pg_ = SharedPostgres(&why);
      if (pg_ == nullptr) {
        // A missing server is a skip; a server that is installed but fails to start is a bug.
        if (!faas::testing::PostgresProcess::Unavailable().empty()) {
          GTEST_SKIP() << why;
        }
        FAIL() << why;
      }
      static int counter = 0;
      db_ = "t" + std::to_string(++counter);
      std::string error;
      ASSERT_TRUE(pg_->CreateDatabase(db_, &error)) << error;
      store_ = pg_->Url(db_);
    } else {
      store_ = "sqlite:";
    }
    Reopen();
  }

  // Closes the registry (if open) and opens the same store and data dir again.
  void Reopen() {
    reg_.reset();
    Result<std::unique_ptr<Registry>> r = OpenRegistry(store_, dir_.path());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reg_ = std::move(r).value();
  }

  // A second registry on the same store (another gateway's process), with its own data dir.
  std::unique_ptr<Registry> OpenAnother(const std::string& data_dir) {
    Result<std::unique_ptr<Registry>> r = OpenRegistry(store_, data_dir);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  bool IsPostgres() const { return GetParam() == "postgres"; }

  // Overwrites every copy of artifact `sha` this backend holds with other bytes: the file
  // (SQLite), or the table row and this node's cached file (PostgreSQL).
  void CorruptArtifact(const std::string& sha) {
    if (IsPostgres()) {
      std::string error;
      ASSERT_TRUE(pg_->Sql(
          db_, "UPDATE artifacts SET bytes = 'tampered'::bytea WHERE sha256 = '" + sha + "'",
          nullptr, &error))
          << error;
    }
    const std::string file =
        dir_.path() + (IsPostgres() ? "/artifact-cache/" : "/artifacts/") + sha + ".so";
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
      ::chmod(file.c_str(), 0644);
      faas::testing::WriteFileOrDie(file, "tampered");
    }
  }

  faas::testing::TempDir dir_;
  faas::testing::PostgresProcess* pg_ = nullptr;
  std::string db_;
  std::string store_;
  std::unique_ptr<Registry> reg_;
};

// Test names end in /sqlite or /postgres.
inline std::string BackendName(const ::testing::TestParamInfo<std::string>& param_info) {
  return param_info.param;
}

#define FAAS_REGISTRY_BACKENDS(suite)                                                \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("sqlite", "postgres"), \
                           ::faas::store::testing::BackendName)

// For the tests of what only PostgreSQL has.
#define FAAS_REGISTRY_BACKENDS_ONLY_POSTGRES(suite)                        \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("postgres"), \
                           ::faas::store::testing::BackendName)

}  // namespace faas::store::testing
