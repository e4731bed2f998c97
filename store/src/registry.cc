// The SQLite registry's schema and Open, content-addressed artifacts, functions and their
// versions, and the garbage collection of unused artifacts; the helpers both backends share
// (registry_internal.h) and OpenRegistry, which picks a backend. Routes are in
// registry_routes.cc, API keys in registry_keys.cc, the PostgreSQL backend in pg_registry.cc.
#include "faas/store/registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/scope_exit.h"
#include "faas/base/text.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"
#include "faas/store/elf_check.h"
#include "faas/store/hash.h"

#include "pg_registry.h"
#include "registry_internal.h"
#include "sqlite.h"
#include "sqlite_registry.h"

namespace faas::store {

namespace registry_internal {

std::shared_ptr<spdlog::logger> Log() {
  static auto log = faas::log::Get("store");
  return log;
}

std::string Quote(std::string_view s) {
  return faas::QuoteForMessage(s);
}

faas::Status NoSuchFunction(std::string_view name) {
  return faas::NotFoundError("function " + Quote(name) + " does not exist");
}

faas::Status NoSuchVersion(std::string_view name, uint32_t version) {
  return faas::NotFoundError("function " + Quote(name) + " has no version " +
                             std::to_string(version));
}

faas::Status ArtifactNotStored(std::string_view sha256_hex) {
  return faas::NotFoundError("artifact " + std::string(sha256_hex) + " is not stored");
}

faas::Status CheckArtifactSize(std::size_t size) {
  if (size > kMaxLibraryBytes) {
    return faas::ResourceExhaustedError("artifact is " + std::to_string(size) +
                                        " bytes, above the " +
                                        std::to_string(kMaxLibraryBytes >> 20) + " MiB limit");
  }
  return faas::OkStatus();
}

faas::Status UidRangeExhausted() {
  return faas::ResourceExhaustedError(
      "every uid of the functions' range " + std::to_string(kFunctionUidBase) + ".." +
      std::to_string(kFunctionUidBase + kFunctionUidCount - 1) + " is taken");
}

faas::Status VersionsExhausted(std::string_view name) {
  return faas::ResourceExhaustedError("function " + Quote(name) + " has used all version numbers");
}

Version NewVersion(std::string_view name, uint32_t number, std::string content_hash,
                   std::string artifact_sha256, uint64_t size_bytes, const FunctionConfig& cfg,
                   uint32_t uid) {
  Version v;
  v.function = std::string(name);
  v.version = number;
  v.content_hash = std::move(content_hash);
  v.artifact_sha256 = std::move(artifact_sha256);
  v.size_bytes = size_bytes;
  v.created_unix_ms = faas::UnixMillisNow();
  v.config = cfg;
  v.uid = uid;
  return v;
}

void LogVersionCreated(const Version& v) {
  Log()->info(faas::log::Format(
      "version.created",
      {{"fn", v.function}, {"version", v.version}, {"sha256", v.artifact_sha256}}));
}

faas::Status ValidateDeploy(std::string_view name, const std::string& artifact_sha256,
                            const FunctionConfig& cfg) {
  std::string problems;
  for (const faas::Status& s : {ValidateName(name), ValidateConfig(cfg)}) {
    if (!s.ok()) {
      problems += (problems.empty() ? "" : "; ") + s.message();
    }
  }
  if (!IsSha256Hex(artifact_sha256)) {
    problems += (problems.empty() ? "" : "; ") + std::string("artifact ") +
                Quote(artifact_sha256.substr(0, 80)) + " is not a sha256 hex digest";
  }
  if (!problems.empty()) {
    return faas::InvalidArgumentError(problems);
  }
  return faas::OkStatus();
}

std::string ContentHash(const std::string& artifact_sha256, const std::string& config_json) {
  return Sha256Hex(artifact_sha256 + "\n" + config_json);
}

faas::Result<uint32_t> ToU32(int64_t v, std::string_view what) {
  if (v < 0 || v > int64_t{UINT32_MAX}) {
    return faas::InternalError("registry database holds an invalid " + std::string(what) + " " +
                               std::to_string(v));
  }
  return static_cast<uint32_t>(v);
}

faas::Result<Version> VersionFromColumns(std::string function, int64_t version,
                                         std::string content_hash, std::string artifact_sha256,
                                         int64_t size_bytes, const std::string& config_json,
                                         int64_t created_unix_ms, int64_t uid) {
  Version v;
  v.function = std::move(function);
  FAAS_ASSIGN_OR_RETURN(v.version, ToU32(version, "version"));
  v.content_hash = std::move(content_hash);
  v.artifact_sha256 = std::move(artifact_sha256);
  v.size_bytes = static_cast<uint64_t>(size_bytes < 0 ? 0 : size_bytes);
  faas::Result<FunctionConfig> cfg = ConfigFromJson(config_json);
  if (!cfg.ok()) {
    return faas::InternalError("stored config of " + v.function + " version " +
                               std::to_string(v.version) +
                               " is corrupt: " + cfg.status().message());
  }
  v.config = std::move(cfg).value();
  v.created_unix_ms = created_unix_ms;
  FAAS_ASSIGN_OR_RETURN(v.uid, ToU32(uid, "uid"));
  if (!IsSha256Hex(v.artifact_sha256)) {
    return faas::InternalError("stored artifact digest of " + v.function + " version " +
                               std::to_string(v.version) + " is not a sha256 hex digest");
  }
  return v;
}

faas::Status ValidateRoute(const Route& route) {
  std::string problems;
  if (route.method.empty()) {
    problems += "method must not be empty";
  }
  if (route.path.empty()) {
    problems += (problems.empty() ? "" : "; ") + std::string("path must not be empty");
  }
  if (faas::Status s = ValidateName(route.function); !s.ok()) {
    problems += (problems.empty() ? "" : "; ") + s.message();
  }
  if (!problems.empty()) {
    return faas::InvalidArgumentError(problems);
  }
  return faas::OkStatus();
}

std::string RouteName(std::string_view method, std::string_view path, std::string_view host) {
  std::string out = Quote(method).substr(1);
  out.pop_back();  // Quote's closing '"'
  out += " " + Quote(path);
  if (!host.empty()) {
    out += " for host " + Quote(host);
  }
  return out;
}

faas::Status RouteExists(const Route& route, std::string_view existing_function) {
  return faas::AlreadyExistsError("route " + RouteName(route.method, route.path, route.host) +
                                  " already exists (to " + Quote(existing_function) + ")");
}

faas::Status NoSuchRoute(std::string_view method, std::string_view path, std::string_view host) {
  return faas::NotFoundError("no route " + RouteName(method, path, host));
}

faas::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
    return faas::ErrnoError(errno, "mkdir", path);
  }
  return faas::OkStatus();
}

