// What only the PostgreSQL backend has to get right: several processes (here: several
// registries, each with its own connection) deploying at once, schema migrations that race or
// meet a newer schema, the node-local artifact cache, and a server that goes away and comes
// back. The shared behaviours are in registry_test.cc, routes_test.cc and keys_test.cc.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/hash.h"
#include "faas/store/registry.h"

#include "integration/registry/backend_fixture.h"

namespace faas::store {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class PgRegistryTest : public testing::RegistryBackendTest {
 protected:
  std::string Query(const std::string& sql) {
    std::string out;
    std::string error;
    EXPECT_TRUE(pg_->Sql(db_, sql, &out, &error)) << error;
    while (!out.empty() && out.back() == '\n') {
      out.pop_back();
    }
    return out;
  }
};

TEST_P(PgRegistryTest, ConcurrentDeploysFromSeparateConnectionsGetDistinctNumbers) {
  constexpr std::size_t kGateways = 4;
  constexpr std::size_t kDeploysEach = 6;
  std::vector<std::unique_ptr<faas::testing::TempDir>> dirs;
  std::vector<std::unique_ptr<Registry>> gateways;
  for (std::size_t g = 0; g < kGateways; ++g) {
    dirs.push_back(std::make_unique<faas::testing::TempDir>());
    gateways.push_back(OpenAnother(dirs.back()->path()));
    ASSERT_NE(gateways.back(), nullptr);
  }
  std::vector<std::vector<uint32_t>> got(kGateways);
  std::vector<std::vector<uint32_t>> uids(kGateways);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (std::size_t g = 0; g < kGateways; ++g) {
    threads.emplace_back([&, g] {
      Registry& reg = *gateways[g];
      ready.fetch_add(1);
      while (ready.load() < static_cast<int>(kGateways)) {
        std::this_thread::yield();  // start together, to make the deploys overlap
      }
      for (std::size_t i = 0; i < kDeploysEach; ++i) {
        Result<std::string> sha =
            reg.PutArtifact("lib-" + std::to_string(g) + "-" + std::to_string(i));
        ASSERT_TRUE(sha.ok()) << sha.status().ToString();
        Result<DeployResult> d = reg.CreateVersion("shared", *sha, {});
        ASSERT_TRUE(d.ok()) << d.status().ToString();
        EXPECT_FALSE(d->unchanged);
        got[g].push_back(d->version.version);
        Result<uint32_t> uid = reg.ReserveUid("fn-" + std::to_string(g) + "-" + std::to_string(i));
        ASSERT_TRUE(uid.ok()) << uid.status().ToString();
        uids[g].push_back(*uid);
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  std::set<uint32_t> numbers;
  std::set<uint32_t> all_uids;
  for (std::size_t g = 0; g < kGateways; ++g) {
    numbers.insert(got[g].begin(), got[g].end());
    all_uids.insert(uids[g].begin(), uids[g].end());
  }
  // Every deploy got its own number, and together they are exactly 1..N.
  ASSERT_EQ(numbers.size(), kGateways * kDeploysEach);
  EXPECT_EQ(*numbers.begin(), 1u);
  EXPECT_EQ(*numbers.rbegin(), static_cast<uint32_t>(kGateways * kDeploysEach));
  EXPECT_EQ(all_uids.size(), kGateways * kDeploysEach);
  Result<std::vector<Version>> versions = reg_->ListVersions("shared");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  EXPECT_EQ(versions->size(), kGateways * kDeploysEach);
}

TEST_P(PgRegistryTest, ProcessesOpeningAtOnceMigrateOnce) {
  const std::string fresh = db_ + "_fresh";
  std::string error;
  ASSERT_TRUE(pg_->CreateDatabase(fresh, &error)) << error;
  constexpr std::size_t kOpeners = 4;
  std::vector<std::unique_ptr<faas::testing::TempDir>> dirs;
  for (std::size_t i = 0; i < kOpeners; ++i) {
    dirs.push_back(std::make_unique<faas::testing::TempDir>());
  }
  std::vector<Status> results(kOpeners);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < static_cast<int>(kOpeners)) {
        std::this_thread::yield();
      }
      results[i] = OpenRegistry(pg_->Url(fresh), dirs[i]->path()).status();
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (const Status& s : results) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  std::string out;
  // Each migration applied once, whatever their number (branches append their own).
  ASSERT_TRUE(pg_->Sql(fresh,
                       "SELECT count(*) = max(version) AND count(DISTINCT version) = count(*) "
                       "FROM schema_migrations",
                       &out, &error))
      << error;
  EXPECT_EQ(out, "t\n");
}

TEST_P(PgRegistryTest, ASchemaNewerThanTheBinaryIsRefused) {
  Query("INSERT INTO schema_migrations (version, applied_unix_ms) VALUES (999, 0)");
  reg_.reset();
  Result<std::unique_ptr<Registry>> r = OpenRegistry(store_, dir_.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              HasSubstr("schema is version 999, newer than this faasd knows ("));
}

TEST_P(PgRegistryTest, ADamagedCachedCopyIsFetchedAgain) {
  Result<std::string> sha = reg_->PutArtifact("good-bytes");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  const std::string cached = dir_.path() + "/artifact-cache/" + *sha + ".so";
  ASSERT_EQ(faas::testing::ReadFileOrEmpty(cached), "good-bytes");
  ::chmod(cached.c_str(), 0644);
  faas::testing::WriteFileOrDie(cached, "flipped-bits");
  Result<std::string> path = reg_->FetchArtifact(*sha);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, cached);
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*path), "good-bytes");
}

// The cache is written without fsync (Durability::kCache): after a host crash a node may find
// its copy empty or cut short. A registry opened over that cache, as the restarted node's is,
// fetches the bytes again instead of handing the file out.
TEST_P(PgRegistryTest, ACachedCopyACrashLeftShortIsFetchedAgainAfterARestart) {
  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  Result<std::string> sha = reg_->PutArtifact("library-bytes-before-the-crash");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  Result<std::string> path = node->CacheArtifact(*sha, "library-bytes-before-the-crash");
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  node.reset();
  for (const std::string& left : {std::string(), std::string("library-bytes")}) {
    ::chmod(path->c_str(), 0644);
    faas::testing::WriteFileOrDie(*path, left);
    std::unique_ptr<Registry> restarted = OpenAnother(node_dir.path());
    ASSERT_NE(restarted, nullptr);
    Result<std::string> fetched = restarted->FetchArtifact(*sha);
    ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
    EXPECT_EQ(*fetched, *path);
    EXPECT_EQ(faas::testing::ReadFileOrEmpty(*fetched), "library-bytes-before-the-crash")
        << "left by the crash: \"" << left << "\"";
  }
}

TEST_P(PgRegistryTest, ACorruptedRowNeverReachesAnotherNode) {
  Result<std::string> sha = reg_->PutArtifact("library-v1");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  ASSERT_TRUE(reg_->CreateVersion("fn", *sha, {}).ok());
  Query("UPDATE artifacts SET bytes = 'evil'::bytea WHERE sha256 = '" + *sha + "'");

  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  Result<std::string> fetched = node->FetchArtifact(*sha);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), StatusCode::kInternal);
  EXPECT_THAT(
      fetched.status().message(),
      HasSubstr("artifact " + *sha + " is corrupt: the stored bytes hash to " + Sha256Hex("evil")));
  // ArtifactPath (what the scheduler loads) names a file that does not exist: a load fails.
  const std::string path = node->ArtifactPath(*sha);
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << path << " exists";
}

