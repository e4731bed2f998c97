// sql::Open: the one open sequence of the registry, the queue and the ledger.
#include "sqlite.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace faas::store::sql {
namespace {

using testing::TempDir;

// The first column of the first row of `sql`, or "" (and a failure) when there is none.
std::string PragmaText(sqlite3* db, const char* sql) {
  auto st = Stmt::Prepare(db, sql);
  if (!st.ok()) {
    ADD_FAILURE() << sql << ": " << st.status().message();
    return "";
  }
  auto row = st->Step();
  if (!row.ok() || !*row) {
    ADD_FAILURE() << sql << ": no row";
    return "";
  }
  return st->Text(0);
}

TEST(SqlOpen, DefaultsAreWalNormalNoForeignKeysAndABusyTimeout) {
  TempDir dir;
  std::string path = dir.Path() + "/a.db";
  auto db = Open(path, {});
  ASSERT_TRUE(db.ok()) << db.status().message();
  EXPECT_EQ(PragmaText(*db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(PragmaText(*db, "PRAGMA synchronous"), "1");  // NORMAL
  EXPECT_EQ(PragmaText(*db, "PRAGMA foreign_keys"), "0");
  EXPECT_EQ(PragmaText(*db, "PRAGMA busy_timeout"), "5000");
  EXPECT_EQ(sqlite3_close(*db), SQLITE_OK);
  EXPECT_TRUE(std::ifstream(path).good());  // created
}

TEST(SqlOpen, AppliesTheCallersPragmas) {
  TempDir dir;
  auto db = Open(dir.Path() + "/b.db", {.synchronous = "FULL", .foreign_keys = true});
  ASSERT_TRUE(db.ok()) << db.status().message();
  EXPECT_EQ(PragmaText(*db, "PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(PragmaText(*db, "PRAGMA foreign_keys"), "1");
  EXPECT_EQ(sqlite3_close(*db), SQLITE_OK);
}

TEST(SqlOpen, AMissingDirectoryIsAHostProblemNamingThePath) {
  TempDir dir;
  std::string path = dir.Path() + "/no/such/dir/c.db";
  auto db = Open(path, {});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(db.status().message().rfind("sqlite open " + path + ": ", 0), 0U)
      << db.status().message();
}

TEST(SqlOpen, AFileThatIsNotADatabaseFails) {
  TempDir dir;
  std::string path = dir.Path() + "/d.db";
  std::ofstream(path) << std::string(4096, 'x');
  auto db = Open(path, {});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kFailedPrecondition) << db.status().message();
}

}  // namespace
}  // namespace faas::store::sql
