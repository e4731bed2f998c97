// The console's sessions (daemon/src/console_sessions.h): expiry on a fake clock, the cap, and
// the token comparison.
#include "console_sessions.h"

#include <chrono>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace faas::daemon {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  ConsoleSessions::Clock::time_point now = ConsoleSessions::Clock::now();
};

TEST(ConsoleSessions, ASessionExpiresAtItsTtlAndIsForgotten) {
  FakeClock clock;
  ConsoleSessions s({.ttl = 60s, .max_sessions = 8, .now = [&clock] { return clock.now; }});
  ConsoleSessions::Created c = s.Create();
  EXPECT_EQ(s.Find(c.id), c.csrf);
  clock.now += 59s;
  EXPECT_EQ(s.Find(c.id), c.csrf) << "use does not extend a session, but it is still live";
  clock.now += 1s;
  EXPECT_EQ(s.Find(c.id), std::nullopt);
  EXPECT_EQ(s.Size(), 0u);
  clock.now -= 30s;  // a clock that went back does not revive it
  EXPECT_EQ(s.Find(c.id), std::nullopt);
}

TEST(ConsoleSessions, UnknownEmptyAndErasedIdsFindNothing) {
  ConsoleSessions s({.ttl = 60s, .max_sessions = 8, .now = {}});
  ConsoleSessions::Created c = s.Create();
  EXPECT_EQ(s.Find(""), std::nullopt);
  EXPECT_EQ(s.Find(c.csrf), std::nullopt) << "the CSRF token is no session id";
  EXPECT_EQ(s.Find(c.id.substr(1)), std::nullopt);
  EXPECT_EQ(s.Find(c.id + "0"), std::nullopt);
  s.Erase(c.id);
  EXPECT_EQ(s.Find(c.id), std::nullopt);
}

TEST(ConsoleSessions, IdsAndTokensAreRandomAndTheCapDropsTheOldest) {
  FakeClock clock;
  ConsoleSessions s({.ttl = 60s, .max_sessions = 3, .now = [&clock] { return clock.now; }});
  std::set<std::string> seen;
  std::vector<ConsoleSessions::Created> made;
  for (int i = 0; i < 4; ++i) {
    made.push_back(s.Create());
    clock.now += 1s;
    EXPECT_EQ(made.back().id.size(), 64u);
    EXPECT_TRUE(seen.insert(made.back().id).second);
    EXPECT_TRUE(seen.insert(made.back().csrf).second);
  }
  EXPECT_EQ(s.Size(), 3u);
  EXPECT_EQ(s.Find(made[0].id), std::nullopt);
  EXPECT_EQ(s.Find(made[3].id), made[3].csrf);
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
