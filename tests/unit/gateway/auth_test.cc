// KeyTable: Bearer parsing, secret check, revocation and function scope. Keys are made here in
// the registry's format, so no database is needed.
#include "faas/gateway/auth.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/hash.h"

namespace faas::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kMissing = "missing Authorization: Bearer <key> header";
constexpr std::string_view kInvalid = "invalid API key";

// A secret of the right length and alphabet (base64url, 43 characters).
std::string Secret(char fill) {
  return std::string(store::kApiKeySecretChars, fill);
}

store::ApiKey Record(std::string id, const std::string& secret,
                     std::vector<std::string> functions = {}, double rate = 0, uint32_t burst = 0) {
  store::ApiKey k;
  k.id = std::move(id);
  k.tenant = "acme";
  k.functions = std::move(functions);
  k.rate_per_sec = rate;
  k.burst = burst;
  k.created_unix_ms = 1;
  k.secret_sha256 = store::Sha256Hex(secret);
  return k;
}

std::string Key(std::string_view id, std::string_view secret) {
  return "faas_" + std::string(id) + "_" + std::string(secret);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<store::ApiKey> keys;
    keys.push_back(Record("0123456789ab", Secret('A'), {}, 10, 20));  // every function
    keys.push_back(Record("abcdef012345", Secret('b'), {"thumb", "resize"}));
    store::ApiKey revoked = Record("fedcba987654", Secret('-'));
    revoked.revoked_unix_ms = 5;
    keys.push_back(std::move(revoked));
    table_ = KeyTable::Build(std::move(keys));
  }

  // The error message, or "OK".
  std::string Check(const std::string* header, std::string_view function = "resize") const {
    Result<Principal> p = table_->Authenticate(header, function);
    if (p.ok()) {
      return "OK";
    }
    EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
    return p.status().message();
  }
  std::string Check(const std::string& header, std::string_view function = "resize") const {
    return Check(&header, function);
  }

  std::shared_ptr<const KeyTable> table_;
};

TEST_F(AuthTest, AcceptsAValidKeyAndReturnsItsPrincipal) {
  const std::string header = "Bearer " + Key("0123456789ab", Secret('A'));
  Result<Principal> p = table_->Authenticate(&header, "anything");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->key_id, "0123456789ab");
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->rate_per_sec, 10);
  EXPECT_EQ(p->burst, 20u);
  EXPECT_EQ(table_->Size(), 3u);
}

TEST_F(AuthTest, MissingHeaderOrOtherSchemeAsksForABearerKey) {
  EXPECT_EQ(Check(nullptr), kMissing);
  EXPECT_EQ(Check(""), kMissing);
  EXPECT_EQ(Check("   "), kMissing);
  EXPECT_EQ(Check("Bearer"), kMissing);
  EXPECT_EQ(Check("Bearer   "), kMissing);
  EXPECT_EQ(Check("Basic dXNlcjpwYXNz"), kMissing);
  EXPECT_EQ(Check("Bearerfaas_0123456789ab_" + Secret('A')), kMissing);  // no space
  EXPECT_EQ(Check(Key("0123456789ab", Secret('A'))), kMissing);          // no scheme
  EXPECT_EQ(Check("Token " + Key("0123456789ab", Secret('A'))), kMissing);
}

TEST_F(AuthTest, SchemeIsCaseInsensitiveAndSpacesAreTolerated) {
  const std::string key = Key("0123456789ab", Secret('A'));
  EXPECT_EQ(Check("bearer " + key), "OK");
  EXPECT_EQ(Check("BEARER " + key), "OK");
  EXPECT_EQ(Check("BeArEr " + key), "OK");
  EXPECT_EQ(Check("Bearer    " + key), "OK");
  EXPECT_EQ(Check("Bearer\t" + key), "OK");
  EXPECT_EQ(Check("  Bearer " + key + "  "), "OK");
}

TEST_F(AuthTest, GarbageIsAnInvalidKey) {
  const std::string good = Key("0123456789ab", Secret('A'));
  for (const std::string& token : {
           std::string("x"),
           std::string("faas_"),
           good.substr(0, good.size() - 1),                      // one character short
           good + "A",                                           // one too many
           good + " extra",                                      // trailing garbage
           "fass_" + good.substr(5),                             // wrong prefix
           Key("0123456789AB", Secret('A')),                     // upper-case id
           Key("0123456789ag", Secret('A')),                     // not hex
           "faas_0123456789ab-" + Secret('A'),                   // wrong separator
           Key("0123456789ab", Secret('A').replace(0, 1, "+")),  // base64, not base64url
           Key("0123456789ab", Secret('A').replace(5, 1, std::string(1, '\0'))),
       }) {
    EXPECT_EQ(Check("Bearer " + token), kInvalid) << token;
  }
}

