// The PostgreSQL registry backend: the Registry operations, on the libpq layer of pg.h, with the
// same semantics and error texts as the SQLite backend (registry_internal.h).
// docs/design/0016-store-backends.md explains the design.
#include "pg_registry.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "faas/base/log.h"
#include "faas/base/scope_exit.h"
#include "faas/base/time.h"
#include "faas/store/change_listener.h"
#include "faas/store/config.h"
#include "faas/store/hash.h"

#include "pg.h"
#include "registry_internal.h"

namespace faas::store {
namespace {

using namespace registry_internal;  // NOLINT(google-build-using-namespace): this file's helpers
using pg::Bytes;
using pg::Exec;
using pg::InTransaction;
using pg::kUidLockKey;
using pg::Rows;

// Columns 0..7 of every version query, read by ReadVersion.
#define FAAS_PG_VERSION_COLUMNS                                                             \
  "v.function, v.version, v.content_hash, v.artifact_sha256, v.size_bytes, v.config_json, " \
  "v.created_unix_ms, (SELECT u.uid FROM function_uids u WHERE u.name = v.function)"

// Columns: name, latest_version, created_unix_ms, version count, then the latest version.
#define FAAS_PG_SELECT_FUNCTIONS                                                          \
  "SELECT f.name, f.latest_version, f.created_unix_ms, "                                  \
  "(SELECT COUNT(*) FROM versions c WHERE c.function = f.name), " FAAS_PG_VERSION_COLUMNS \
  " FROM functions f JOIN versions v ON v.function = f.name AND v.version = f.latest_version "

faas::Result<Version> ReadVersion(const Rows& r, int row, int col) {
  return VersionFromColumns(r.Text(row, col), r.Int(row, col + 1), r.Text(row, col + 2),
                            r.Text(row, col + 3), r.Int(row, col + 4), r.Text(row, col + 5),
                            r.Int(row, col + 6), r.Int(row, col + 7));
}

faas::Result<FunctionRecord> ReadRecord(const Rows& r, int row) {
  FunctionRecord rec;
  rec.name = r.Text(row, 0);
  FAAS_ASSIGN_OR_RETURN(rec.latest_version, ToU32(r.Int(row, 1), "latest_version"));
  rec.created_unix_ms = r.Int(row, 2);
  FAAS_ASSIGN_OR_RETURN(rec.version_count, ToU32(r.Int(row, 3), "version count"));
  FAAS_ASSIGN_OR_RETURN(rec.latest, ReadVersion(r, row, 4));
  return rec;
}

faas::Result<ApiKey> ReadKey(const Rows& r, int row) {
  return KeyFromColumns(r.Text(row, 0), r.Text(row, 1), r.Text(row, 2), r.Text(row, 3),
                        r.Int(row, 4), r.Int(row, 5), r.Int(row, 6), r.Text(row, 7));
}

// Gives `name` the next unused uid of the reserved range, once, inside the caller's transaction.
// The advisory lock serialises allocation across every process sharing the database, so two
// gateways never compute the same MAX(uid) + 1.
faas::Result<uint32_t> AllocateUid(PGconn* c, std::string_view name) {
  FAAS_RETURN_IF_ERROR(Exec(c, "SELECT pg_advisory_xact_lock($1::bigint)", {kUidLockKey}).status());
  FAAS_RETURN_IF_ERROR(Exec(c,
                            "INSERT INTO function_uids (name, uid) "
                            "SELECT $1, COALESCE(MAX(uid) + 1, $2::bigint) FROM function_uids "
                            "ON CONFLICT (name) DO NOTHING",
                            {name, int64_t{kFunctionUidBase}})
                           .status());
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(c, "SELECT uid FROM function_uids WHERE name = $1", {name}));
  if (r.Count() != 1 || r.Int(0, 0) < int64_t{kFunctionUidBase} ||
      r.Int(0, 0) >= int64_t{kFunctionUidBase} + int64_t{kFunctionUidCount}) {
    return UidRangeExhausted();
  }
  return static_cast<uint32_t>(r.Int(0, 0));
}

// The version, or why there is none (NoSuchFunction, NoSuchVersion).
faas::Result<Version> GetVersionIn(PGconn* c, std::string_view name, uint32_t version) {
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(c,
                                     "SELECT " FAAS_PG_VERSION_COLUMNS
                                     " FROM versions v WHERE v.function = $1 AND v.version = $2",
                                     {name, int64_t{version}}));
  if (r.Count() == 1) {
    return ReadVersion(r, 0, 0);
  }
  FAAS_ASSIGN_OR_RETURN(Rows fn, Exec(c, "SELECT 1 FROM functions WHERE name = $1", {name}));
  if (fn.Count() == 0) {
    return NoSuchFunction(name);
  }
  return NoSuchVersion(name, version);
}

