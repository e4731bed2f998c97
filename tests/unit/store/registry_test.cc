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

TEST_F(RegistryTest, NumbersVersionsFromOneAndMovesLatest) {
  DeployResult d1 = Deploy("resize", "lib-v1");
  EXPECT_EQ(d1.version.version, 1u);
  EXPECT_FALSE(d1.unchanged);
  EXPECT_EQ(d1.version.function, "resize");
  EXPECT_EQ(d1.version.artifact_sha256, Sha256Hex("lib-v1"));
  EXPECT_EQ(d1.version.size_bytes, 6u);
  EXPECT_EQ(d1.version.content_hash,
            Sha256Hex(Sha256Hex("lib-v1") + "\n" + ConfigToJson(FunctionConfig{})));
  EXPECT_GT(d1.version.created_unix_ms, 0);

  FunctionConfig bigger;
  bigger.memory_mb = 256;
  DeployResult d2 = Deploy("resize", "lib-v1", bigger);  // same library, new config
  EXPECT_EQ(d2.version.version, 2u);
  DeployResult d3 = Deploy("resize", "lib-v3", bigger);
  EXPECT_EQ(d3.version.version, 3u);

  Result<Version> latest = reg_->GetLatest("resize");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 3u);
  EXPECT_EQ(latest->config.memory_mb, 256u);
  EXPECT_THAT(VersionNumbers("resize"), ElementsAre(1u, 2u, 3u));

  Result<FunctionRecord> rec = reg_->GetFunction("resize");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->latest_version, 3u);
  EXPECT_EQ(rec->version_count, 3u);
  EXPECT_EQ(rec->latest.artifact_sha256, Sha256Hex("lib-v3"));

  Result<Version> v1 = reg_->GetVersion("resize", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->config, FunctionConfig{});
}

TEST_F(RegistryTest, UnchangedRedeployCreatesNoVersion) {
  FunctionConfig cfg;
  cfg.env = {{"MODE", "fast"}};
  Deploy("echo", "lib", cfg);
  DeployResult again = Deploy("echo", "lib", cfg);
  EXPECT_TRUE(again.unchanged);
  EXPECT_EQ(again.version.version, 1u);
  EXPECT_THAT(VersionNumbers("echo"), ElementsAre(1u));
}

TEST_F(RegistryTest, RollbackMovesLatestAndNumbersAreNeverReused) {
  Deploy("fn", "a");
  Deploy("fn", "b");
  Deploy("fn", "c");
  Result<Version> back = reg_->Rollback("fn", 1);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->version, 1u);
  EXPECT_EQ(reg_->GetLatest("fn")->artifact_sha256, Sha256Hex("a"));
  EXPECT_EQ(reg_->GetFunction("fn")->version_count, 3u);

  EXPECT_TRUE(Deploy("fn", "a").unchanged);          // equals latest (v1) again
  EXPECT_EQ(Deploy("fn", "c").version.version, 4u);  // equals v3, but latest was v1

  Result<Version> missing = reg_->Rollback("fn", 99);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "function \"fn\" has no version 99");
  EXPECT_EQ(reg_->GetLatest("fn")->version, 4u);
}

TEST_F(RegistryTest, DeleteThenRedeployStartsAgainAtOne) {
  Deploy("fn", "a");
  Deploy("fn", "b");
  ASSERT_TRUE(reg_->Delete("fn").ok());
  Result<FunctionRecord> gone = reg_->GetFunction("fn");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "function \"fn\" does not exist");
  EXPECT_EQ(reg_->ListVersions("fn").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->GetVersion("fn", 1).status().message(), "function \"fn\" does not exist");
  EXPECT_EQ(reg_->Delete("fn").code(), StatusCode::kNotFound);

  EXPECT_EQ(Deploy("fn", "c").version.version, 1u);
  EXPECT_THAT(VersionNumbers("fn"), ElementsAre(1u));
}

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