namespace {

// Makes a rename in `dir` durable (rename(2) is atomic but not durable until the directory
// itself is synced; fsync(2) NOTES).
faas::Status FsyncDir(const std::string& dir) {
  faas::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.Valid()) {
    return faas::ErrnoError(errno, "open", dir);
  }
  if (::fsync(fd.Get()) != 0) {
    return faas::ErrnoError(errno, "fsync", dir);
  }
  return faas::OkStatus();
}

}  // namespace

// Like faas::WriteFileAtomic, but the file is read-only (0444) from creation and the temp name
// is unique per call, so concurrent puts of the same content cannot collide.
faas::Status WriteReadOnlyFileAtomic(const std::string& dir, const std::string& path,
                                     std::string_view data, Durability durability) {
  const bool synced = durability == Durability::kSynced;
  static std::atomic<uint64_t> counter{0};
  std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  faas::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.Valid()) {
    return faas::ErrnoError(errno, "open", tmp);
  }
  faas::ScopeExit remove_tmp([&] { ::unlink(tmp.c_str()); });
  FAAS_RETURN_IF_ERROR(faas::WriteAll(fd.Get(), data));
  if (synced && ::fsync(fd.Get()) != 0) {
    return faas::ErrnoError(errno, "fsync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return faas::ErrnoError(errno, "rename", path);
  }
  remove_tmp.Cancel();
  return synced ? FsyncDir(dir) : faas::OkStatus();
}

faas::Status CorruptArtifact(std::string_view sha256_hex, std::string_view what) {
  return faas::InternalError("artifact " + std::string(sha256_hex) +
                             " is corrupt: " + std::string(what));
}

