// The web console's sign-in sessions (docs/design/0026-console.md): a session is created only
// for the admin token, and is then named by a random id in an HttpOnly cookie. Each session has
// its own CSRF token, which mutations must echo in a header.
//
//   MemorySessions sessions({.ttl = std::chrono::hours(12)});
//   if (TokenMatches(pasted, admin_token)) { FAAS_ASSIGN_OR_RETURN(auto s, sessions.Create()); }
//   FAAS_ASSIGN_OR_RETURN(std::optional<std::string> csrf, sessions.Find(cookie_value));
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "faas/base/status.h"

namespace faas::store {
class SessionStore;  // faas/store/sessions.h
}  // namespace faas::store

namespace faas::daemon {

// Whether `given` equals `want`, in time that depends on neither (both are hashed with SHA-256,
// then compared with CRYPTO_memcmp). False when `want` is empty.
bool TokenMatches(std::string_view given, std::string_view want);

// `bytes` random bytes from getrandom(2), as lower-case hex.
std::string RandomHex(std::size_t bytes);

// Where the console keeps its sessions. Thread-safe. Two kinds (docs/design/0026-console.md):
// MemorySessions for a single faasd (SQLite, `--role all`: a restart signs everyone out), and
// StoredSessions over the shared store, so that every gateway of a cluster honours a session any
// of them made, and a sign-out on one ends it on all.
class ConsoleSessions {
 public:
  struct Created {
    std::string id;    // the cookie value: 256 random bits, hex
    std::string csrf;  // the session's CSRF token: 256 random bits, hex
  };

  virtual ~ConsoleSessions() = default;
  ConsoleSessions(const ConsoleSessions&) = delete;
  ConsoleSessions& operator=(const ConsoleSessions&) = delete;

  // A new session. Unavailable when the store cannot be reached.
  virtual Result<Created> Create() = 0;
  // The CSRF token of the live session `id`, or nullopt (unknown, or expired).
  virtual Result<std::optional<std::string>> Find(std::string_view id) = 0;
  // Ends the session `id` (nothing when there is none).
  virtual Status Erase(std::string_view id) = 0;

 protected:
  ConsoleSessions() = default;
};

// Sessions in this process's memory.
class MemorySessions final : public ConsoleSessions {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::seconds ttl{12 * 3600};     // from sign-in; not extended by use
    std::size_t max_sessions = 1024;         // beyond: the session closest to expiry is dropped
    std::function<Clock::time_point()> now;  // tests; default Clock::now
  };

  explicit MemorySessions(Options options);

  Result<Created> Create() override;
  // Never fails; an expired session found is erased.
  Result<std::optional<std::string>> Find(std::string_view id) override;
  Status Erase(std::string_view id) override;
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

// Sessions in a store::SessionStore (PostgreSQL), which sees each id only as its SHA-256 hex;
// expiry is the store's clock.
class StoredSessions final : public ConsoleSessions {
 public:
  StoredSessions(std::unique_ptr<store::SessionStore> store, std::chrono::seconds ttl);
  ~StoredSessions() override;

  Result<Created> Create() override;
  Result<std::optional<std::string>> Find(std::string_view id) override;
  Status Erase(std::string_view id) override;

 private:
  std::unique_ptr<store::SessionStore> store_;
  std::chrono::seconds ttl_;
};

}  // namespace faas::daemon