// Tells every process that follows the registry (faas/store/change_listener.h) that `name` of
// `kind` changed. Called inside the changing transaction: the notice leaves at its COMMIT, and
// never for a change that was rolled back.
faas::Status NotifyChange(PGconn* c, std::string_view kind, std::string_view name) {
  return pg::Notify(c, kRegistryChannel, std::string(kind) + ":" + std::string(name));
}

// "{a,b}": a text[] literal of sha256 digests (hex only, so nothing needs quoting).
std::string DigestArray(const std::vector<std::string>& digests) {
  std::string out = "{";
  for (const std::string& d : digests) {
    if (IsSha256Hex(d)) {
      out += (out.size() > 1 ? "," : "") + d;
    }
  }
  return out + "}";
}

}  // namespace

int PgSchemaVersion() {
  return pg::SchemaVersion();
}

PgRegistry::PgRegistry(std::string url, std::string cache_dir)
    : url_(std::move(url)), cache_dir_(std::move(cache_dir)) {}

PgRegistry::~PgRegistry() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

faas::Status PgRegistry::ConnectLocked() const {
  return pg::Connect(conn_, url_);
}

faas::Status PgRegistry::CleanCacheLocked() {
  // Artifacts no version has used for kArtifactGraceMs (puts of deploys that never finished,
  // or whose function was deleted), then this node's copies of what the database lacks.
  FAAS_RETURN_IF_ERROR(Exec(conn_,
                            "DELETE FROM artifacts a WHERE a.put_unix_ms < $1 AND NOT EXISTS "
                            "(SELECT 1 FROM versions v WHERE v.artifact_sha256 = a.sha256)",
                            {faas::UnixMillisNow() - kArtifactGraceMs})
                           .status());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(cache_dir_, ec)) {
    const std::string file = entry.path().filename().string();
    const std::string_view name = file;
    bool remove = false;
    if (name.size() == 64 + 3 && name.ends_with(".so") && IsSha256Hex(name.substr(0, 64))) {
      FAAS_ASSIGN_OR_RETURN(
          Rows r, Exec(conn_, "SELECT 1 FROM artifacts WHERE sha256 = $1", {name.substr(0, 64)}));
      remove = r.Count() == 0;
    } else if (name.size() > 64 && IsSha256Hex(name.substr(0, 64)) &&
               name.substr(64).starts_with(kTempInfix)) {
      remove = true;
    } else {
      Log()->warn(faas::log::Format("artifact.unexpected_file", {{"path", entry.path().string()}}));
    }
    if (remove && ::unlink(entry.path().c_str()) != 0) {
      const int err = errno;
      Log()->warn(faas::log::Format("artifact.unlink_failed",
                                    {{"path", entry.path().string()}, {"errno", err}}));
    }
  }
  if (ec) {
    return faas::ErrnoError(ec.value(), "opendir", cache_dir_);
  }
  return faas::OkStatus();
}

faas::Result<std::unique_ptr<Registry>> PgRegistry::Open(const std::string& url,
                                                         const std::string& given_cache_dir) {
  // Absolute: artifact paths are handed to workers, which start from / (never the daemon's cwd).
  std::error_code abs_ec;
  const std::string cache_dir =
      std::filesystem::absolute(given_cache_dir, abs_ec).lexically_normal().string();
  if (abs_ec) {
    return faas::ErrnoError(abs_ec.value(), "resolve", given_cache_dir);
  }
  FAAS_RETURN_IF_ERROR(MakeDir(std::filesystem::path(cache_dir).parent_path().string()));
  FAAS_RETURN_IF_ERROR(MakeDir(cache_dir));
  std::unique_ptr<PgRegistry> reg(new PgRegistry(url, cache_dir));
  std::lock_guard<std::mutex> lock(reg->mu_);
  FAAS_RETURN_IF_ERROR(reg->ConnectLocked());
  FAAS_RETURN_IF_ERROR(pg::Migrate(reg->conn_));
  FAAS_RETURN_IF_ERROR(reg->CleanCacheLocked());
  return std::unique_ptr<Registry>(std::move(reg));
}

