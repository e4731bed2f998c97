// Small durable definitions by (kind, key): JSON text that other components keep so that it
// survives a restart, today the queue triggers' definitions (kind "trigger", faas/triggers/
// triggers.h) and the gateway's internal async triggers (kind "internal"). Two backends:
//   - the embedded queue's SQLite file (Queue::Settings(), queue.db), for `--role all` on SQLite;
//   - PostgreSQL (OpenPgSettings), for a cluster: the definitions live with the registry, not in
//     Redis, so a Redis flush or restart without persistence loses no trigger, and a change is
//     announced in its own transaction with NOTIFY faas_registry "<kind>:<key>"
//     (docs/design/0029-trigger-definitions.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto s, faas::store::OpenPgSettings("postgresql:///faas"));
//   FAAS_RETURN_IF_ERROR(s->PutSetting("trigger", "orders", R"({"name":"orders",...})"));
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"

namespace faas::store {

// Thread-safe. Put replaces; deleting a missing key is not an error; List is sorted by key
// (bytewise). InvalidArgument for an empty kind or key, or a value that is not JSON; Unavailable
// when the backend cannot be reached.
class SettingsStore {
 public:
  virtual ~SettingsStore() = default;
  SettingsStore(const SettingsStore&) = delete;
  SettingsStore& operator=(const SettingsStore&) = delete;

  virtual Status PutSetting(std::string_view kind, std::string_view key, std::string_view json) = 0;
  virtual Status DeleteSetting(std::string_view kind, std::string_view key) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> ListSettings(
      std::string_view kind) = 0;

 protected:
  SettingsStore() = default;
};

// The arguments' problems for PutSetting ("" when none), shared by the backends so that they
// answer the same InvalidArgument.
std::string SettingProblems(std::string_view kind, std::string_view key, std::string_view json);

// The settings table of the PostgreSQL store at `url` (postgres:// or postgresql://), with its
// own connection; brings the schema up to date like every PostgreSQL part. FailedPrecondition
// for another kind of store.
Result<std::unique_ptr<SettingsStore>> OpenPgSettings(std::string_view url);

}  // namespace faas::store
