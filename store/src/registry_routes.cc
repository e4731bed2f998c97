// The SQLite routes table: AddRoute, ListRoutes, DeleteRoute. A route names its function but does
// not hold it: it outlives a deleted function (and then answers function_not_found).
#include <mutex>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/base/time.h"
#include "faas/store/config.h"
#include "faas/store/registry.h"

#include "registry_internal.h"
#include "sqlite.h"
#include "sqlite_registry.h"

namespace faas::store {
namespace {

using registry_internal::Log;
using sql::Stmt;

}  // namespace

faas::Result<Route> SqliteRegistry::AddRoute(const Route& route) {
  FAAS_RETURN_IF_ERROR(registry_internal::ValidateRoute(route));
  Route stored = route;
  stored.created_unix_ms = faas::UnixMillisNow();
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db_));
  FAAS_ASSIGN_OR_RETURN(
      Stmt find, Stmt::Prepare(db_,
                               "SELECT function FROM routes WHERE method = ? AND path = ? AND "
                               "host = ?",
                               {route.method, route.path, route.host}));
  FAAS_ASSIGN_OR_RETURN(bool exists, find.Step());
  if (exists) {
    return registry_internal::RouteExists(route, find.Text(0));
  }
  FAAS_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(
          db_,
          "INSERT INTO routes (method, path, host, function, created_unix_ms) "
          "VALUES (?, ?, ?, ?, ?)",
          {stored.method, stored.path, stored.host, stored.function, stored.created_unix_ms}));
  FAAS_RETURN_IF_ERROR(insert.Run());
  FAAS_RETURN_IF_ERROR(txn.Commit());
  Log()->info(faas::log::Format("route.added", {{"method", stored.method},
                                                {"path", stored.path},
                                                {"host", stored.host},
                                                {"fn", stored.function}}));
  return stored;
}

faas::Result<std::vector<Route>> SqliteRegistry::ListRoutes() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(
      Stmt s, Stmt::Prepare(db_,
                            "SELECT method, path, host, function, created_unix_ms FROM routes "
                            "ORDER BY path, method, host"));
  std::vector<Route> out;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return out;
    }
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4)});
  }
}

faas::Status SqliteRegistry::DeleteRoute(std::string_view method, std::string_view path,
                                         std::string_view host) {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(
      Stmt del, Stmt::Prepare(db_, "DELETE FROM routes WHERE method = ? AND path = ? AND host = ?",
                              {method, path, host}));
  FAAS_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) {
    return registry_internal::NoSuchRoute(method, path, host);
  }
  Log()->info(
      faas::log::Format("route.deleted", {{"method", method}, {"path", path}, {"host", host}}));
  return faas::OkStatus();
}

}  // namespace faas::store