std::string PgRegistry::ArtifactPath(const std::string& sha256_hex) const {
  faas::Result<std::string> path = FetchArtifact(sha256_hex);
  if (!path.ok()) {
    Log()->error(faas::log::Format("artifact.fetch_failed",
                                   {{"sha256", sha256_hex}, {"error", path.status().message()}}));
    return cache_dir_ + "/" + sha256_hex + ".so";  // holds no file: FetchArtifact removed it
  }
  return std::move(path).value();
}

faas::Result<std::string> PgRegistry::FetchArtifact(const std::string& sha256_hex) const {
  return FillCache(sha256_hex, nullptr);
}

faas::Result<std::string> PgRegistry::CacheArtifact(const std::string& sha256_hex,
                                                    std::string_view bytes) const {
  FAAS_CHECK(IsSha256Hex(sha256_hex));
  // Checked before anything else, even when a good copy is cached already: bytes that do not
  // match their digest are refused, never silently replaced by the cached copy.
  if (std::string got = Sha256Hex(bytes); got != sha256_hex) {
    return CorruptArtifact(sha256_hex, "the bytes given hash to " + got);
  }
  return FillCache(sha256_hex, &bytes);
}

faas::Result<std::string> PgRegistry::FillCache(const std::string& sha256_hex,
                                                const std::string_view* given) const {
  FAAS_CHECK(IsSha256Hex(sha256_hex));  // names come only from digests, never from user input
  const std::string path = cache_dir_ + "/" + sha256_hex + ".so";
  {
    std::unique_lock<std::mutex> wait(fetch_mu_);
    fetch_done_.wait(wait, [&] { return !fetching_.contains(sha256_hex); });
    fetching_.insert(sha256_hex);
  }
  faas::ScopeExit fetched([&] {
    {
      std::lock_guard<std::mutex> lock(fetch_mu_);
      fetching_.erase(sha256_hex);
    }
    fetch_done_.notify_all();
  });
  faas::Status cached = VerifyArtifactFile(path, sha256_hex);
  if (cached.ok()) {
    return path;
  }
  if (cached.code() != faas::StatusCode::kNotFound) {
    // A damaged copy (or one we cannot read): never hand it out; fetch it again.
    Log()->warn(faas::log::Format("artifact.cache_invalid",
                                  {{"sha256", sha256_hex}, {"error", cached.message()}}));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return faas::ErrnoError(errno, "unlink", path);
    }
  }
  if (given != nullptr) {
    FAAS_RETURN_IF_ERROR(WriteReadOnlyFileAtomic(cache_dir_, path, *given, Durability::kCache));
    if (faas::Status written = VerifyArtifactFile(path, sha256_hex); !written.ok()) {
      ::unlink(path.c_str());
      return written;
    }
    Log()->info(
        faas::log::Format("artifact.received", {{"sha256", sha256_hex}, {"bytes", given->size()}}));
    return path;
  }
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_, "SELECT bytes FROM artifacts WHERE sha256 = $1",
                                       {std::string_view(sha256_hex)}, /*binary_result=*/true));
    if (r.Count() == 0) {
      return ArtifactNotStored(sha256_hex);
    }
    bytes = r.Text(0, 0);
  }
  if (std::string got = Sha256Hex(bytes); got != sha256_hex) {
    return CorruptArtifact(sha256_hex, "the stored bytes hash to " + got);
  }
  FAAS_RETURN_IF_ERROR(WriteReadOnlyFileAtomic(cache_dir_, path, bytes, Durability::kCache));
  // Read back what the disk holds now, before anyone loads it.
  if (faas::Status written = VerifyArtifactFile(path, sha256_hex); !written.ok()) {
    ::unlink(path.c_str());
    return written;
  }
  Log()->info(
      faas::log::Format("artifact.fetched", {{"sha256", sha256_hex}, {"bytes", bytes.size()}}));
  return path;
}

