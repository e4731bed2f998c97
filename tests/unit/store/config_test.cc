#include "faas/store/config.h"

#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace faas::store {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ValidateName, AcceptsNamesMatchingThePattern) {
  for (const std::string& name :
       std::vector<std::string>{"a", "resize", "img-2-webp", std::string(63, 'a')}) {
    EXPECT_TRUE(ValidateName(name).ok()) << name;
  }
}

TEST(ValidateName, RejectsOthersQuotingValueAndPattern) {
  for (const std::string& name : std::vector<std::string>{"", "../x", "Foo", "1abc", "-a", "a_b",
                                                          "a b", "a/b", std::string(64, 'a')}) {
    Status s = ValidateName(name);
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("\"" + name + "\""));
    EXPECT_THAT(s.message(), HasSubstr("must match [a-z][a-z0-9-]{0,62}"));
  }
  EXPECT_EQ(ValidateName("Foo").message(), "name \"Foo\" must match [a-z][a-z0-9-]{0,62}");
}

TEST(ValidateConfig, AcceptsDefaultsAndBounds) {
  EXPECT_TRUE(ValidateConfig(FunctionConfig{}).ok());
  FunctionConfig c;
  c.memory_mb = 16;
  c.timeout = milliseconds(1);
  c.cpu_limit = std::chrono::minutes(15);
  c.min_warm = 1000;
  c.max_instances = 1000;
  c.idle_ttl = std::chrono::hours(24);
  c.isolation = "fresh";
  c.network = "outbound";
  c.env = {{"_X", "1"}, {"Path9", std::string(4096, 'v')}};
  c.max_body_bytes = 6u << 20;
  Status s = ValidateConfig(c);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(ValidateConfig, ReportsAllProblemsAtOnce) {
  FunctionConfig c;
  c.memory_mb = 4;
  c.timeout = milliseconds(0);
  c.cpu_limit = std::chrono::minutes(20);
  c.max_instances = 0;
  c.min_warm = 5;
  c.idle_ttl = milliseconds(10);
  c.isolation = "shared";
  c.network = "full";
  c.env = {{"FAAS_SECRET", "x"}, {"1BAD", "x"}, {"BIG", std::string(5000, 'x')}};
  c.max_body_bytes = 10;
  Status s = ValidateConfig(c);
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  const std::string& m = s.message();
  EXPECT_THAT(m, HasSubstr("memory_mb: 4 MiB is below the 16 MiB minimum; "));
  EXPECT_THAT(m, HasSubstr("timeout: 0ms is below the 1ms minimum"));
  EXPECT_THAT(m, HasSubstr("cpu_limit: 20m is above the 15m maximum"));
  EXPECT_THAT(m, HasSubstr("max_instances: 0 is outside 1..1000"));
  EXPECT_THAT(m, HasSubstr("min_warm: 5 is above max_instances 0"));
  EXPECT_THAT(m, HasSubstr("idle_ttl: 10ms is below the 1s minimum"));
  EXPECT_THAT(m, HasSubstr("isolation: \"shared\" must be \"warm\" or \"fresh\""));
  EXPECT_THAT(m, HasSubstr("network: \"full\" must be \"none\" or \"outbound\""));
  EXPECT_THAT(m, HasSubstr("env: key \"FAAS_SECRET\" must not start with FAAS_"));
  EXPECT_THAT(m, HasSubstr("env: key \"1BAD\" must match [A-Za-z_][A-Za-z0-9_]*"));
  EXPECT_THAT(m, HasSubstr("env: value of \"BIG\" is 5000 bytes, above the 4096-byte maximum"));
  EXPECT_THAT(m, HasSubstr("max_body_bytes: 10 is outside 1024..6291456"));
}

TEST(ValidateConfig, RefusesDynamicLoaderVariablesByName) {
  for (const char* key :
       {"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "LD_BIND_NOW", "GLIBC_TUNABLES"}) {
    FunctionConfig c;
    c.env = {{key, "/x.so"}, {"LD", "fine"}, {"MY_LD_PATH", "fine"}};
    Status s = ValidateConfig(c);
    ASSERT_EQ(s.code(), StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr(std::string("env: key \"") + key +
                                       "\" is a dynamic-loader variable and is refused"));
    EXPECT_THAT(s.message(), Not(HasSubstr("\"LD\""))) << s.message();
    EXPECT_THAT(s.message(), Not(HasSubstr("MY_LD_PATH"))) << s.message();
  }
}

TEST(ValidateConfig, RejectsTooManyEnvEntriesAndBadValues) {
  FunctionConfig c;
  for (int i = 0; i < 65; ++i) {
    std::string key(1, 'K');
    key += std::to_string(i);
    c.env.emplace(key, std::string(1, 'v'));
  }
  c.env["NUL"] = std::string("a\0b", 3);
  c.env["UTF"] = "\xff\xfe";
  Status s = ValidateConfig(c);
  EXPECT_THAT(s.message(), HasSubstr("env: 67 entries is above the 64 maximum"));
  EXPECT_THAT(s.message(), HasSubstr("env: value of \"NUL\" contains a NUL byte"));
  EXPECT_THAT(s.message(), HasSubstr("env: value of \"UTF\" is not valid UTF-8"));
}

TEST(ConfigJson, DefaultsAreCanonicalWithSortedKeys) {
  EXPECT_EQ(ConfigToJson(FunctionConfig{}),
            R"({"burst":0,"cpu_limit_ms":0,"env":{},"idle_ttl_ms":300000,"isolation":"warm",)"
            R"("max_body_bytes":6291456,"max_instances":16,"memory_mb":128,)"
            R"("min_warm":0,"network":"none","public":false,"queue_depth":1000,)"
            R"("queue_timeout_ms":0,"rate_per_sec":0.0,"timeout_ms":10000})");
}

TEST(ConfigJson, RoundTrips) {
  FunctionConfig c;
  c.memory_mb = 512;
  c.timeout = milliseconds(2500);
  c.cpu_limit = milliseconds(1000);
  c.min_warm = 2;
  c.max_instances = 4;
  c.idle_ttl = std::chrono::seconds(30);
  c.isolation = "fresh";
  c.network = "outbound";
  c.env = {{"B", "2"}, {"A", "1 \"quoted\" \xc3\xa9"}};
  c.is_public = true;
  c.max_body_bytes = 1 << 20;
  Result<FunctionConfig> back = ConfigFromJson(ConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
}

TEST(ConfigJson, MissingKeysKeepDefaults) {
  Result<FunctionConfig> c = ConfigFromJson(R"({"memory_mb": 256})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  FunctionConfig want;
  want.memory_mb = 256;
  EXPECT_EQ(*c, want);
}

TEST(ConfigJson, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "[1]", "42", "{\"memory_mb\": 1,}", "\xff"}) {
    Result<FunctionConfig> c = ConfigFromJson(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("config: "));
  }
}

TEST(ConfigJson, ReportsAllTypeProblemsAtOnce) {
  Result<FunctionConfig> c = ConfigFromJson(
      R"({"memory_mb": -1, "timeout_ms": "10s", "public": 1, "env": {"A": 1}, "colour": "red",)"
      R"( "max_instances": 5000000000, "isolation": 3})");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_THAT(m, HasSubstr("memory_mb: must be an integer"));
  EXPECT_THAT(m, HasSubstr("got -1"));
  EXPECT_THAT(m, HasSubstr("timeout_ms: must be an integer"));
  EXPECT_THAT(m, HasSubstr("public: must be true or false"));
  EXPECT_THAT(m, HasSubstr("env: value of \"A\" must be a string"));
  EXPECT_THAT(m, HasSubstr("config: unknown key \"colour\""));
  EXPECT_THAT(m, HasSubstr("max_instances: must be an integer from 0 to 4294967295"));
  EXPECT_THAT(m, HasSubstr("isolation: must be a string"));
}

}  // namespace
}  // namespace faas::store