faas::Status VerifyArtifactFile(const std::string& path, const std::string& sha256_hex) {
  faas::Result<std::string> bytes = faas::ReadFile(path, kMaxLibraryBytes);
  if (!bytes.ok()) {
    if (bytes.status().code() == faas::StatusCode::kNotFound) {
      return ArtifactNotStored(sha256_hex);
    }
    return bytes.status();
  }
  if (std::string got = Sha256Hex(*bytes); got != sha256_hex) {
    return CorruptArtifact(sha256_hex, path + " hashes to " + got);
  }
  return faas::OkStatus();
}

}  // namespace registry_internal

namespace {

using namespace registry_internal;  // NOLINT(google-build-using-namespace): this file's helpers
using sql::Stmt;

// versions.function is a foreign key, so deleting a function row deletes its versions.
// function_uids is not: a name keeps its uid after a delete, and no uid is ever given to another
// name (kFunctionUidBase.., allocated in order).
// routes.function is not: a route outlives its function (and answers function_not_found).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS functions (
  name            TEXT PRIMARY KEY NOT NULL,
  latest_version  INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  next_version    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version         INTEGER NOT NULL,
  content_hash    TEXT NOT NULL,
  artifact_sha256 TEXT NOT NULL,
  size_bytes      INTEGER NOT NULL,
  config_json     TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  PRIMARY KEY (function, version)
);
CREATE INDEX IF NOT EXISTS versions_by_artifact ON versions(artifact_sha256);
CREATE TABLE IF NOT EXISTS function_uids (
  name            TEXT PRIMARY KEY NOT NULL,
  uid             INTEGER NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS routes (
  method          TEXT NOT NULL,
  path            TEXT NOT NULL,
  host            TEXT NOT NULL,
  function        TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  PRIMARY KEY (method, path, host)
);
CREATE TABLE IF NOT EXISTS api_keys (
  id              TEXT PRIMARY KEY NOT NULL,
  tenant          TEXT NOT NULL,
  functions       TEXT NOT NULL,
  rate_per_sec    TEXT NOT NULL,
  burst           INTEGER NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  revoked_unix_ms INTEGER NOT NULL,
  secret_sha256   TEXT NOT NULL
);
)sql";
// api_keys.functions: the sorted names joined by ',' ('' = all functions; names cannot contain
// ','). api_keys.rate_per_sec: the shortest decimal that reads back as the same double
// (std::to_chars), since sql::Param has no floating-point type. The secret itself is never
// stored, only secret_sha256 = Sha256Hex(secret).

// Columns 0..6 of every version query, read by ReadVersion.
#define FAAS_VERSION_COLUMNS                                                                \
  "v.function, v.version, v.content_hash, v.artifact_sha256, v.size_bytes, v.config_json, " \
  "v.created_unix_ms, (SELECT u.uid FROM function_uids u WHERE u.name = v.function)"
faas::Result<Version> ReadVersion(const Stmt& s, int col) {
  return VersionFromColumns(s.Text(col), s.Int(col + 1), s.Text(col + 2), s.Text(col + 3),
                            s.Int(col + 4), s.Text(col + 5), s.Int(col + 6), s.Int(col + 7));
}

// Columns: name, latest_version, created_unix_ms, version count, then the latest version.
#define FAAS_SELECT_FUNCTIONS                                                          \
  "SELECT f.name, f.latest_version, f.created_unix_ms, "                               \
  "(SELECT COUNT(*) FROM versions c WHERE c.function = f.name), " FAAS_VERSION_COLUMNS \
  " FROM functions f JOIN versions v ON v.function = f.name AND v.version = f.latest_version "

