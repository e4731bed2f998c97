// Registry API keys: creation, listing, revocation, validation, and that no secret is stored;
// on both backends (backend_fixture.h).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/hash.h"
#include "faas/store/registry.h"

#include "integration/registry/backend_fixture.h"

namespace faas::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;

class KeysTest : public testing::RegistryBackendTest {
 protected:
  std::pair<ApiKey, std::string> Create(std::string_view tenant,
                                        std::vector<std::string> functions = {}, double rate = 0,
                                        uint32_t burst = 0) {
    auto created = reg_->CreateKey(tenant, std::move(functions), rate, burst);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : std::pair<ApiKey, std::string>{};
  }

  std::vector<ApiKey> List() {
    Result<std::vector<ApiKey>> keys = reg_->ListKeys();
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    return keys.ok() ? *keys : std::vector<ApiKey>{};
  }

  // SQLite: every byte of faas.db and its WAL, which holds recent writes before a checkpoint.
  // PostgreSQL: a dump of every table's data.
  std::string DatabaseBytes() const {
    std::string out;
    if (IsPostgres()) {
      faas::testing::CommandResult dump =
          faas::testing::RunCommand({faas::testing::PostgresProcess::BinDir() + "/pg_dump",
                                     "--data-only", "-d", pg_->Url(db_)});
      EXPECT_EQ(dump.exit_code, 0) << dump.err;
      return dump.out;
    }
    for (const char* name : {"/faas.db", "/faas.db-wal"}) {
      std::ifstream in(dir_.path() + name, std::ios::binary);
      out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return out;
  }
};

TEST_P(KeysTest, CreateReturnsAKeyInTheDocumentedFormat) {
  auto [key, full] = Create("acme", {"resize"}, 10, 20);
  EXPECT_THAT(key.id, MatchesRegex("[0-9a-f]{12}"));
  EXPECT_THAT(full, MatchesRegex("faas_[0-9a-f]{12}_[A-Za-z0-9_-]{43}"));
  EXPECT_EQ(full.size(), kApiKeyChars);
  EXPECT_EQ(full.substr(5, 12), key.id);
  const std::string secret = full.substr(18);
  EXPECT_EQ(key.secret_sha256, Sha256Hex(secret));
  EXPECT_EQ(key.tenant, "acme");
  EXPECT_THAT(key.functions, ElementsAre("resize"));
  EXPECT_EQ(key.rate_per_sec, 10);
  EXPECT_EQ(key.burst, 20u);
  EXPECT_GT(key.created_unix_ms, 0);
  EXPECT_EQ(key.revoked_unix_ms, 0);
}

TEST_P(KeysTest, KeysAreDistinct) {
  std::set<std::string> ids;
  std::set<std::string> fulls;
  for (int i = 0; i < 20; ++i) {
    auto [key, full] = Create("acme");
    ids.insert(key.id);
    fulls.insert(full);
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(fulls.size(), 20u);
}

TEST_P(KeysTest, ListReturnsEveryFieldAfterReopen) {
  auto [a, full_a] = Create("acme", {"thumb", "resize", "thumb"}, 0.5, 3);
  auto [b, full_b] = Create("beta");
  auto [c, full_c] = Create("gamma", {}, 1.0 / 3.0, 0);
  Reopen();
  std::vector<ApiKey> keys = List();
  ASSERT_EQ(keys.size(), 3u);
  std::map<std::string, ApiKey> by_id;
  for (const ApiKey& k : keys) {
    by_id[k.id] = k;
  }
  ASSERT_EQ(by_id.count(a.id), 1u);
  const ApiKey& got = by_id[a.id];
  EXPECT_EQ(got.tenant, "acme");
  EXPECT_THAT(got.functions, ElementsAre("resize", "thumb"));  // sorted, duplicates dropped
  EXPECT_EQ(got.rate_per_sec, 0.5);
  EXPECT_EQ(got.burst, 3u);
  EXPECT_EQ(got.created_unix_ms, a.created_unix_ms);
  EXPECT_EQ(got.revoked_unix_ms, 0);
  EXPECT_EQ(got.secret_sha256, a.secret_sha256);
  EXPECT_THAT(by_id[b.id].functions, IsEmpty());
  EXPECT_EQ(by_id[b.id].rate_per_sec, 0);
  EXPECT_EQ(by_id[b.id].burst, 0u);
  EXPECT_EQ(by_id[c.id].rate_per_sec, 1.0 / 3.0);  // exact round trip
  EXPECT_EQ(by_id[c.id].burst, 1u);                // default: max(1, ceil(rate))
  // Oldest first.
  for (std::size_t i = 1; i < keys.size(); ++i) {
    EXPECT_LE(keys[i - 1].created_unix_ms, keys[i].created_unix_ms);
  }
}

TEST_P(KeysTest, DefaultBurstIsTheRateRoundedUp) {
  EXPECT_EQ(Create("acme", {}, 10, 0).first.burst, 10u);
  EXPECT_EQ(Create("acme", {}, 2.5, 0).first.burst, 3u);
  EXPECT_EQ(Create("acme", {}, 0.1, 0).first.burst, 1u);
  EXPECT_EQ(Create("acme", {}, 0.1, 7).first.burst, 7u);
}

TEST_P(KeysTest, TheSecretIsNotStoredInClear) {
  auto [key, full] = Create("acme", {"resize"}, 1, 1);
  const std::string secret = full.substr(18);
  std::string bytes = DatabaseBytes();
  ASSERT_THAT(bytes, HasSubstr(key.id));  // the row is there: the check below means something
  EXPECT_THAT(bytes, Not(HasSubstr(secret)));
  EXPECT_THAT(bytes, Not(HasSubstr(secret.substr(0, 16))));
  Reopen();  // a checkpoint moves the WAL into faas.db
  bytes = DatabaseBytes();
  EXPECT_THAT(bytes, Not(HasSubstr(secret.substr(0, 16))));
  for (const ApiKey& k : List()) {
    EXPECT_NE(k.secret_sha256, secret);
  }
}

TEST_P(KeysTest, RevokeMarksTheKeyAndIsIdempotent) {
  auto [a, full_a] = Create("acme");
  auto [b, full_b] = Create("acme");
  ASSERT_TRUE(reg_->RevokeKey(a.id).ok());
  std::vector<ApiKey> keys = List();
  ASSERT_EQ(keys.size(), 2u);
  int64_t revoked_at = 0;
  for (const ApiKey& k : keys) {
    if (k.id == a.id) {
      revoked_at = k.revoked_unix_ms;
    } else {
      EXPECT_EQ(k.revoked_unix_ms, 0);
    }
  }
  EXPECT_GT(revoked_at, 0);

  faas::Status again = reg_->RevokeKey(a.id);
  EXPECT_TRUE(again.ok()) << again.ToString();
  Reopen();
  for (const ApiKey& k : List()) {
    if (k.id == a.id) {
      EXPECT_EQ(k.revoked_unix_ms, revoked_at);  // the first revocation time is kept
    }
  }
}

TEST_P(KeysTest, RevokeUnknownIdIsNotFound) {
  faas::Status s = reg_->RevokeKey("0123456789ab");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "API key \"0123456789ab\" does not exist");
}

TEST_P(KeysTest, RevokeMalformedIdIsInvalidAndDoesNotEchoIt) {
  auto [key, full] = Create("acme");
  for (const std::string& id :
       {std::string("ABCDEF012345"), std::string("abc"), std::string(""), full}) {
    faas::Status s = reg_->RevokeKey(id);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << id;
    if (!id.empty()) {
      EXPECT_THAT(s.message(), Not(HasSubstr(id))) << id;
    }
  }
  EXPECT_EQ(List().at(0).revoked_unix_ms, 0);
}

TEST_P(KeysTest, RejectsInvalidInputReportingEveryProblem) {
  auto r = reg_->CreateKey("Acme", {"ok", "Bad_Fn"}, -1, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("tenant \"Acme\" must match [a-z][a-z0-9-]{0,62}"));
  EXPECT_THAT(r.status().message(), HasSubstr("function \"Bad_Fn\" must match"));
  EXPECT_THAT(r.status().message(), HasSubstr("rate_per_sec: -1 is outside 0..1000000"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("\"ok\"")));
  EXPECT_THAT(List(), IsEmpty());
}

TEST_P(KeysTest, RejectsBadRatesAndBursts) {
  struct Case {
    std::string tenant;
    double rate;
    uint32_t burst;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"", 0, 0, "tenant \"\" must match"},
      {std::string(64, 'a'), 0, 0, "must match"},
      {"acme", std::nan(""), 0, "rate_per_sec: nan is outside"},
      {"acme", 2e6, 0, "rate_per_sec: 2000000 is outside 0..1000000"},
      {"acme", 0, 5, "burst: 5 without a rate"},
      {"acme", 1, 2'000'000, "burst: 2000000 is above the 1000000 maximum"},
  };
  for (const Case& c : cases) {
    auto r = reg_->CreateKey(c.tenant, {}, c.rate, c.burst);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
  EXPECT_THAT(List(), IsEmpty());
}

TEST_P(KeysTest, KeysLiveBesideFunctionsAndRoutes) {
  ASSERT_TRUE(reg_->AddRoute({"GET", "/x", "", "fn", 0}).ok());
  Create("acme");
  Reopen();
  EXPECT_EQ(List().size(), 1u);
  auto routes = reg_->ListRoutes();
  ASSERT_TRUE(routes.ok());
  EXPECT_EQ(routes->size(), 1u);
}

FAAS_REGISTRY_BACKENDS(KeysTest);

}  // namespace
}  // namespace faas::store