TEST_F(AuthTest, WrongSecretForAnExistingIdLooksLikeAnUnknownId) {
  EXPECT_EQ(Check("Bearer " + Key("0123456789ab", Secret('B'))), kInvalid);
  EXPECT_EQ(Check("Bearer " + Key("000000000000", Secret('A'))), kInvalid);
  // Even a revoked key's state is not told without its secret.
  EXPECT_EQ(Check("Bearer " + Key("fedcba987654", Secret('A'))), kInvalid);
}

TEST_F(AuthTest, RevokedKeyIsRefused) {
  EXPECT_EQ(Check("Bearer " + Key("fedcba987654", Secret('-'))), "API key revoked");
}

TEST_F(AuthTest, ScopedKeyInvokesOnlyItsFunctions) {
  const std::string header = "Bearer " + Key("abcdef012345", Secret('b'));
  EXPECT_EQ(Check(header, "resize"), "OK");
  EXPECT_EQ(Check(header, "thumb"), "OK");
  EXPECT_EQ(Check(header, "billing"), "this API key may not invoke function \"billing\"");
  EXPECT_EQ(Check(header, ""), "this API key may not invoke function \"\"");
  EXPECT_EQ(Check(header, "res"), "this API key may not invoke function \"res\"");
}

TEST_F(AuthTest, ScopeMessageQuotesHostileNamesSafely) {
  const std::string header = "Bearer " + Key("abcdef012345", Secret('b'));
  const std::string msg = Check(header, "a\"b\r\n" + std::string(500, 'x'));
  EXPECT_THAT(msg, HasSubstr("\"a?b??xxx"));
  EXPECT_THAT(msg, Not(HasSubstr("\n")));
  EXPECT_LT(msg.size(), 200u);
}

TEST_F(AuthTest, EmptyFunctionListMeansEveryFunction) {
  const std::string header = "Bearer " + Key("0123456789ab", Secret('A'));
  for (std::string_view fn : {"resize", "thumb", "billing", "x"}) {
    EXPECT_EQ(Check(header, fn), "OK") << fn;
  }
}

TEST_F(AuthTest, ErrorsNeverContainTheSecret) {
  const std::string secret = Secret('B');
  for (const std::string& header :
       {"Bearer " + Key("0123456789ab", secret), "Bearer " + Key("0123456789ab", secret) + "x",
        "Basic " + secret}) {
    EXPECT_THAT(Check(header), Not(HasSubstr(secret)));
  }
}

TEST(KeyTable, EmptyTableRejectsEverything) {
  auto table = KeyTable::Build({});
  const std::string header = "Bearer " + Key("0123456789ab", Secret('A'));
  Result<Principal> p = table->Authenticate(&header, "fn");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), kInvalid);
  EXPECT_EQ(table->Size(), 0u);
}

TEST(KeyTable, SkipsMalformedRecords) {
  std::vector<store::ApiKey> keys;
  keys.push_back(Record("short", Secret('A')));
  store::ApiKey bad_hash = Record("0123456789ab", Secret('A'));
  bad_hash.secret_sha256 = "not-a-digest";
  keys.push_back(bad_hash);
  keys.push_back(Record("abcdef012345", Secret('b')));
  auto table = KeyTable::Build(std::move(keys));
  EXPECT_EQ(table->Size(), 1u);
  const std::string header = "Bearer " + Key("0123456789ab", Secret('A'));
  EXPECT_FALSE(table->Authenticate(&header, "fn").ok());
}

TEST(KeyTable, UnsortedScopeFromElsewhereStillWorks) {
  std::vector<store::ApiKey> keys;
  keys.push_back(Record("abcdef012345", Secret('b'), {"zeta", "alpha", "mid", "alpha"}));
  auto table = KeyTable::Build(std::move(keys));
  const std::string header = "Bearer " + Key("abcdef012345", Secret('b'));
  for (std::string_view fn : {"zeta", "alpha", "mid"}) {
    EXPECT_TRUE(table->Authenticate(&header, fn).ok()) << fn;
  }
  EXPECT_FALSE(table->Authenticate(&header, "beta").ok());
}

}  // namespace
}  // namespace faas::gateway