// Gives `name` the next unused uid of the reserved range, once (inside the caller's transaction).
faas::Result<uint32_t> AllocateUid(sqlite3* db, std::string_view name) {
  FAAS_ASSIGN_OR_RETURN(Stmt insert,
                        Stmt::Prepare(db,
                                      "INSERT OR IGNORE INTO function_uids (name, uid) "
                                      "SELECT ?, COALESCE(MAX(uid) + 1, ?) FROM function_uids",
                                      {name, int64_t{kFunctionUidBase}}));
  FAAS_RETURN_IF_ERROR(insert.Run());
  FAAS_ASSIGN_OR_RETURN(Stmt uid,
                        Stmt::Prepare(db, "SELECT uid FROM function_uids WHERE name = ?", {name}));
  FAAS_ASSIGN_OR_RETURN(bool row, uid.Step());
  if (!row || uid.Int(0) < int64_t{kFunctionUidBase} ||
      uid.Int(0) >= int64_t{kFunctionUidBase} + int64_t{kFunctionUidCount}) {
    return faas::ResourceExhaustedError(
        "every uid of the functions' range " + std::to_string(kFunctionUidBase) + ".." +
        std::to_string(kFunctionUidBase + kFunctionUidCount - 1) + " is taken");
  }
  return static_cast<uint32_t>(uid.Int(0));
}

faas::Result<FunctionRecord> ReadRecord(const Stmt& s) {
  FunctionRecord r;
  r.name = s.Text(0);
  FAAS_ASSIGN_OR_RETURN(r.latest_version, ToU32(s.Int(1), "latest_version"));
  r.created_unix_ms = s.Int(2);
  FAAS_ASSIGN_OR_RETURN(r.version_count, ToU32(s.Int(3), "version count"));
  FAAS_ASSIGN_OR_RETURN(r.latest, ReadVersion(s, 4));
  return r;
}

}  // namespace

SqliteRegistry::SqliteRegistry(std::string data_dir, sqlite3* db)
    : data_dir_(std::move(data_dir)), artifacts_dir_(data_dir_ + "/artifacts"), db_(db) {}

SqliteRegistry::~SqliteRegistry() {
  int rc = sqlite3_close(db_);
  if (rc != SQLITE_OK) {
    Log()->error(faas::log::Format("registry.close_failed", {{"error", sqlite3_errstr(rc)}}));
  }
}

faas::Result<std::unique_ptr<Registry>> Registry::Open(const std::string& data_dir) {
  return SqliteRegistry::Open(data_dir);
}

faas::Result<Version> Registry::GetLatest(std::string_view name) {
  FAAS_ASSIGN_OR_RETURN(FunctionRecord r, GetFunction(name));
  return std::move(r.latest);
}

faas::Result<std::unique_ptr<Registry>> SqliteRegistry::Open(const std::string& given_dir) {
  // Absolute: artifact paths are handed to workers, which start from / (never the daemon's cwd).
  std::error_code abs_ec;
  const std::string data_dir =
      std::filesystem::absolute(given_dir, abs_ec).lexically_normal().string();
  if (abs_ec) {
    return faas::ErrnoError(abs_ec.value(), "resolve", given_dir);
  }
  FAAS_RETURN_IF_ERROR(MakeDir(data_dir));
  FAAS_RETURN_IF_ERROR(MakeDir(data_dir + "/artifacts"));
  FAAS_ASSIGN_OR_RETURN(
      sqlite3 * db,
      sql::Open(data_dir + "/faas.db", {.foreign_keys = true, .no_wal_event = "registry.no_wal"}));
  std::unique_ptr<SqliteRegistry> reg(new SqliteRegistry(data_dir, db));  // owns the handle now
  FAAS_RETURN_IF_ERROR(sql::Exec(db, kSchema));
  {
    // Functions deployed before uids were allocated here (they ran as a hash of their name).
    FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db));
    FAAS_ASSIGN_OR_RETURN(Stmt missing,
                          Stmt::Prepare(db,
                                        "SELECT name FROM functions WHERE name NOT IN "
                                        "(SELECT name FROM function_uids) ORDER BY name"));
    std::vector<std::string> names;
    for (;;) {
      FAAS_ASSIGN_OR_RETURN(bool row, missing.Step());
      if (!row) {
        break;
      }
      names.push_back(missing.Text(0));
    }
    for (const std::string& name : names) {
      FAAS_RETURN_IF_ERROR(AllocateUid(db, name).status());
    }
    FAAS_RETURN_IF_ERROR(txn.Commit());
  }

  // Leftovers of a crash: temp files of interrupted puts, and artifacts put but never deployed
  // (or whose last version was deleted just before the crash).
  std::vector<std::string> candidates;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(reg->artifacts_dir_, ec)) {
    std::string file = entry.path().filename().string();
    std::string_view name = file;
    if (name.size() == 64 + 3 && name.ends_with(".so") && IsSha256Hex(name.substr(0, 64))) {
      candidates.emplace_back(name.substr(0, 64));
    } else if (name.size() > 64 && IsSha256Hex(name.substr(0, 64)) &&
               name.substr(64).starts_with(kTempInfix)) {
      if (::unlink(entry.path().c_str()) != 0) {
        int err = errno;
        Log()->warn(faas::log::Format("artifact.unlink_failed",
                                      {{"path", entry.path().string()}, {"errno", err}}));
      }
    } else {
      Log()->warn(faas::log::Format("artifact.unexpected_file", {{"path", entry.path().string()}}));
    }
  }
  if (ec) {
    return faas::ErrnoError(ec.value(), "opendir", reg->artifacts_dir_);
  }
  std::lock_guard<std::mutex> lock(reg->mu_);
  reg->CollectGarbageLocked(candidates);
  return std::unique_ptr<Registry>(std::move(reg));
}

