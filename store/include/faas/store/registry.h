// Registry: functions, their immutable versions, routes, API keys and the content-addressed
// artifact store, behind one interface with two backends (docs/design/0016-store-backends.md):
//
//   SQLite, in one data directory (docs/cli.md), for a single machine (`--role all`):
//     <data_dir>/faas.db                     SQLite (WAL): functions, versions, routes, api_keys
//     <data_dir>/artifacts/<sha256hex>.so    libraries, mode 0444, named only by their digest
//   PostgreSQL, shared by every process of a cluster: the same tables plus `artifacts` (the
//     library bytes by sha256) and `schema_migrations`; each process keeps a verified copy of
//     the libraries it needs in <data_dir>/artifact-cache/<sha256hex>.so.
//
//   FAAS_ASSIGN_OR_RETURN(auto reg, faas::store::OpenRegistry("postgresql:///faas", data_dir));
//   FAAS_ASSIGN_OR_RETURN(auto reg, faas::store::Registry::Open("/var/lib/faas"));  // SQLite
//   FAAS_ASSIGN_OR_RETURN(std::string sha, reg->PutArtifact(library_bytes));
//   FAAS_ASSIGN_OR_RETURN(faas::store::DeployResult d, reg->CreateVersion("resize", sha, cfg));
//   // d.version.version == 1 on the first deploy; d.unchanged when nothing changed
//   std::string so = reg->ArtifactPath(d.version.artifact_sha256);
//
// API keys (gateway edge, docs/http-api.md "unauthorized"/"rate_limited"):
//
//   FAAS_ASSIGN_OR_RETURN(auto created, reg->CreateKey("acme", {"resize"}, 10, 20));
//   // created.second == "faas_3f9a0c1b2d4e_<43 base64url chars>": shown once, never stored
//   FAAS_RETURN_IF_ERROR(reg->RevokeKey(created.first.id));
//
// Version numbers start at 1 and are never reused for a function, even after a rollback;
// deleting a function forgets its numbering. Errors carry the database's message; a busy or
// locked database (or an unreachable PostgreSQL server) is Unavailable, a full disk
// ResourceExhausted, an unreadable one FailedPrecondition. Both backends give the same error
// texts for the same mistakes (they reach users through the control API).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/config.h"

namespace faas::store {

// One immutable deployed version of a function.
struct Version {
  std::string function;
  uint32_t version = 0;
  std::string content_hash;     // sha256(artifact_sha256 + "\n" + ConfigToJson(config))
  std::string artifact_sha256;  // the library: Registry::ArtifactPath(artifact_sha256)
  uint64_t size_bytes = 0;      // size of the library
  int64_t created_unix_ms = 0;
  FunctionConfig config;
  uint32_t uid = 0;  // the function's own host uid (= gid), from kFunctionUidBase
};

// Every function runs as a host uid of its own, allocated by the registry from this range on its
// first deploy and never given to another name (operators keep it free of real users).
inline constexpr uint32_t kFunctionUidBase = 2'000'000;
inline constexpr uint32_t kFunctionUidCount = 1'000'000;

// A function and the version `latest` points to.
struct FunctionRecord {
  std::string name;
  uint32_t latest_version = 0;
  uint32_t version_count = 0;
  int64_t created_unix_ms = 0;
  Version latest;
};

// A custom HTTP route (docs/http-api.md): (method, path, host) → function. The registry stores
// routes as given; gateway::RouterBuilder validates them and checks conflicts.
struct Route {
  std::string method;    // GET, ..., or ANY
  std::string path;      // template, e.g. /users/{id}
  std::string host;      // "" = every host
  std::string function;  // need not exist: deleting a function keeps its routes
  int64_t created_unix_ms = 0;
};

// An API key as stored: everything but the secret, of which only the SHA-256 is kept. The full
// key string is "faas_" + id + "_" + secret (kApiKeyPrefix, kApiKeyIdChars, kApiKeySecretChars).
struct ApiKey {
  std::string id;                      // 12 lowercase hex digits, random; not secret
  std::string tenant;                  // who the key belongs to; matches [a-z][a-z0-9-]{0,62}
  std::vector<std::string> functions;  // functions it may invoke, sorted; empty = all
  double rate_per_sec = 0;             // token-bucket refill rate; 0 = unlimited
  uint32_t burst = 0;                  // bucket size; 0 exactly when rate_per_sec is 0
  int64_t created_unix_ms = 0;
  int64_t revoked_unix_ms = 0;  // 0 = active
  std::string secret_sha256;    // Sha256Hex(secret): 64 lowercase hex digits
};

// "faas_<id>_<secret>": the id is 12 lowercase hex digits (48 random bits, only to find the
// record), the secret 43 base64url characters without padding (32 bytes from getrandom(2)).
inline constexpr std::string_view kApiKeyPrefix = "faas_";
inline constexpr std::size_t kApiKeyIdChars = 12;
inline constexpr std::size_t kApiKeySecretChars = 43;
inline constexpr std::size_t kApiKeyChars =
    kApiKeyPrefix.size() + kApiKeyIdChars + 1 + kApiKeySecretChars;
// 1e6/s: far above what one gateway serves, and its default burst fits in uint32_t.
inline constexpr double kMaxKeyRatePerSec = 1e6;

// Outcome of CreateVersion: the new version, or the unchanged latest one.
struct DeployResult {
  Version version;
  bool unchanged = false;  // the deploy matched latest's content hash; no version was created
};

// The interface both backends implement. Implementations are thread-safe. SQLite: one process
// owns a data directory at a time (Open garbage-collects files other writers may be creating).
// PostgreSQL: any number of processes share one database; each needs its own data_dir.
class Registry {
 public:
  // The SQLite backend: opens or creates <data_dir>, its artifacts/ folder and the schema;
  // removes temp files left by a crash and artifacts no version references. Errors: ErrnoError
  // for directories, FailedPrecondition/Internal from SQLite.
  static faas::Result<std::unique_ptr<Registry>> Open(const std::string& data_dir);
  virtual ~Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Stores `library_bytes` at ArtifactPath(sha256) (temp file, fsync, rename, mode 0444) and
  // returns the sha256 hex. Idempotent: identical content is stored once. Does not inspect the
  // bytes (use CheckFunctionElf first). Errors: ResourceExhausted above kMaxLibraryBytes,
  // ErrnoError on I/O. An artifact put but never used by CreateVersion survives until the
  // next Open.
  // PostgreSQL: stores the bytes in the artifacts table (and the local cache); a put that no
  // version uses is collected by a Delete or Open at least kArtifactGraceMs later.
  virtual faas::Result<std::string> PutArtifact(std::string_view library_bytes) = 0;

