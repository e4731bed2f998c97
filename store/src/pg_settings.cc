// The settings table on PostgreSQL (faas/store/settings.h): the cluster's trigger definitions
// live with the registry, and every change is announced on faas_registry in its own transaction.
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "faas/base/time.h"
#include "faas/store/change_listener.h"
#include "faas/store/settings.h"

#include "pg.h"

namespace faas::store {
namespace {

using pg::Exec;
using pg::InTransaction;
using pg::Rows;

class PgSettings final : public SettingsStore {
 public:
  explicit PgSettings(std::string url) : url_(std::move(url)) {}
  ~PgSettings() override {
    if (conn_ != nullptr) {
      PQfinish(conn_);
    }
  }
  PgSettings(const PgSettings&) = delete;
  PgSettings& operator=(const PgSettings&) = delete;

  faas::Status Open() {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    return pg::Migrate(conn_);
  }

  faas::Status PutSetting(std::string_view kind, std::string_view key,
                          std::string_view json) override {
    if (std::string problems = SettingProblems(kind, key, json); !problems.empty()) {
      return faas::InvalidArgumentError(problems);
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    return InTransaction(conn_, [&]() -> faas::Status {
      FAAS_RETURN_IF_ERROR(
          Exec(conn_,
               "INSERT INTO settings (kind, key, json, updated_unix_ms) "
               "VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO UPDATE "
               "SET json = EXCLUDED.json, updated_unix_ms = EXCLUDED.updated_unix_ms",
               {kind, key, json, faas::UnixMillisNow()})
              .status());
      return Announce(kind, key);
    });
  }

  faas::Status DeleteSetting(std::string_view kind, std::string_view key) override {
    if (kind.empty() || key.empty()) {
      return faas::InvalidArgumentError(kind.empty() ? "setting kind is empty"
                                                     : "setting key is empty");
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    return InTransaction(conn_, [&]() -> faas::Status {
      FAAS_ASSIGN_OR_RETURN(
          Rows r, Exec(conn_, "DELETE FROM settings WHERE kind = $1 AND key = $2", {kind, key}));
      // Nothing deleted, nothing to announce.
      return r.Affected() > 0 ? Announce(kind, key) : faas::OkStatus();
    });
  }

  faas::Result<std::vector<std::pair<std::string, std::string>>> ListSettings(
      std::string_view kind) override {
    if (kind.empty()) {
      return faas::InvalidArgumentError("setting kind is empty");
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
    FAAS_ASSIGN_OR_RETURN(
        Rows r, Exec(conn_, "SELECT key, json FROM settings WHERE kind = $1 ORDER BY key", {kind}));
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(r.Size());
    for (int i = 0; i < r.Count(); ++i) {
      out.emplace_back(r.Text(i, 0), r.Text(i, 1));
    }
    return out;
  }

 private:
  // "<kind>:<key>" on faas_registry, delivered at the caller's COMMIT (change_listener.h).
  faas::Status Announce(std::string_view kind, std::string_view key) {
    return pg::Notify(conn_, kRegistryChannel, std::string(kind) + ":" + std::string(key));
  }

  const std::string url_;
  std::mutex mu_;
  PGconn* conn_ = nullptr;  // guarded by mu_; owned
};

}  // namespace

faas::Result<std::unique_ptr<SettingsStore>> OpenPgSettings(std::string_view url) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    return faas::FailedPreconditionError("the PostgreSQL settings table needs a postgresql:// URL");
  }
  auto s = std::make_unique<PgSettings>(std::string(url));
  FAAS_RETURN_IF_ERROR(s->Open());
  return std::unique_ptr<SettingsStore>(std::move(s));
}

}  // namespace faas::store