std::string SqliteRegistry::ArtifactPath(const std::string& sha256_hex) const {
  FAAS_CHECK(IsSha256Hex(sha256_hex));  // names come only from digests, never from user input
  return artifacts_dir_ + "/" + sha256_hex + ".so";
}

faas::Result<std::string> SqliteRegistry::FetchArtifact(const std::string& sha256_hex) const {
  std::string path = ArtifactPath(sha256_hex);
  FAAS_RETURN_IF_ERROR(VerifyArtifactFile(path, sha256_hex));
  return path;
}

faas::Result<std::string> SqliteRegistry::CacheArtifact(const std::string& sha256_hex,
                                                        std::string_view bytes) const {
  if (std::string got = Sha256Hex(bytes); got != sha256_hex) {
    return CorruptArtifact(sha256_hex, "the bytes given hash to " + got);
  }
  return FetchArtifact(sha256_hex);
}

faas::Result<std::string> SqliteRegistry::PutArtifact(std::string_view library_bytes) {
  FAAS_RETURN_IF_ERROR(CheckArtifactSize(library_bytes.size()));
  std::string hex = Sha256Hex(library_bytes);
  std::string path = ArtifactPath(hex);
  {
    // From here until CreateVersion uses it, Delete's garbage collection leaves it alone.
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_puts_[hex];
  }
  faas::ScopeExit unpend([&] {
    std::lock_guard<std::mutex> lock(mu_);
    if (--pending_puts_[hex] <= 0) {
      pending_puts_.erase(hex);
    }
  });
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) == library_bytes.size()) {
    unpend.Cancel();
    return hex;  // content-addressed: same digest, same bytes
  }
  FAAS_RETURN_IF_ERROR(
      WriteReadOnlyFileAtomic(artifacts_dir_, path, library_bytes, Durability::kSynced));
  unpend.Cancel();
  Log()->info(
      faas::log::Format("artifact.stored", {{"sha256", hex}, {"bytes", library_bytes.size()}}));
  return hex;
}