  // The absolute path of the library on this machine. `sha256_hex` must come from PutArtifact
  // or a Version (callers never pass user input here). SQLite: <data_dir>/artifacts/<sha>.so,
  // without touching the disk. PostgreSQL: FetchArtifact's path; when the fetch fails (logged
  // as artifact.fetch_failed) the path holds no file, so a load fails instead of running
  // unverified bytes.
  virtual std::string ArtifactPath(const std::string& sha256_hex) const = 0;

  // Makes sure ArtifactPath(sha256_hex) holds exactly the bytes whose sha256 is `sha256_hex`
  // and returns that path. PostgreSQL fills the node-local cache from the artifacts table
  // (bytes verified, temp file, fsync, rename, read back and verified again) and refetches a
  // cached copy that no longer matches. A corrupt artifact is never returned: Internal
  // `artifact <sha> is corrupt: ...`. NotFound `artifact <sha> is not stored`.
  virtual faas::Result<std::string> FetchArtifact(const std::string& sha256_hex) const = 0;

  // FetchArtifact from `bytes` the caller was handed (a gateway sends a deploy's library with its
  // Prepare) instead of the store. The bytes are hashed first: unless they hash to `sha256_hex`
  // the call fails with Internal `artifact <sha> is corrupt: the bytes given hash to ...` and
  // writes nothing. PostgreSQL: then as FetchArtifact (a cached copy that matches is kept; else
  // temp file, fsync, rename, read back and verified), without reading the artifacts table, so
  // it works before the deploy has stored the row. SQLite (one machine, every artifact already
  // in its folder): the checked bytes change nothing; FetchArtifact's verified path.
  virtual faas::Result<std::string> CacheArtifact(const std::string& sha256_hex,
                                                  std::string_view bytes) const = 0;

  // The host uid `name` runs as (kFunctionUidBase..), allocated now if it has none: a deploy
  // takes it before its probe load, which already runs the function's code. A name keeps its
  // uid even if the deploy then fails. ResourceExhausted when the range is used up.
  virtual faas::Result<uint32_t> ReserveUid(std::string_view name) = 0;

  // Creates version N+1 of `name` (1 for a new function) with the stored artifact and `cfg`,
  // and makes it latest. If its content hash equals latest's, creates nothing and returns
  // latest with unchanged=true. Errors: InvalidArgument for a bad name, config (all problems
  // at once) or digest; NotFound if the artifact is not stored.
  virtual faas::Result<DeployResult> CreateVersion(std::string_view name,
                                                   const std::string& artifact_sha256,
                                                   const FunctionConfig& cfg) = 0;