faas::Result<std::string> PgRegistry::PutArtifact(std::string_view library_bytes) {
  FAAS_RETURN_IF_ERROR(CheckArtifactSize(library_bytes.size()));
  const std::string hex = Sha256Hex(library_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    // Stored already (content-addressed): only mark it recently put, without resending it.
    FAAS_ASSIGN_OR_RETURN(Rows touched,
                          Exec(conn_, "UPDATE artifacts SET put_unix_ms = $2 WHERE sha256 = $1",
                               {std::string_view(hex), faas::UnixMillisNow()}));
    if (touched.Affected() == 0) {
      // The row's bytes are compressed with lz4, not PostgreSQL's default pglz: pglz spends
      // ~25 ms on a MiB it then fails to shrink, and ~200 ms on a 4.7 MB library it halves,
      // where lz4 takes ~1 and ~3 ms more than storing it raw (docs/design/0030, "Rollout").
      // A server built without lz4 refuses the setting; the put goes on with pglz.
      if (auto lz4 = Exec(conn_, "SELECT set_config('default_toast_compression', 'lz4', false)");
          !lz4.ok()) {
        Log()->debug(
            faas::log::Format("artifact.lz4_unavailable", {{"error", lz4.status().message()}}));
      }
      FAAS_RETURN_IF_ERROR(
          Exec(conn_,
               "INSERT INTO artifacts (sha256, size_bytes, bytes, put_unix_ms) "
               "VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO UPDATE SET put_unix_ms = "
               "EXCLUDED.put_unix_ms",
               {std::string_view(hex), static_cast<int64_t>(library_bytes.size()),
                Bytes{library_bytes}, faas::UnixMillisNow()})
              .status());
      Log()->info(
          faas::log::Format("artifact.stored", {{"sha256", hex}, {"bytes", library_bytes.size()}}));
    }
  }
  // This node is about to load it (the deploy's probe): keep a copy instead of fetching it back.
  const std::string path = cache_dir_ + "/" + hex + ".so";
  if (!VerifyArtifactFile(path, hex).ok()) {
    FAAS_RETURN_IF_ERROR(
        WriteReadOnlyFileAtomic(cache_dir_, path, library_bytes, Durability::kCache));
  }
  return hex;
}

faas::Result<uint32_t> PgRegistry::ReserveUid(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  return InTransaction(conn_, [&] { return AllocateUid(conn_, name); });
}

faas::Result<DeployResult> PgRegistry::CreateVersion(std::string_view name,
                                                     const std::string& artifact_sha256,
                                                     const FunctionConfig& cfg) {
  FAAS_RETURN_IF_ERROR(ValidateDeploy(name, artifact_sha256, cfg));
  const std::string config_json = ConfigToJson(cfg);
  const std::string content_hash = ContentHash(artifact_sha256, config_json);
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  faas::Result<DeployResult> out = InTransaction(conn_, [&]() -> faas::Result<DeployResult> {
    // Refreshing put_unix_ms makes a concurrent garbage collection (which deletes only rows
    // older than the grace period, re-checked on the newest row version) leave it alone.
    FAAS_ASSIGN_OR_RETURN(Rows art,
                          Exec(conn_,
                               "UPDATE artifacts SET put_unix_ms = GREATEST(put_unix_ms, $2) "
                               "WHERE sha256 = $1 RETURNING size_bytes",
                               {std::string_view(artifact_sha256), faas::UnixMillisNow()}));
    if (art.Count() == 0) {
      return ArtifactNotStored(artifact_sha256);
    }
    const int64_t size = art.Int(0, 0);
    FAAS_RETURN_IF_ERROR(Exec(conn_,
                              "INSERT INTO functions (name, latest_version, created_unix_ms, "
                              "next_version) VALUES ($1, 0, $2, 1) "
                              "ON CONFLICT (name) DO NOTHING",
                              {name, faas::UnixMillisNow()})
                             .status());
    // The row lock serialises deploys of one name across every process: the second waits
    // here and then reads the first's next_version.
    FAAS_ASSIGN_OR_RETURN(Rows fn,
                          Exec(conn_,
                               "SELECT latest_version, next_version FROM functions WHERE name = $1 "
                               "FOR UPDATE",
                               {name}));
    if (fn.Count() == 0) {
      // Deleted between our insert and the lock: run the whole deploy again.
      return faas::AbortedError("function " + Quote(name) + " was deleted concurrently");
    }
    FAAS_ASSIGN_OR_RETURN(uint32_t latest_number, ToU32(fn.Int(0, 0), "latest_version"));
    const int64_t next = fn.Int(0, 1);
    if (latest_number != 0) {
      FAAS_ASSIGN_OR_RETURN(Version latest, GetVersionIn(conn_, name, latest_number));
      if (latest.content_hash == content_hash) {
        return DeployResult{std::move(latest), true};
      }
    }
    if (next < 1 || next > int64_t{UINT32_MAX}) {
      return VersionsExhausted(name);
    }
    FAAS_ASSIGN_OR_RETURN(uint32_t uid, AllocateUid(conn_, name));
    Version v = NewVersion(name, static_cast<uint32_t>(next), content_hash, artifact_sha256,
                           static_cast<uint64_t>(size < 0 ? 0 : size), cfg, uid);
    FAAS_RETURN_IF_ERROR(
        Exec(conn_,
             "INSERT INTO versions (function, version, content_hash, artifact_sha256, "
             "size_bytes, config_json, created_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
             {name, int64_t{v.version}, std::string_view(v.content_hash),
              std::string_view(v.artifact_sha256), static_cast<int64_t>(v.size_bytes),
              std::string_view(config_json), v.created_unix_ms})
            .status());
    FAAS_RETURN_IF_ERROR(Exec(conn_,
                              "UPDATE functions SET latest_version = $1, next_version = $2 "
                              "WHERE name = $3",
                              {int64_t{v.version}, next + 1, name})
                             .status());
    FAAS_RETURN_IF_ERROR(NotifyChange(conn_, "function", name));
    return DeployResult{std::move(v), false};
  });
  if (out.ok() && !out->unchanged) {
    LogVersionCreated(out->version);
  }
  return out;
}