// The bytes are compressed with lz4 (docs/design/0030, "Rollout"): PostgreSQL's default pglz
// spent ~25 ms of a 1 MiB deploy trying to compress it. A server built without lz4 keeps pglz.
TEST_P(PgRegistryTest, AnArtifactIsStoredWithLz4) {
  if (Query("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND "
            "'lz4' = ANY(enumvals)") != "1") {
    GTEST_SKIP() << "this PostgreSQL was built without lz4";
  }
  // Compressible and large enough (> 2 kB) to be compressed at all.
  std::string bytes;
  for (int i = 0; bytes.size() < (64 << 10); ++i) {
    bytes += "symbol_" + std::to_string(i % 97) + ";";
  }
  Result<std::string> sha = reg_->PutArtifact(bytes);
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  EXPECT_EQ(
      Query("SELECT pg_column_compression(bytes) FROM artifacts WHERE sha256 = '" + *sha + "'"),
      "lz4");
  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  Result<std::string> fetched = node->FetchArtifact(*sha);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*fetched), bytes);
}

// A deploy through a gateway sends the library with each node's Prepare (docs/design/0033): the
// node caches the bytes it was given without reading the artifacts table, which may not even hold
// them yet (the gateway stores them meanwhile). Shown with a digest the store does not have and
// with a row that is corrupt: both would fail a fetch.
TEST_P(PgRegistryTest, ANodeCachesTheBytesItIsGivenWithoutTheStore) {
  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  const std::string unstored = Sha256Hex("library-not-stored-yet");
  ASSERT_EQ(node->FetchArtifact(unstored).status().code(), StatusCode::kNotFound);
  Result<std::string> path = node->CacheArtifact(unstored, "library-not-stored-yet");
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, node_dir.path() + "/artifact-cache/" + unstored + ".so");
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*path), "library-not-stored-yet");

  Result<std::string> sha = reg_->PutArtifact("library-v1");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  Query("UPDATE artifacts SET bytes = 'evil'::bytea WHERE sha256 = '" + *sha + "'");
  path = node->CacheArtifact(*sha, "library-v1");
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(*path), "library-v1");
  // And what it cached is what later fetches (a call, the NOTIFY prefetch) verify and use.
  Result<std::string> fetched = node->FetchArtifact(*sha);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(*fetched, *path);
}