TEST_F(RegistryTest, ListsFunctionsSortedByName) {
  for (const char* name : {"zeta", "alpha", "mid-1", "mid"}) {
    Deploy(name, name);
  }
  Result<std::vector<FunctionRecord>> all = reg_->ListFunctions();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> names;
  for (const FunctionRecord& r : *all) {
    names.push_back(r.name);
  }
  EXPECT_THAT(names, ElementsAre("alpha", "mid", "mid-1", "zeta"));
}

TEST_F(RegistryTest, CreateVersionValidatesInputs) {
  FunctionConfig bad;
  bad.memory_mb = 1;
  Result<DeployResult> r = reg_->CreateVersion("Bad/Name", "nothex", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("name \"Bad/Name\" must match"));
  EXPECT_THAT(r.status().message(), HasSubstr("memory_mb: 1 MiB is below the 16 MiB minimum"));
  EXPECT_THAT(r.status().message(), HasSubstr("is not a sha256 hex digest"));

  Result<DeployResult> missing = reg_->CreateVersion("fn", Sha256Hex("not stored"), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(reg_->GetFunction("fn").ok());

  EXPECT_EQ(reg_->GetFunction("../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, RejectsOversizedArtifact) {
  Result<std::string> r = reg_->PutArtifact(std::string((64u << 20) + 1, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(RegistryTest, ConcurrentDeploysAreSerialised) {
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 1; i <= 11; ++i) {  // deletes after 3, 6 and 9, then deploys 10 and 11
        std::string bytes = "lib-" + std::to_string(i);
        Result<std::string> sha = reg_->PutArtifact(bytes);
        ASSERT_TRUE(sha.ok());
        ASSERT_TRUE(reg_->CreateVersion("shared", *sha, {}).ok());
        ASSERT_TRUE(reg_->CreateVersion("own-" + std::to_string(t), *sha, {}).ok());
        if (i % 3 == 0) {
          ASSERT_TRUE(reg_->Delete("own-" + std::to_string(t)).ok());
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  std::vector<uint32_t> numbers = VersionNumbers("shared");
  ASSERT_FALSE(numbers.empty());
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    EXPECT_EQ(numbers[i], i + 1);
  }
  for (int t = 0; t < 4; ++t) {
    EXPECT_THAT(VersionNumbers("own-" + std::to_string(t)), ElementsAre(1u, 2u));
  }
}

TEST_F(RegistryTest, EveryFunctionGetsAUidOfItsOwnThatOutlivesADelete) {
  DeployResult a = Deploy("alpha", "lib-a");
  DeployResult b = Deploy("beta", "lib-b");
  EXPECT_EQ(a.version.uid, kFunctionUidBase);
  EXPECT_EQ(b.version.uid, kFunctionUidBase + 1);
  // A new version, a read back and a reopen keep it.
  EXPECT_EQ(Deploy("alpha", "lib-a2").version.uid, a.version.uid);
  Reopen();
  Result<FunctionRecord> got = reg_->GetFunction("beta");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->latest.uid, b.version.uid);
  // A deleted name keeps its uid, and its uid is never given to another name.
  ASSERT_TRUE(reg_->Delete("alpha").ok());
  EXPECT_EQ(Deploy("gamma", "lib-c").version.uid, kFunctionUidBase + 2);
  EXPECT_EQ(Deploy("alpha", "lib-a3").version.uid, a.version.uid);
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

TEST_F(RegistryTest, AUidReservedBeforeTheFirstVersionIsTheOneItRunsAs) {
  Result<uint32_t> uid = reg_->ReserveUid("early");
  ASSERT_TRUE(uid.ok()) << uid.status().ToString();
  EXPECT_EQ(*reg_->ReserveUid("early"), *uid);
  EXPECT_EQ(Deploy("early", "lib-e").version.uid, *uid);
  EXPECT_EQ(reg_->ReserveUid("Bad Name").status().code(), StatusCode::kInvalidArgument);
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
