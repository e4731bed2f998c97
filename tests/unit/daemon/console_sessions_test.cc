// The console's sessions (daemon/src/console_sessions.h): expiry on a fake clock, the cap, and
// the token comparison.
#include "console_sessions.h"

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace faas::daemon {
namespace {

using namespace std::chrono_literals;

// The memory store never fails; its answer, or a test failure.
std::optional<std::string> Find(MemorySessions& s, std::string_view id) {
  Result<std::optional<std::string>> r = s.Find(id);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::nullopt;
}

struct FakeClock {
  MemorySessions::Clock::time_point now = MemorySessions::Clock::now();
};

TEST(ConsoleSessions, ASessionExpiresAtItsTtlAndIsForgotten) {
  FakeClock clock;
  MemorySessions s({.ttl = 60s, .max_sessions = 8, .now = [&clock] { return clock.now; }});
  ConsoleSessions::Created c = *s.Create();
  EXPECT_EQ(Find(s, c.id), c.csrf);
  clock.now += 59s;
  EXPECT_EQ(Find(s, c.id), c.csrf) << "use does not extend a session, but it is still live";
  clock.now += 1s;
  EXPECT_EQ(Find(s, c.id), std::nullopt);
  EXPECT_EQ(s.Size(), 0u);
  clock.now -= 30s;  // a clock that went back does not revive it
  EXPECT_EQ(Find(s, c.id), std::nullopt);
}

TEST(ConsoleSessions, UnknownEmptyAndErasedIdsFindNothing) {
  MemorySessions s({.ttl = 60s, .max_sessions = 8, .now = {}});
  ConsoleSessions::Created c = *s.Create();
  EXPECT_EQ(Find(s, ""), std::nullopt);
  EXPECT_EQ(Find(s, c.csrf), std::nullopt) << "the CSRF token is no session id";
  EXPECT_EQ(Find(s, c.id.substr(1)), std::nullopt);
  EXPECT_EQ(Find(s, c.id + "0"), std::nullopt);
  ASSERT_TRUE(s.Erase(c.id).ok());
  EXPECT_EQ(Find(s, c.id), std::nullopt);
}

TEST(ConsoleSessions, IdsAndTokensAreRandomAndTheCapDropsTheOldest) {
  FakeClock clock;
  MemorySessions s({.ttl = 60s, .max_sessions = 3, .now = [&clock] { return clock.now; }});
  std::set<std::string> seen;
  std::vector<ConsoleSessions::Created> made;
  for (int i = 0; i < 4; ++i) {
    made.push_back(*s.Create());
    clock.now += 1s;
    EXPECT_EQ(made.back().id.size(), 64u);
    EXPECT_TRUE(seen.insert(made.back().id).second);
    EXPECT_TRUE(seen.insert(made.back().csrf).second);
  }
  EXPECT_EQ(s.Size(), 3u);
  EXPECT_EQ(Find(s, made[0].id), std::nullopt);
  EXPECT_EQ(Find(s, made[3].id), made[3].csrf);
}

TEST(TokenMatches, OnlyTheExactTokenMatches) {
  EXPECT_TRUE(TokenMatches("secret-token-123", "secret-token-123"));
  EXPECT_FALSE(TokenMatches("secret-token-12", "secret-token-123"));
  EXPECT_FALSE(TokenMatches("secret-token-1234", "secret-token-123"));
  EXPECT_FALSE(TokenMatches("", "secret-token-123"));
  EXPECT_FALSE(TokenMatches("", "")) << "an empty token never signs anyone in";
}

}  // namespace
}  // namespace faas::daemon