faas::Result<std::vector<FunctionRecord>> PgRegistry::ListFunctions() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_, FAAS_PG_SELECT_FUNCTIONS "ORDER BY f.name"));
  std::vector<FunctionRecord> out;
  out.reserve(r.Size());
  for (int i = 0; i < r.Count(); ++i) {
    FAAS_ASSIGN_OR_RETURN(FunctionRecord rec, ReadRecord(r, i));
    out.push_back(std::move(rec));
  }
  return out;
}

faas::Result<FunctionRecord> PgRegistry::GetFunction(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_, FAAS_PG_SELECT_FUNCTIONS "WHERE f.name = $1", {name}));
  if (r.Count() == 0) {
    return NoSuchFunction(name);
  }
  return ReadRecord(r, 0);
}

faas::Result<Version> PgRegistry::GetVersion(std::string_view name, uint32_t version) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  return GetVersionIn(conn_, name, version);
}

faas::Result<std::vector<Version>> PgRegistry::ListVersions(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  // One statement, one snapshot: the function and its versions as of the same moment.
  FAAS_ASSIGN_OR_RETURN(Rows r,
                        Exec(conn_,
                             "SELECT " FAAS_PG_VERSION_COLUMNS
                             " FROM functions f LEFT JOIN versions v ON v.function = f.name "
                             "WHERE f.name = $1 ORDER BY v.version",
                             {name}));
  if (r.Count() == 0) {
    return NoSuchFunction(name);
  }
  std::vector<Version> out;
  out.reserve(r.Size());
  for (int i = 0; i < r.Count(); ++i) {
    if (r.Text(i, 0).empty()) {
      continue;  // the LEFT JOIN's row of a function without versions (never committed so)
    }
    FAAS_ASSIGN_OR_RETURN(Version v, ReadVersion(r, i, 0));
    out.push_back(std::move(v));
  }
  return out;
}

faas::Result<Version> PgRegistry::Rollback(std::string_view name, uint32_t version) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  faas::Result<Version> out = InTransaction(conn_, [&]() -> faas::Result<Version> {
    FAAS_ASSIGN_OR_RETURN(
        Rows locked, Exec(conn_, "SELECT 1 FROM functions WHERE name = $1 FOR UPDATE", {name}));
    if (locked.Count() == 0) {
      return NoSuchFunction(name);
    }
    FAAS_ASSIGN_OR_RETURN(Version v, GetVersionIn(conn_, name, version));
    FAAS_RETURN_IF_ERROR(Exec(conn_, "UPDATE functions SET latest_version = $1 WHERE name = $2",
                              {int64_t{version}, name})
                             .status());
    FAAS_RETURN_IF_ERROR(NotifyChange(conn_, "function", name));
    return v;
  });
  if (out.ok()) {
    Log()->info(
        faas::log::Format("version.rollback", {{"fn", out->function}, {"version", out->version}}));
  }
  return out;
}