faas::Result<DeployResult> SqliteRegistry::CreateVersion(std::string_view name,
                                                         const std::string& artifact_sha256,
                                                         const FunctionConfig& cfg) {
  FAAS_RETURN_IF_ERROR(ValidateDeploy(name, artifact_sha256, cfg));
  std::string path = ArtifactPath(artifact_sha256);
  std::string config_json = ConfigToJson(cfg);
  std::string content_hash = ContentHash(artifact_sha256, config_json);

  std::lock_guard<std::mutex> lock(mu_);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return ArtifactNotStored(artifact_sha256);
    }
    return faas::ErrnoError(errno, "stat", path);
  }
  FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db_));
  FAAS_ASSIGN_OR_RETURN(
      Stmt fn,
      Stmt::Prepare(db_, "SELECT latest_version, next_version FROM functions WHERE name = ?",
                    {name}));
  FAAS_ASSIGN_OR_RETURN(bool exists, fn.Step());
  int64_t next = 1;
  if (exists) {
    FAAS_ASSIGN_OR_RETURN(uint32_t latest_number, ToU32(fn.Int(0), "latest_version"));
    next = fn.Int(1);
    FAAS_ASSIGN_OR_RETURN(Version latest, GetVersionLocked(name, latest_number));
    if (latest.content_hash == content_hash) {
      pending_puts_.erase(artifact_sha256);  // latest references it
      return DeployResult{std::move(latest), true};
    }
  } else {
    FAAS_ASSIGN_OR_RETURN(
        Stmt insert, Stmt::Prepare(db_,
                                   "INSERT INTO functions (name, latest_version, created_unix_ms, "
                                   "next_version) VALUES (?, 0, ?, 1)",
                                   {name, faas::UnixMillisNow()}));
    FAAS_RETURN_IF_ERROR(insert.Run());
  }
  if (next < 1 || next > int64_t{UINT32_MAX}) {
    return VersionsExhausted(name);
  }
  FAAS_ASSIGN_OR_RETURN(uint32_t uid, AllocateUid(db_, name));
  Version v = NewVersion(name, static_cast<uint32_t>(next), content_hash, artifact_sha256,
                         static_cast<uint64_t>(st.st_size), cfg, uid);
  FAAS_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(db_,
                    "INSERT INTO versions (function, version, content_hash, artifact_sha256, "
                    "size_bytes, config_json, created_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    {name, int64_t{v.version}, v.content_hash, v.artifact_sha256,
                     static_cast<int64_t>(v.size_bytes), config_json, v.created_unix_ms}));
  FAAS_RETURN_IF_ERROR(insert.Run());
  FAAS_ASSIGN_OR_RETURN(
      Stmt update,
      Stmt::Prepare(db_, "UPDATE functions SET latest_version = ?, next_version = ? WHERE name = ?",
                    {int64_t{v.version}, next + 1, name}));
  FAAS_RETURN_IF_ERROR(update.Run());
  FAAS_RETURN_IF_ERROR(txn.Commit());
  pending_puts_.erase(artifact_sha256);  // now referenced by a version
  LogVersionCreated(v);
  return DeployResult{std::move(v), false};
}

faas::Result<uint32_t> SqliteRegistry::ReserveUid(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db_));
  FAAS_ASSIGN_OR_RETURN(uint32_t uid, AllocateUid(db_, name));
  FAAS_RETURN_IF_ERROR(txn.Commit());
  return uid;
}

faas::Result<Version> SqliteRegistry::GetVersionLocked(std::string_view name, uint32_t version) {
  FAAS_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_,
                                              "SELECT " FAAS_VERSION_COLUMNS
                                              " FROM versions v WHERE v.function = ? AND "
                                              "v.version = ?",
                                              {name, int64_t{version}}));
  FAAS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (row) {
    return ReadVersion(s, 0);
  }
  FAAS_ASSIGN_OR_RETURN(Stmt fn,
                        Stmt::Prepare(db_, "SELECT 1 FROM functions WHERE name = ?", {name}));
  FAAS_ASSIGN_OR_RETURN(bool exists, fn.Step());
  if (!exists) {
    return NoSuchFunction(name);
  }
  return NoSuchVersion(name, version);
}

faas::Result<FunctionRecord> SqliteRegistry::GetFunctionLocked(std::string_view name) {
  FAAS_ASSIGN_OR_RETURN(Stmt s,
                        Stmt::Prepare(db_, FAAS_SELECT_FUNCTIONS "WHERE f.name = ?", {name}));
  FAAS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return NoSuchFunction(name);
  }
  return ReadRecord(s);
}

faas::Result<std::vector<FunctionRecord>> SqliteRegistry::ListFunctions() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_, FAAS_SELECT_FUNCTIONS "ORDER BY f.name"));
  return sql::ReadAll<FunctionRecord>(s, ReadRecord);
}

faas::Result<FunctionRecord> SqliteRegistry::GetFunction(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  return GetFunctionLocked(name);
}

faas::Result<Version> SqliteRegistry::GetVersion(std::string_view name, uint32_t version) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  return GetVersionLocked(name, version);
}