// Bytes that do not hash to the digest they were sent with are refused, and nothing is written;
// a good copy cached before is neither replaced nor handed out in their place.
TEST_P(PgRegistryTest, BytesThatDoNotMatchTheirDigestAreRefused) {
  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  const std::string sha = Sha256Hex("library-good");
  const std::string path = node_dir.path() + "/artifact-cache/" + sha + ".so";
  Result<std::string> refused = node->CacheArtifact(sha, "library-gooD");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInternal);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("artifact " + sha + " is corrupt: the bytes given hash to " +
                        Sha256Hex("library-gooD")));
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << path << " exists";

  ASSERT_TRUE(node->CacheArtifact(sha, "library-good").ok());
  refused = node->CacheArtifact(sha, "evil");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("is corrupt"));
  EXPECT_EQ(faas::testing::ReadFileOrEmpty(path), "library-good");
}

// A deploy's push and its NOTIFY prefetch ask a node for the same library at once: both get the
// verified copy, and a corrupted row is refused to every one of them.
TEST_P(PgRegistryTest, ConcurrentFetchesOfOneDigestAllVerify) {
  Result<std::string> good = reg_->PutArtifact("library-good");
  Result<std::string> bad = reg_->PutArtifact("library-bad");
  ASSERT_TRUE(good.ok() && bad.ok());
  Query("UPDATE artifacts SET bytes = 'evil'::bytea WHERE sha256 = '" + *bad + "'");
  faas::testing::TempDir node_dir;
  std::unique_ptr<Registry> node = OpenAnother(node_dir.path());
  ASSERT_NE(node, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> good_ok{0};
  std::atomic<int> bad_refused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Result<std::string> g = node->FetchArtifact(*good);
      if (g.ok() && faas::testing::ReadFileOrEmpty(*g) == "library-good") {
        ++good_ok;
      }
      Result<std::string> b = node->FetchArtifact(*bad);
      if (!b.ok() && b.status().message().find("is corrupt") != std::string::npos) {
        ++bad_refused;
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(good_ok.load(), 8);
  EXPECT_EQ(bad_refused.load(), 8);
  struct stat st {};
  const std::string bad_path = node_dir.path() + "/artifact-cache/" + *bad + ".so";
  EXPECT_NE(::stat(bad_path.c_str(), &st), 0) << bad_path << " exists";
}

TEST_P(PgRegistryTest, AnArtifactPutButNeverDeployedIsKeptForTheGracePeriod) {
  // Another gateway may be between its PutArtifact and CreateVersion: a Delete elsewhere must
  // not collect the bytes it is about to deploy.
  Result<std::string> shared = reg_->PutArtifact("shared-lib");
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(reg_->CreateVersion("one", *shared, {}).ok());
  ASSERT_TRUE(reg_->Delete("one").ok());
  EXPECT_EQ(Query("SELECT count(*) FROM artifacts WHERE sha256 = '" + *shared + "'"), "1");
  EXPECT_TRUE(reg_->CreateVersion("two", *shared, {}).ok());
  // Past the grace period an unused artifact goes, with the cached copy.
  ASSERT_TRUE(reg_->Delete("two").ok());
  Query("UPDATE artifacts SET put_unix_ms = 0");
  Result<std::string> other = reg_->PutArtifact("other-lib");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(reg_->CreateVersion("four", *other, {}).ok());
  Query("UPDATE artifacts SET put_unix_ms = 0");
  ASSERT_TRUE(reg_->Delete("four").ok());
  EXPECT_EQ(Query("SELECT count(*) FROM artifacts WHERE sha256 = '" + *other + "'"), "0");
  Reopen();  // Open collects the rest (the shared library, unused since "two" went)
  EXPECT_EQ(Query("SELECT count(*) FROM artifacts"), "0");
  struct stat st {};
  EXPECT_NE(::stat((dir_.path() + "/artifact-cache/" + *shared + ".so").c_str(), &st), 0);
}

FAAS_REGISTRY_BACKENDS_ONLY_POSTGRES(PgRegistryTest);

// A server of its own: this test stops it.
TEST(PgRegistryOutageTest, AStoppedServerGivesUnavailableAndTheRegistryReconnects) {
  if (std::string why = faas::testing::PostgresProcess::Unavailable(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  faas::testing::PostgresProcess pg;
  std::string error;
  ASSERT_TRUE(pg.Start(&error)) << error;
  faas::testing::TempDir dir;
  Result<std::unique_ptr<Registry>> opened = OpenRegistry(pg.Url(), dir.path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Registry& reg = **opened;
  Result<std::string> sha = reg.PutArtifact("lib");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  ASSERT_TRUE(reg.CreateVersion("fn", *sha, {}).ok());

  pg.Stop();
  for (int i = 0; i < 3; ++i) {  // the first call finds the connection dead, the next ones
                                 // cannot reconnect: all clean errors
    Result<std::vector<FunctionRecord>> list = reg.ListFunctions();
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.status().code(), StatusCode::kUnavailable) << list.status().ToString();
    EXPECT_THAT(list.status().message(), StartsWith("postgresql"));
  }
  EXPECT_EQ(reg.CreateVersion("fn", *sha, {}).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(reg.AddRoute({"GET", "/x", "", "fn", 0}).status().code(), StatusCode::kUnavailable);
  // A verified cached copy still serves loads while the store is down.
  Result<std::string> cached = reg.FetchArtifact(*sha);
  EXPECT_TRUE(cached.ok()) << cached.status().ToString();

  ASSERT_TRUE(pg.Start(&error)) << error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Result<std::vector<FunctionRecord>> list = reg.ListFunctions();
  while (!list.ok() && std::chrono::steady_clock::now() < deadline) {
    EXPECT_EQ(list.status().code(), StatusCode::kUnavailable) << list.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval
    list = reg.ListFunctions();
  }
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "fn");
}

TEST(OpenRegistryTest, PicksTheBackendFromTheStoreString) {
  faas::testing::TempDir dir;
  Result<std::unique_ptr<Registry>> bad = OpenRegistry("mysql://db/faas", dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("names no known backend"));

  Result<std::unique_ptr<Registry>> sqlite = OpenRegistry("sqlite:" + dir.path() + "/s", "/x");
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  struct stat st {};
  EXPECT_EQ(::stat((dir.path() + "/s/faas.db").c_str(), &st), 0);
  Result<std::unique_ptr<Registry>> plain = OpenRegistry(dir.path() + "/p", "/x");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(::stat((dir.path() + "/p/faas.db").c_str(), &st), 0);

  // Nothing listens on this socket folder: Unavailable, not a crash or a hang.
  Result<std::unique_ptr<Registry>> down =
      OpenRegistry("postgresql:///faas?host=" + dir.path() + "&user=postgres", dir.path());
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), StartsWith("postgresql connect: "));
}

}  // namespace
}  // namespace faas::store
