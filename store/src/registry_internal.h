// Private to store/src: what the registry's backends share, so that SQLite (sqlite_registry.h,
// registry*.cc) and PostgreSQL (pg_registry.cc) validate alike and give the same error texts,
// which users see through the control API. registry.cc holds the version, artifact and route
// helpers; registry_keys.cc the API key ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/log.h"
#include "faas/base/status.h"
#include "faas/store/config.h"
#include "faas/store/registry.h"

namespace faas::store::registry_internal {

// The "store" logger.
std::shared_ptr<spdlog::logger> Log();

// A user-given name for an error message, quoted (faas::QuoteForMessage).
std::string Quote(std::string_view s);

// Temp files of artifact writes are named <sha256hex>.so.tmp.<pid>.<n>.
inline constexpr std::string_view kTempInfix = ".so.tmp.";

// NotFound `function "x" does not exist`.
faas::Status NoSuchFunction(std::string_view name);
// NotFound `function "x" has no version 7`.
faas::Status NoSuchVersion(std::string_view name, uint32_t version);
// NotFound `artifact <sha> is not stored`.
faas::Status ArtifactNotStored(std::string_view sha256_hex);
// ResourceExhausted: the artifact is above kMaxLibraryBytes; Ok otherwise.
faas::Status CheckArtifactSize(std::size_t size);
// ResourceExhausted: every uid of the reserved range is taken.
faas::Status UidRangeExhausted();
// The version CreateVersion stores: number `number` of `name`, created now.
Version NewVersion(std::string_view name, uint32_t number, std::string content_hash,
                   std::string artifact_sha256, uint64_t size_bytes, const FunctionConfig& cfg,
                   uint32_t uid);
// Logs version.created once CreateVersion's transaction committed.
void LogVersionCreated(const Version& v);
// ResourceExhausted: `name` has used every version number.
faas::Status VersionsExhausted(std::string_view name);
// CreateVersion's input checks, every problem at once (InvalidArgument).
faas::Status ValidateDeploy(std::string_view name, const std::string& artifact_sha256,
                            const FunctionConfig& cfg);
// sha256(artifact_sha256 + "\n" + config_json): what an unchanged redeploy is detected by.
std::string ContentHash(const std::string& artifact_sha256, const std::string& config_json);

// Checks a stored integer fits in uint32_t (Internal naming `what` otherwise).
faas::Result<uint32_t> ToU32(int64_t v, std::string_view what);
// A Version from its stored columns (the config as JSON); Internal when a column is corrupt.
faas::Result<Version> VersionFromColumns(std::string function, int64_t version,
                                         std::string content_hash, std::string artifact_sha256,
                                         int64_t size_bytes, const std::string& config_json,
                                         int64_t created_unix_ms, int64_t uid);

// AddRoute's input checks (InvalidArgument), and the route's name in messages:
// `GET "/users/{id}"`, plus ` for host "h"` when there is one.
faas::Status ValidateRoute(const Route& route);
std::string RouteName(std::string_view method, std::string_view path, std::string_view host);
// AlreadyExists `route GET "/a" already exists (to "fn")`; NotFound `no route GET "/a"`.
faas::Status RouteExists(const Route& route, std::string_view existing_function);
faas::Status NoSuchRoute(std::string_view method, std::string_view path, std::string_view host);

// A key CreateKey is about to store: validated, functions sorted, secret drawn and hashed. The
// id is drawn by the backend (RandomKeyId) until it is unused.
struct NewKey {
  ApiKey key;                  // everything but id
  std::string functions_text;  // the sorted names joined by ',' ("" = all functions)
  std::string secret;          // shown once inside FullKey, never stored
};
faas::Result<NewKey> PrepareKey(std::string_view tenant, std::vector<std::string> functions,
                                double rate_per_sec, uint32_t burst);
inline constexpr int kMaxKeyIdAttempts = 8;  // 48-bit random ids: a 2nd draw is already unheard of
faas::Result<std::string> RandomKeyId();
// Internal: no unused id after kMaxKeyIdAttempts draws.
faas::Status NoUnusedKeyId();
// "faas_" + id + "_" + secret.
std::string FullKey(const std::string& id, const std::string& secret);
// What CreateKey returns once `made` is stored under made.key.id: the key and the full key shown
// once. Logs key.created.
std::pair<ApiKey, std::string> KeyCreated(NewKey made);
bool IsKeyId(std::string_view id);
// RevokeKey's InvalidArgument for a malformed id (which is not echoed) and NotFound.
faas::Status InvalidKeyId();
faas::Status NoSuchKey(std::string_view id);
// The stored form of a rate: the shortest decimal that reads back as the same double.
std::string FormatRate(double v);
// An ApiKey from its stored columns; Internal when one is corrupt.
faas::Result<ApiKey> KeyFromColumns(std::string id, std::string tenant,
                                    const std::string& functions, const std::string& rate,
                                    int64_t burst, int64_t created_unix_ms, int64_t revoked_unix_ms,
                                    std::string secret_sha256);

// Directory and file helpers of the artifact stores.
faas::Status MakeDir(const std::string& path);
// Whether a written file must survive a crash of the host.
enum class Durability {
  kSynced,  // the store itself (SqliteRegistry's artifacts): fsync the file and `dir`
  // A cache of bytes stored elsewhere (PgRegistry's cache): every use hashes the file first
  // (VerifyArtifactFile) and fetches it again when torn or missing, so no fsync.
  kCache,
};
// Writes `data` to `path` through a unique temp file in `dir` (mode 0444, rename), so readers
// see the whole file or none; kSynced also fsyncs the file before the rename and `dir` after.
faas::Status WriteReadOnlyFileAtomic(const std::string& dir, const std::string& path,
                                     std::string_view data, Durability durability);

// Ok when `path` holds exactly the bytes whose sha256 is `sha256_hex`. NotFound
// `artifact <sha> is not stored` when there is no file; Internal `artifact <sha> is corrupt:
// <path> hashes to <other>` when the bytes differ.
faas::Status VerifyArtifactFile(const std::string& path, const std::string& sha256_hex);
// Internal `artifact <sha> is corrupt: <what>`.
faas::Status CorruptArtifact(std::string_view sha256_hex, std::string_view what);

}  // namespace faas::store::registry_internal