  // All functions, sorted by name.
  virtual faas::Result<std::vector<FunctionRecord>> ListFunctions() = 0;
  // NotFound: `function "x" does not exist`; InvalidArgument for an invalid name.
  virtual faas::Result<FunctionRecord> GetFunction(std::string_view name) = 0;
  // The version latest points to. NotFound as GetFunction.
  faas::Result<Version> GetLatest(std::string_view name);
  // NotFound: `function "x" has no version 7` (or that the function does not exist).
  virtual faas::Result<Version> GetVersion(std::string_view name, uint32_t version) = 0;
  // Every version of `name`, ascending. NotFound as GetFunction.
  virtual faas::Result<std::vector<Version>> ListVersions(std::string_view name) = 0;
  // Points latest at an existing `version` and returns it. NotFound as GetVersion.
  virtual faas::Result<Version> Rollback(std::string_view name, uint32_t version) = 0;
  // Removes the function and all its versions in one transaction, then unlinks the artifacts
  // no other version references (failures to unlink are logged). NotFound as GetFunction.
  // Does NOT delete the function's routes: they stay, and answer 404 function_not_found until
  // a function of that name is deployed again.
  virtual faas::Status Delete(std::string_view name) = 0;

  // Stores `route` (created_unix_ms is set here) and returns it. Errors: InvalidArgument for an
  // empty method or path or an invalid function name; AlreadyExists when a route with the same
  // (method, path, host) is stored.
  virtual faas::Result<Route> AddRoute(const Route& route) = 0;
  // Every route, sorted by path, method, host.
  virtual faas::Result<std::vector<Route>> ListRoutes() = 0;
  // Removes the route keyed (method, path, host), compared exactly.
  // NotFound: `no route GET /users/{id}` (with " for host H" when host is set).
  virtual faas::Status DeleteRoute(std::string_view method, std::string_view path,
                                   std::string_view host) = 0;

  // Creates an API key for `tenant`, allowed to invoke `functions` (empty = every function;
  // duplicates are dropped and the list is sorted), limited to `rate_per_sec` with bucket size
  // `burst` (rate 0 = unlimited; burst 0 with a rate = max(1, ceil(rate))). Returns the stored
  // record and the full key string, which exists nowhere else: only sha256(secret) is stored.
  // Errors (all problems at once): InvalidArgument for an invalid tenant or function name, a
  // rate that is negative, not finite or above kMaxKeyRatePerSec, or a burst without a rate;
  // ErrnoError when getrandom(2) fails.
  virtual faas::Result<std::pair<ApiKey, std::string>> CreateKey(std::string_view tenant,
                                                                 std::vector<std::string> functions,
                                                                 double rate_per_sec,
                                                                 uint32_t burst) = 0;
  // Every key, revoked ones included, oldest first (ties by id).
  virtual faas::Result<std::vector<ApiKey>> ListKeys() = 0;
  // Marks key `id` revoked now; revoking a revoked key succeeds and keeps the first time.
  // Errors: InvalidArgument when `id` is not 12 lowercase hex digits (the value is not echoed:
  // it may be a whole key); NotFound `API key "3f9a0c1b2d4e" does not exist`.
  virtual faas::Status RevokeKey(std::string_view id) = 0;

 protected:
  Registry() = default;
};

// Opens the registry `store` names, with node-local files under `data_dir`:
//   "" or "sqlite:"                    SQLite in data_dir (Registry::Open(data_dir))
//   "sqlite:PATH" or a plain PATH      SQLite in PATH
//   "postgres://..." / "postgresql://..."  PostgreSQL (a libpq connection URI; unix sockets:
//                                      "postgresql:///faas?host=/run/postgresql"); the artifact
//                                      cache is <data_dir>/artifact-cache
// Anything else with a scheme is InvalidArgument. PostgreSQL runs the schema migrations this
// binary knows before returning (docs/design/0016-store-backends.md); a database whose schema
// is newer than the binary is FailedPrecondition, an unreachable server Unavailable.
faas::Result<std::unique_ptr<Registry>> OpenRegistry(std::string_view store,
                                                     const std::string& data_dir);

// A put that no version references yet is kept at least this long by the PostgreSQL backend's
// garbage collection (another gateway may be between its PutArtifact and CreateVersion).
inline constexpr int64_t kArtifactGraceMs = 3'600'000;

}  // namespace faas::store
