// The embedded settings table (faas/store/settings.h): small JSON documents by (kind, key) that
// other components keep in queue.db so they survive a restart.
#include <mutex>

#include <nlohmann/json.hpp>

#include "faas/store/queue.h"
#include "faas/store/settings.h"

#include "queue_internal.h"
#include "sqlite.h"

namespace faas::store {
namespace {

using Json = nlohmann::json;
using queue_internal::Quote;
using sql::Stmt;

}  // namespace

std::string SettingProblems(std::string_view kind, std::string_view key, std::string_view json) {
  std::string problems;
  if (kind.empty()) {
    problems += "setting kind is empty; ";
  }
  if (key.empty()) {
    problems += "setting key is empty; ";
  }
  if (!Json::accept(json)) {
    problems += "setting " + Quote(key) + " is not valid JSON; ";
  }
  if (!problems.empty()) {
    problems.resize(problems.size() - 2);
  }
  return problems;
}

Status SqliteQueue::PutSetting(std::string_view kind, std::string_view key, std::string_view json) {
  if (std::string problems = SettingProblems(kind, key, json); !problems.empty()) {
    return InvalidArgumentError(problems);
  }
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(Stmt st, Stmt::Prepare(db,
                                                 "INSERT OR REPLACE INTO settings(kind, key, json)"
                                                 " VALUES (?1, ?2, ?3)",
                                                 {kind, key, json}));
    return st.Run();
  };
  return impl_->Write(op);
}

Status SqliteQueue::DeleteSetting(std::string_view kind, std::string_view key) {
  if (kind.empty() || key.empty()) {
    return InvalidArgumentError(kind.empty() ? "setting kind is empty" : "setting key is empty");
  }
  auto op = [&](sqlite3* db) -> Status {
    FAAS_ASSIGN_OR_RETURN(
        Stmt st,
        Stmt::Prepare(db, "DELETE FROM settings WHERE kind = ?1 AND key = ?2", {kind, key}));
    return st.Run();
  };
  return impl_->Write(op);
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteQueue::ListSettings(
    std::string_view kind) {
  if (kind.empty()) {
    return InvalidArgumentError("setting kind is empty");
  }
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      Stmt st,
      Stmt::Prepare(impl_->db, "SELECT key, json FROM settings WHERE kind = ?1 ORDER BY key",
                    {kind}));
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) {
      return out;
    }
    out.emplace_back(st.Text(0), st.Text(1));
  }
}

}  // namespace faas::store