faas::Status PgRegistry::Delete(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  faas::Result<std::vector<std::string>> removed =
      InTransaction(conn_, [&]() -> faas::Result<std::vector<std::string>> {
        FAAS_ASSIGN_OR_RETURN(
            Rows used,
            Exec(conn_, "SELECT DISTINCT artifact_sha256 FROM versions WHERE function = $1",
                 {name}));
        std::vector<std::string> candidates;
        candidates.reserve(used.Size());
        for (int i = 0; i < used.Count(); ++i) {
          candidates.push_back(used.Text(i, 0));
        }
        FAAS_ASSIGN_OR_RETURN(Rows del,
                              Exec(conn_, "DELETE FROM functions WHERE name = $1", {name}));
        if (del.Affected() == 0) {
          return NoSuchFunction(name);
        }
        FAAS_RETURN_IF_ERROR(NotifyChange(conn_, "function", name));
        // Only artifacts past the grace period: another gateway may have just put one of them
        // for a deploy it has not created yet.
        FAAS_ASSIGN_OR_RETURN(
            Rows gone,
            Exec(conn_,
                 "DELETE FROM artifacts a WHERE a.sha256 = ANY($1::text[]) AND a.put_unix_ms < $2 "
                 "AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.artifact_sha256 = a.sha256) "
                 "RETURNING a.sha256",
                 {std::string_view(DigestArray(candidates)),
                  faas::UnixMillisNow() - kArtifactGraceMs}));
        std::vector<std::string> out;
        out.reserve(gone.Size());
        for (int i = 0; i < gone.Count(); ++i) {
          out.push_back(gone.Text(i, 0));
        }
        return out;
      });
  if (!removed.ok()) {
    return removed.status();
  }
  Log()->info(faas::log::Format("function.deleted", {{"fn", name}}));
  for (const std::string& sha : *removed) {
    if (!IsSha256Hex(sha)) {
      continue;
    }
    const std::string path = cache_dir_ + "/" + sha + ".so";
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      Log()->warn(faas::log::Format("artifact.unlink_failed", {{"path", path}, {"errno", err}}));
    }
    Log()->info(faas::log::Format("artifact.removed", {{"sha256", sha}}));
  }
  return faas::OkStatus();
}

faas::Result<Route> PgRegistry::AddRoute(const Route& route) {
  FAAS_RETURN_IF_ERROR(ValidateRoute(route));
  Route stored = route;
  stored.created_unix_ms = faas::UnixMillisNow();
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  faas::Result<Route> out = InTransaction(conn_, [&]() -> faas::Result<Route> {
    // The primary key decides between concurrent adds of one key; the loser reports the winner.
    FAAS_ASSIGN_OR_RETURN(
        Rows added, Exec(conn_,
                         "INSERT INTO routes (method, path, host, function, created_unix_ms) "
                         "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (method, path, host) DO NOTHING",
                         {std::string_view(stored.method), std::string_view(stored.path),
                          std::string_view(stored.host), std::string_view(stored.function),
                          stored.created_unix_ms}));
    if (added.Affected() == 1) {
      FAAS_RETURN_IF_ERROR(NotifyChange(conn_, "route", stored.method + " " + stored.path));
      return stored;
    }
    FAAS_ASSIGN_OR_RETURN(
        Rows found,
        Exec(conn_, "SELECT function FROM routes WHERE method = $1 AND path = $2 AND host = $3",
             {std::string_view(route.method), std::string_view(route.path),
              std::string_view(route.host)}));
    if (found.Count() == 0) {
      return faas::AbortedError("route " + RouteName(route.method, route.path, route.host) +
                                " was deleted concurrently");  // retried by InTransaction
    }
    return RouteExists(route, found.Text(0, 0));
  });
  if (out.ok()) {
    Log()->info(faas::log::Format("route.added", {{"method", stored.method},
                                                  {"path", stored.path},
                                                  {"host", stored.host},
                                                  {"fn", stored.function}}));
  }
  return out;
}

faas::Result<std::vector<Route>> PgRegistry::ListRoutes() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_,
                                     "SELECT method, path, host, function, created_unix_ms "
                                     "FROM routes ORDER BY path, method, host"));
  std::vector<Route> out;
  out.reserve(r.Size());
  for (int i = 0; i < r.Count(); ++i) {
    out.push_back({r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Int(i, 4)});
  }
  return out;
}

