// The web console's sessions on PostgreSQL (faas/store/sessions.h): one row per session, keyed
// by the SHA-256 of its id, expiring on the database's clock.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "faas/store/hash.h"
#include "faas/store/sessions.h"

#include "pg.h"

namespace faas::store {
namespace {

using pg::Exec;
using pg::Rows;

class PgSessions final : public SessionStore {
 public:
  explicit PgSessions(std::string url) : url_(std::move(url)) {}
  ~PgSessions() override {
    if (conn_ != nullptr) {
      PQfinish(conn_);
    }
  }
  PgSessions(const PgSessions&) = delete;
  PgSessions& operator=(const PgSessions&) = delete;

  faas::Status Open() {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    return pg::Migrate(conn_);
  }

  faas::Status PutSession(std::string_view id_sha256, std::string_view csrf,
                          std::chrono::seconds ttl) override {
    FAAS_RETURN_IF_ERROR(CheckId(id_sha256));
    if (csrf.empty() || ttl.count() <= 0) {
      return faas::InvalidArgumentError("a session needs a CSRF token and a positive lifetime");
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    // Sign-ins are rare (people, not invocations): sweeping here keeps the table at the live
    // sessions without a janitor.
    FAAS_RETURN_IF_ERROR(
        Exec(conn_, "DELETE FROM console_sessions WHERE expires_at <= now()").status());
    return Exec(conn_,
                "INSERT INTO console_sessions (id_sha256, csrf, expires_at) "
                "VALUES ($1, $2, now() + make_interval(secs => $3::bigint))",
                {id_sha256, csrf, static_cast<int64_t>(ttl.count())})
        .status();
  }

  faas::Result<std::optional<std::string>> FindSession(std::string_view id_sha256) override {
    if (!IsSha256Hex(id_sha256)) {
      return std::optional<std::string>();  // no such id can have been stored
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_,
                                       "SELECT csrf FROM console_sessions "
                                       "WHERE id_sha256 = $1 AND expires_at > now()",
                                       {id_sha256}));
    if (r.Count() == 0) {
      return std::optional<std::string>();
    }
    return std::optional<std::string>(r.Text(0, 0));
  }

  faas::Status DeleteSession(std::string_view id_sha256) override {
    if (!IsSha256Hex(id_sha256)) {
      return faas::OkStatus();
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    return Exec(conn_, "DELETE FROM console_sessions WHERE id_sha256 = $1", {id_sha256}).status();
  }

  faas::Result<int64_t> SweepSessions() override {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    FAAS_ASSIGN_OR_RETURN(Rows r,
                          Exec(conn_, "DELETE FROM console_sessions WHERE expires_at <= now()"));
    return r.Affected();
  }

 private:
  static faas::Status CheckId(std::string_view id_sha256) {
    if (!IsSha256Hex(id_sha256)) {
      return faas::InvalidArgumentError("a session id hash must be 64 lowercase hex digits");
    }
    return faas::OkStatus();
  }

  const std::string url_;
  std::mutex mu_;
  PGconn* conn_ = nullptr;  // guarded by mu_; owned
};

}  // namespace

faas::Result<std::unique_ptr<SessionStore>> OpenPgSessions(std::string_view url) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    return faas::FailedPreconditionError("the PostgreSQL session table needs a postgresql:// URL");
  }
  auto s = std::make_unique<PgSessions>(std::string(url));
  FAAS_RETURN_IF_ERROR(s->Open());
  return std::unique_ptr<SessionStore>(std::move(s));
}

}  // namespace faas::store
