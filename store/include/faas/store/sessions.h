// Where the web console keeps its sign-in sessions when several gateways share one PostgreSQL
// store (docs/design/0026-console.md "Sessions across gateways"): one row per session, so a
// cookie made by one gateway works on every other, and a sign-out on one ends it on all. A
// single faasd on SQLite keeps its sessions in memory instead (daemon/src/console_sessions.h).
//
// The store sees a session's id only as its SHA-256 (hex): a copy of the table signs nobody in.
// Expiry is the database's clock, the one clock every gateway agrees on.
//
//   FAAS_ASSIGN_OR_RETURN(auto s, faas::store::OpenPgSessions("postgresql:///faas"));
//   FAAS_RETURN_IF_ERROR(s->PutSession(Sha256Hex(id), csrf, std::chrono::hours(12)));
//   FAAS_ASSIGN_OR_RETURN(std::optional<std::string> csrf, s->FindSession(Sha256Hex(id)));
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "faas/base/status.h"

namespace faas::store {

// Thread-safe. Unavailable when the database cannot be reached (the caller answers 503, it does
// not sign anyone in or out); InvalidArgument for an id hash that is not 64 hex digits.
class SessionStore {
 public:
  virtual ~SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Adds the session `id_sha256` with its CSRF token, live for `ttl` from now (database clock),
  // and deletes the sessions that have expired.
  virtual Status PutSession(std::string_view id_sha256, std::string_view csrf,
                            std::chrono::seconds ttl) = 0;
  // The CSRF token of the live session `id_sha256`; nullopt when there is none or it expired.
  virtual Result<std::optional<std::string>> FindSession(std::string_view id_sha256) = 0;
  // Ends the session (no error when there is none).
  virtual Status DeleteSession(std::string_view id_sha256) = 0;
  // Deletes every expired session; how many.
  virtual Result<int64_t> SweepSessions() = 0;

 protected:
  SessionStore() = default;
};

// The console_sessions table of the PostgreSQL store at `url`, with its own connection; brings
// the schema up to date like every PostgreSQL part. FailedPrecondition for another kind of store.
Result<std::unique_ptr<SessionStore>> OpenPgSessions(std::string_view url);

}  // namespace faas::store