faas::Result<std::vector<Version>> SqliteRegistry::ListVersions(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(Stmt fn,
                        Stmt::Prepare(db_, "SELECT 1 FROM functions WHERE name = ?", {name}));
  FAAS_ASSIGN_OR_RETURN(bool exists, fn.Step());
  if (!exists) {
    return NoSuchFunction(name);
  }
  FAAS_ASSIGN_OR_RETURN(Stmt s,
                        Stmt::Prepare(db_,
                                      "SELECT " FAAS_VERSION_COLUMNS
                                      " FROM versions v WHERE v.function = ? ORDER BY v.version",
                                      {name}));
  return sql::ReadAll<Version>(s, [](const Stmt& row) { return ReadVersion(row, 0); });
}

faas::Result<Version> SqliteRegistry::Rollback(std::string_view name, uint32_t version) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(Version v, GetVersionLocked(name, version));
  FAAS_ASSIGN_OR_RETURN(Stmt update,
                        Stmt::Prepare(db_, "UPDATE functions SET latest_version = ? WHERE name = ?",
                                      {int64_t{version}, name}));
  FAAS_RETURN_IF_ERROR(update.Run());
  Log()->info(faas::log::Format("version.rollback", {{"fn", v.function}, {"version", v.version}}));
  return v;
}

faas::Status SqliteRegistry::Delete(std::string_view name) {
  FAAS_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> artifacts;
  {
    FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db_));
    FAAS_ASSIGN_OR_RETURN(
        Stmt s,
        Stmt::Prepare(db_, "SELECT DISTINCT artifact_sha256 FROM versions WHERE function = ?",
                      {name}));
    for (;;) {
      FAAS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) {
        break;
      }
      artifacts.push_back(s.Text(0));
    }
    FAAS_ASSIGN_OR_RETURN(Stmt del,
                          Stmt::Prepare(db_, "DELETE FROM functions WHERE name = ?", {name}));
    FAAS_RETURN_IF_ERROR(del.Run());
    if (sqlite3_changes(db_) == 0) {
      return NoSuchFunction(name);
    }
    FAAS_RETURN_IF_ERROR(txn.Commit());
  }
  Log()->info(faas::log::Format("function.deleted", {{"fn", name}}));
  CollectGarbageLocked(artifacts);
  return faas::OkStatus();
}

void SqliteRegistry::CollectGarbageLocked(const std::vector<std::string>& candidates) {
  for (const std::string& sha : candidates) {
    if (!IsSha256Hex(sha) || pending_puts_.contains(sha)) {
      continue;
    }
    faas::Result<Stmt> s =
        Stmt::Prepare(db_, "SELECT 1 FROM versions WHERE artifact_sha256 = ? LIMIT 1", {sha});
    faas::Result<bool> used = s.ok() ? s->Step() : faas::Result<bool>(s.status());
    if (!used.ok()) {
      Log()->error(faas::log::Format("artifact.gc_failed",
                                     {{"sha256", sha}, {"error", used.status().message()}}));
      continue;
    }
    if (*used) {
      continue;
    }
    std::string path = ArtifactPath(sha);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      int err = errno;
      Log()->warn(faas::log::Format("artifact.unlink_failed", {{"path", path}, {"errno", err}}));
      continue;
    }
    Log()->info(faas::log::Format("artifact.removed", {{"sha256", sha}}));
  }
}

faas::Result<std::unique_ptr<Registry>> OpenRegistry(std::string_view store,
                                                     const std::string& data_dir) {
  if (store.empty() || store == "sqlite:") {
    return SqliteRegistry::Open(data_dir);
  }
  if (store.starts_with("postgres://") || store.starts_with("postgresql://")) {
    return PgRegistry::Open(std::string(store), data_dir + "/artifact-cache");
  }
  if (store.starts_with("sqlite:")) {
    return SqliteRegistry::Open(std::string(store.substr(7)));
  }
  if (std::string_view::size_type colon = store.find(':');
      colon != std::string_view::npos && store.find('/') > colon) {
    return faas::InvalidArgumentError("store " + Quote(store.substr(0, 80)) +
                                      " names no known backend (sqlite:PATH, postgres://...)");
  }
  return SqliteRegistry::Open(std::string(store));
}

}  // namespace faas::store