faas::Status PgRegistry::DeleteRoute(std::string_view method, std::string_view path,
                                     std::string_view host) {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  // One statement: the notice goes only with a deletion, and in its transaction.
  FAAS_ASSIGN_OR_RETURN(Rows del,
                        Exec(conn_,
                             "WITH gone AS (DELETE FROM routes WHERE method = $1 AND path = $2 AND "
                             "host = $3 RETURNING method, path) SELECT pg_notify($4, "
                             "left('route:' || method || ' ' || path, 7000)) FROM gone",
                             {method, path, host, kRegistryChannel}));
  if (del.Count() == 0) {
    return NoSuchRoute(method, path, host);
  }
  Log()->info(
      faas::log::Format("route.deleted", {{"method", method}, {"path", path}, {"host", host}}));
  return faas::OkStatus();
}

faas::Result<std::pair<ApiKey, std::string>> PgRegistry::CreateKey(
    std::string_view tenant, std::vector<std::string> functions, double rate_per_sec,
    uint32_t burst) {
  FAAS_ASSIGN_OR_RETURN(NewKey made, PrepareKey(tenant, std::move(functions), rate_per_sec, burst));
  ApiKey& key = made.key;
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  const std::string rate = FormatRate(key.rate_per_sec);
  for (int attempt = 0; key.id.empty(); ++attempt) {
    if (attempt == kMaxKeyIdAttempts) {
      return NoUnusedKeyId();
    }
    FAAS_ASSIGN_OR_RETURN(std::string id, RandomKeyId());
    FAAS_ASSIGN_OR_RETURN(
        Rows added,
        Exec(conn_,
             "WITH added AS (INSERT INTO api_keys (id, tenant, functions, rate_per_sec, burst, "
             "created_unix_ms, revoked_unix_ms, secret_sha256) VALUES ($1, $2, $3, $4, $5, $6, "
             "0, $7) ON CONFLICT (id) DO NOTHING RETURNING id) "
             "SELECT pg_notify($8, 'key:' || id) FROM added",
             {std::string_view(id), std::string_view(key.tenant),
              std::string_view(made.functions_text), std::string_view(rate), int64_t{key.burst},
              key.created_unix_ms, std::string_view(key.secret_sha256), kRegistryChannel}));
    if (added.Count() == 1) {
      key.id = std::move(id);
    }
  }
  return KeyCreated(std::move(made));
}

faas::Result<std::vector<ApiKey>> PgRegistry::ListKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(Rows r, Exec(conn_,
                                     "SELECT id, tenant, functions, rate_per_sec, burst, "
                                     "created_unix_ms, revoked_unix_ms, secret_sha256 "
                                     "FROM api_keys ORDER BY created_unix_ms, id"));
  std::vector<ApiKey> out;
  out.reserve(r.Size());
  for (int i = 0; i < r.Count(); ++i) {
    FAAS_ASSIGN_OR_RETURN(ApiKey k, ReadKey(r, i));
    out.push_back(std::move(k));
  }
  return out;
}

faas::Status PgRegistry::RevokeKey(std::string_view id) {
  if (!IsKeyId(id)) {
    return InvalidKeyId();
  }
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  // One statement: gateways hear of the revocation as it commits (the notice is in its
  // transaction) and drop the key from their tables.
  FAAS_ASSIGN_OR_RETURN(Rows updated,
                        Exec(conn_,
                             "WITH revoked AS (UPDATE api_keys SET revoked_unix_ms = $1 "
                             "WHERE id = $2 AND revoked_unix_ms = 0 RETURNING id) "
                             "SELECT pg_notify($3, 'key:' || id) FROM revoked",
                             {faas::UnixMillisNow(), id, kRegistryChannel}));
  if (updated.Count() == 0) {
    FAAS_ASSIGN_OR_RETURN(Rows found, Exec(conn_, "SELECT 1 FROM api_keys WHERE id = $1", {id}));
    if (found.Count() == 0) {
      return NoSuchKey(id);
    }
    return faas::OkStatus();  // already revoked
  }
  Log()->info(faas::log::Format("key.revoked", {{"key", id}}));
  return faas::OkStatus();
}

}  // namespace faas::store