namespace faas::store {
namespace {

TEST(ConfigRate, RoundTripsAndIsBounded) {
  FunctionConfig c;
  c.rate_per_sec = 2.5;
  c.burst = 7;
  auto back = ConfigFromJson(ConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rate_per_sec, 2.5);
  EXPECT_EQ(back->burst, 7u);
  EXPECT_TRUE(ValidateConfig(c).ok());
  EXPECT_EQ(EffectiveBurst(c), 7u);
  c.burst = 0;
  EXPECT_EQ(EffectiveBurst(c), 3u);  // ceil(2.5)
  c.rate_per_sec = 0.2;
  EXPECT_EQ(EffectiveBurst(c), 1u);
  c.rate_per_sec = -1;
  EXPECT_FALSE(ValidateConfig(c).ok());
  c.rate_per_sec = std::nan("");
  EXPECT_FALSE(ValidateConfig(c).ok());
  EXPECT_FALSE(ConfigFromJson(R"({"rate_per_sec":"fast"})").ok());
}

}  // namespace
}  // namespace faas::store

namespace faas::store {
namespace {

// The idempotent flag (docs/design/0023) round-trips, and is left out of the JSON when false so
// configs stored before it keep their content hash.
TEST(ConfigJson, IdempotentRoundTripsAndIsAbsentWhenFalse) {
  FunctionConfig c;
  EXPECT_EQ(ConfigToJson(c).find("idempotent"), std::string::npos);
  c.idempotent = true;
  const std::string json = ConfigToJson(c);
  EXPECT_NE(json.find("\"idempotent\":true"), std::string::npos) << json;
  Result<FunctionConfig> back = ConfigFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->idempotent);
  EXPECT_EQ(*back, c);
  EXPECT_FALSE(ConfigFromJson("{\"idempotent\":\"yes\"}").ok());
}

}  // namespace
}  // namespace faas::store
