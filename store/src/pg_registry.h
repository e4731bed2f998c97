// Private to store/src: the PostgreSQL backend of the Registry interface (faas/store/registry.h),
// shared by every process of a cluster, with a node-local cache of verified artifacts. libpq is
// included only by pg_registry.cc (docs/design/0016-store-backends.md).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/registry.h"

struct pg_conn;  // libpq's PGconn

namespace faas::store {

// The newest schema this binary knows (pg_schema.cc).
int PgSchemaVersion();

// Thread-safe: one internal mutex serialises one connection. Processes coordinate through the
// database: row locks on the function for versions, an advisory lock for uids and migrations.
class PgRegistry final : public Registry {
 public:
  // Connects with the libpq URI `url`, runs the schema migrations and cleans `cache_dir`
  // (created if missing) of temp files and of libraries the database no longer holds.
  static faas::Result<std::unique_ptr<Registry>> Open(const std::string& url,
                                                      const std::string& cache_dir);
  ~PgRegistry() override;

  faas::Result<std::string> PutArtifact(std::string_view library_bytes) override;
  std::string ArtifactPath(const std::string& sha256_hex) const override;
  faas::Result<std::string> FetchArtifact(const std::string& sha256_hex) const override;
  faas::Result<std::string> CacheArtifact(const std::string& sha256_hex,
                                          std::string_view bytes) const override;
  faas::Result<uint32_t> ReserveUid(std::string_view name) override;
  faas::Result<DeployResult> CreateVersion(std::string_view name,
                                           const std::string& artifact_sha256,
                                           const FunctionConfig& cfg) override;
  faas::Result<std::vector<FunctionRecord>> ListFunctions() override;
  faas::Result<FunctionRecord> GetFunction(std::string_view name) override;
  faas::Result<Version> GetVersion(std::string_view name, uint32_t version) override;
  faas::Result<std::vector<Version>> ListVersions(std::string_view name) override;
  faas::Result<Version> Rollback(std::string_view name, uint32_t version) override;
  faas::Status Delete(std::string_view name) override;
  faas::Result<Route> AddRoute(const Route& route) override;
  faas::Result<std::vector<Route>> ListRoutes() override;
  faas::Status DeleteRoute(std::string_view method, std::string_view path,
                           std::string_view host) override;
  faas::Result<std::pair<ApiKey, std::string>> CreateKey(std::string_view tenant,
                                                         std::vector<std::string> functions,
                                                         double rate_per_sec,
                                                         uint32_t burst) override;
  faas::Result<std::vector<ApiKey>> ListKeys() override;
  faas::Status RevokeKey(std::string_view id) override;

 private:
  PgRegistry(std::string url, std::string cache_dir);
  // Connects, or reconnects after the server went away. Unavailable when it cannot.
  faas::Status ConnectLocked() const;
  faas::Status CleanCacheLocked();
  // FetchArtifact and CacheArtifact: fills the cache from `given` (already checked against the
  // digest) when not null, else from the artifacts table.
  faas::Result<std::string> FillCache(const std::string& sha256_hex,
                                      const std::string_view* given) const;

  const std::string url_;
  const std::string cache_dir_;
  mutable std::mutex mu_;
  mutable pg_conn* conn_ = nullptr;  // guarded by mu_; owned
  // FetchArtifact runs once at a time per digest (a deploy's push and its NOTIFY prefetch ask
  // together): the second caller waits, then finds the first one's verified copy.
  mutable std::mutex fetch_mu_;
  mutable std::condition_variable fetch_done_;
  mutable std::set<std::string> fetching_;  // guarded by fetch_mu_
};

}  // namespace faas::store
