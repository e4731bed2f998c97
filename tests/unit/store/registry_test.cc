// The SQLite registry backend on its own: its files on disk (artifacts, temp files, the database
// itself). The behaviour both backends share is tested in tests/integration/registry/.
#include "faas/store/registry.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "faas/store/hash.h"

#include "unit/store/registry_fixture.h"

namespace faas::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RegistryTest : public testing::RegistryFixture {
 protected:
  std::string Put(std::string_view bytes) {
    Result<std::string> sha = reg_->PutArtifact(bytes);
    EXPECT_TRUE(sha.ok()) << sha.status().ToString();
    return sha.ok() ? *sha : "";
  }

  DeployResult Deploy(std::string_view name, std::string_view bytes,
                      const FunctionConfig& cfg = {}) {
    Result<DeployResult> d = reg_->CreateVersion(name, Put(bytes), cfg);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : DeployResult{};
  }

  std::set<std::string> ArtifactFiles() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.Path() + "/artifacts")) {
      out.insert(e.path().filename().string());
    }
    return out;
  }

  std::vector<uint32_t> VersionNumbers(std::string_view name) {
    std::vector<uint32_t> out;
    Result<std::vector<Version>> vs = reg_->ListVersions(name);
    EXPECT_TRUE(vs.ok()) << vs.status().ToString();
    for (const Version& v : vs.ok() ? *vs : std::vector<Version>{}) {
      out.push_back(v.version);
    }
    return out;
  }
};

TEST_F(RegistryTest, StoresArtifactsOnceReadOnlyAndCollectsThemAfterDelete) {
  std::string sha = Put("shared-lib");
  EXPECT_EQ(Put("shared-lib"), sha);
  EXPECT_EQ(ArtifactFiles(), std::set<std::string>{sha + ".so"});
  std::string path = reg_->ArtifactPath(sha);
  EXPECT_EQ(path, dir_.Path() + "/artifacts/" + sha + ".so");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "shared-lib");

  Deploy("one", "shared-lib");
  Deploy("two", "shared-lib");
  Deploy("two", "only-two");
  EXPECT_EQ(ArtifactFiles().size(), 2u);

  ASSERT_TRUE(reg_->Delete("two").ok());  // "only-two" goes; "shared-lib" is still used by one
  EXPECT_EQ(ArtifactFiles(), std::set<std::string>{sha + ".so"});
  ASSERT_TRUE(reg_->Delete("one").ok());
  EXPECT_TRUE(ArtifactFiles().empty());
}

TEST_F(RegistryTest, ReopenKeepsEverythingAndCleansLeftovers) {
  Deploy("alpha", "a1");
  FunctionConfig cfg;
  cfg.timeout = std::chrono::seconds(3);
  Deploy("alpha", "a2", cfg);
  ASSERT_TRUE(reg_->Rollback("alpha", 1).ok());
  Deploy("beta", "b1");
  std::string orphan = Put("never-deployed");
  std::string stale_tmp = dir_.Path() + "/artifacts/" + Sha256Hex("x") + ".so.tmp.123.0";
  std::ofstream(stale_tmp) << "partial";

  Reopen();

  Result<std::vector<FunctionRecord>> all = reg_->ListFunctions();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "alpha");
  EXPECT_EQ((*all)[0].latest_version, 1u);
  EXPECT_EQ((*all)[0].version_count, 2u);
  EXPECT_EQ((*all)[1].name, "beta");
  EXPECT_EQ(reg_->GetVersion("alpha", 2)->config.timeout, std::chrono::seconds(3));
  EXPECT_EQ(Deploy("alpha", "a3").version.version, 3u);

  std::set<std::string> files = ArtifactFiles();
  EXPECT_FALSE(files.contains(orphan + ".so"));
  EXPECT_FALSE(files.contains(std::filesystem::path(stale_tmp).filename().string()));
  EXPECT_TRUE(files.contains(Sha256Hex("a1") + ".so"));
  EXPECT_EQ(files.size(), 4u);  // a1 a2 a3 b1
}

TEST_F(RegistryTest, ArtifactPathsAreAbsoluteForARelativeDataDir) {
  // Workers start from /, so a path relative to the daemon's cwd (./run.sh's ./faas-data) would
  // name nothing for them.
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.Path().c_str()), 0);
  Result<std::unique_ptr<Registry>> reg = Registry::Open("./relative-data");
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  const std::string sha(64, 'a');
  EXPECT_EQ((*reg)->ArtifactPath(sha), dir_.Path() + "/relative-data/artifacts/" + sha + ".so");
}

TEST_F(RegistryTest, FunctionsFromBeforeUidsWereAllocatedGetOneWhenTheRegistryOpens) {
  Deploy("old", "lib-old");
  reg_.reset();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.Path() + "/faas.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DELETE FROM function_uids", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  Reopen();
  Result<FunctionRecord> got = reg_->GetFunction("old");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->latest.uid, kFunctionUidBase);
}

}  // namespace
}  // namespace faas::store
