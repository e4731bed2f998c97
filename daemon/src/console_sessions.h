// The web console's sign-in sessions (docs/design/0026-console.md): a session is created only
// for the admin token, and is then named by a random id in an HttpOnly cookie. Each session has
// its own CSRF token, which mutations must echo in a header.
//
//   ConsoleSessions sessions({.ttl = std::chrono::hours(12)});
//   if (TokenMatches(pasted, admin_token)) { ConsoleSessions::Created s = sessions.Create(); }
//   std::optional<std::string> csrf = sessions.Find(cookie_value);  // nullopt: sign in again
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace faas::daemon {

// Whether `given` equals `want`, in time that depends on neither (both are hashed with SHA-256,
// then compared with CRYPTO_memcmp). False when `want` is empty.
bool TokenMatches(std::string_view given, std::string_view want);

// `bytes` random bytes from getrandom(2), as lower-case hex.
std::string RandomHex(std::size_t bytes);

// Thread-safe. Sessions live in memory: a restart of faasd signs everyone out.
class ConsoleSessions {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::seconds ttl{12 * 3600};     // from sign-in; not extended by use
    std::size_t max_sessions = 1024;         // beyond: the session closest to expiry is dropped
    std::function<Clock::time_point()> now;  // tests; default Clock::now
  };
  struct Created {
    std::string id;    // the cookie value: 256 random bits, hex
    std::string csrf;  // the session's CSRF token: 256 random bits, hex
  };

  explicit ConsoleSessions(Options options);

  Created Create();
  // The CSRF token of the live session `id`, or nullopt (unknown, or expired: then erased).
  std::optional<std::string> Find(std::string_view id);
  void Erase(std::string_view id);
  std::size_t Size();

 private:
  struct Session {
    std::string csrf;
    Clock::time_point expires;
  };
  // Sessions are keyed by the SHA-256 of their id, so a lookup's timing says nothing about ids.
  static std::string Key(std::string_view id);
  Clock::time_point Now() const { return options_.now ? options_.now() : Clock::now(); }

  Options options_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // guarded by mu_
};

}  // namespace faas::daemon
