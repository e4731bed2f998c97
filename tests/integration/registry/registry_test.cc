// The registry behaviours both backends share (versions, unchanged deploys, rollback, delete,
// uids, artifacts), run on SQLite and on PostgreSQL (backend_fixture.h).
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

#include "faas/store/hash.h"

#include "integration/registry/backend_fixture.h"

namespace faas::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RegistryTest : public testing::RegistryBackendTest {
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

TEST_P(RegistryTest, NumbersVersionsFromOneAndMovesLatest) {
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

TEST_P(RegistryTest, UnchangedRedeployCreatesNoVersion) {
  FunctionConfig cfg;
  cfg.env = {{"MODE", "fast"}};
  Deploy("echo", "lib", cfg);
  DeployResult again = Deploy("echo", "lib", cfg);
  EXPECT_TRUE(again.unchanged);
  EXPECT_EQ(again.version.version, 1u);
  EXPECT_THAT(VersionNumbers("echo"), ElementsAre(1u));
}

TEST_P(RegistryTest, RollbackMovesLatestAndNumbersAreNeverReused) {
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

TEST_P(RegistryTest, DeleteThenRedeployStartsAgainAtOne) {
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

TEST_P(RegistryTest, ListsFunctionsSortedByName) {
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

TEST_P(RegistryTest, CreateVersionValidatesInputs) {
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

TEST_P(RegistryTest, RejectsOversizedArtifact) {
  Result<std::string> r = reg_->PutArtifact(std::string((64u << 20) + 1, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST_P(RegistryTest, ConcurrentDeploysAreSerialised) {
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

TEST_P(RegistryTest, EveryFunctionGetsAUidOfItsOwnThatOutlivesADelete) {
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

TEST_P(RegistryTest, AUidReservedBeforeTheFirstVersionIsTheOneItRunsAs) {
  Result<uint32_t> uid = reg_->ReserveUid("early");
  ASSERT_TRUE(uid.ok()) << uid.status().ToString();
  EXPECT_EQ(*reg_->ReserveUid("early"), *uid);
  EXPECT_EQ(Deploy("early", "lib-e").version.uid, *uid);
  EXPECT_EQ(reg_->ReserveUid("Bad Name").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(RegistryTest, ReopenKeepsEverything) {
  Deploy("alpha", "a1");
  FunctionConfig cfg;
  cfg.timeout = std::chrono::seconds(3);
  Deploy("alpha", "a2", cfg);
  ASSERT_TRUE(reg_->Rollback("alpha", 1).ok());
  Deploy("beta", "b1");

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
  Result<std::string> a1 = reg_->FetchArtifact(Sha256Hex("a1"));
  ASSERT_TRUE(a1.ok()) << a1.status().ToString();
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*a1), "a1");
}

TEST_P(RegistryTest, FetchArtifactReturnsTheVerifiedLibraryAtItsAbsolutePath) {
  std::string sha = Put("shared-lib");
  EXPECT_EQ(Put("shared-lib"), sha);  // idempotent
  Result<std::string> path = reg_->FetchArtifact(sha);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, reg_->ArtifactPath(sha));
  EXPECT_EQ(path->front(), '/');
  EXPECT_TRUE(path->ends_with("/" + sha + ".so"));
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*path), "shared-lib");

  Result<std::string> missing = reg_->FetchArtifact(Sha256Hex("never put"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "artifact " + Sha256Hex("never put") + " is not stored");
}

TEST_P(RegistryTest, ACorruptedArtifactIsNeverReturned) {
  DeployResult d = Deploy("fn", "the-real-library");
  const std::string sha = d.version.artifact_sha256;
  CorruptArtifact(sha);
  Result<std::string> path = reg_->FetchArtifact(sha);
  ASSERT_FALSE(path.ok()) << "returned " << *path << " holding "
                          << faas::testing::ReadFileOrEmpty(*path);
  EXPECT_EQ(path.status().code(), StatusCode::kInternal);
  EXPECT_THAT(path.status().message(), HasSubstr("artifact " + sha + " is corrupt"));
}

FAAS_REGISTRY_BACKENDS(RegistryTest);

}  // namespace
}  // namespace faas::store
