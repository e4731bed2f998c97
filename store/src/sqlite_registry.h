// Private to store/src: the SQLite backend of the Registry interface (faas/store/registry.h),
// one database file and an artifacts/ folder in one data directory. Implemented in registry.cc
// (schema, Open, artifacts, functions, versions), registry_routes.cc and registry_keys.cc.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/registry.h"

struct sqlite3;

namespace faas::store {

// Thread-safe: one internal mutex serialises all access to one SQLite connection.
class SqliteRegistry final : public Registry {
 public:
  // As Registry::Open.
  static faas::Result<std::unique_ptr<Registry>> Open(const std::string& data_dir);
  ~SqliteRegistry() override;

  faas::Result<std::string> PutArtifact(std::string_view library_bytes) override;
  std::string ArtifactPath(const std::string& sha256_hex) const override;
  // Reads the file back and checks its digest (there is no second copy to repair it from).
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
  SqliteRegistry(std::string data_dir, sqlite3* db);
  faas::Result<Version> GetVersionLocked(std::string_view name, uint32_t version);
  faas::Result<FunctionRecord> GetFunctionLocked(std::string_view name);
  // Unlinks those of `candidates` that no version references and no PutArtifact is pending on.
  void CollectGarbageLocked(const std::vector<std::string>& candidates);

  const std::string data_dir_;
  const std::string artifacts_dir_;
  std::mutex mu_;
  sqlite3* db_;                              // guarded by mu_; owned
  std::map<std::string, int> pending_puts_;  // guarded by mu_: put, not yet in a version
};

}  // namespace faas::store
