// API keys: the checks, random ids and secrets both backends share (registry_internal.h), and
// the SQLite CreateKey (only the secret's SHA-256 is stored), ListKeys, RevokeKey.
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <system_error>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/base/time.h"
#include "faas/store/config.h"
#include "faas/store/hash.h"
#include "faas/store/registry.h"

#include "registry_internal.h"
#include "sqlite.h"
#include "sqlite_registry.h"

namespace faas::store {
namespace registry_internal {
namespace {

// Same bounds as a function's rate limit (config.cc ValidateConfig).
constexpr uint32_t kMaxKeyBurst = 1'000'000;

// Fills `out` from getrandom(2) (blocks only before the kernel's pool is first initialised).
faas::Status FillRandom(unsigned char* out, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::getrandom(out + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return faas::ErrnoError(errno, "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  return faas::OkStatus();
}

std::string Hex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

// RFC 4648 §5 base64url, without padding.
std::string Base64Url(const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = static_cast<uint32_t>(data[i]) << 16 |
                       static_cast<uint32_t>(data[i + 1]) << 8 | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (const std::size_t rest = size - i; rest > 0) {
    uint32_t v = static_cast<uint32_t>(data[i]) << 16;
    if (rest == 2) {
      v |= static_cast<uint32_t>(data[i + 1]) << 8;
    }
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) {
      out.push_back(kAlphabet[(v >> 6) & 63]);
    }
  }
  return out;
}

}  // namespace

bool IsKeyId(std::string_view id) {
  return id.size() == kApiKeyIdChars && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Shortest decimal that parses back to `v`: "10", "0.5", "0.000001"; scientific only when the
// fixed form would be long ("1e+300").
std::string FormatRate(double v) {
  std::array<char, 64> buf{};
  std::to_chars_result r =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  if (r.ec != std::errc()) {
    r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  }
  return std::string(buf.data(), r.ptr);
}

faas::Result<ApiKey> KeyFromColumns(std::string id, std::string tenant,
                                    const std::string& functions, const std::string& rate,
                                    int64_t burst, int64_t created_unix_ms, int64_t revoked_unix_ms,
                                    std::string secret_sha256) {
  ApiKey k;
  k.id = std::move(id);
  k.tenant = std::move(tenant);
  for (std::size_t pos = 0; pos < functions.size();) {
    std::size_t comma = functions.find(',', pos);
    if (comma == std::string::npos) {
      comma = functions.size();
    }
    k.functions.push_back(functions.substr(pos, comma - pos));
    pos = comma + 1;
  }
  const auto [end, ec] = std::from_chars(rate.data(), rate.data() + rate.size(), k.rate_per_sec);
  k.created_unix_ms = created_unix_ms;
  k.revoked_unix_ms = revoked_unix_ms;
  k.secret_sha256 = std::move(secret_sha256);
  if (ec != std::errc() || end != rate.data() + rate.size() || !(k.rate_per_sec >= 0) ||
      burst < 0 || burst > int64_t{UINT32_MAX} || !IsKeyId(k.id) || !IsSha256Hex(k.secret_sha256)) {
    return faas::InternalError("stored API key " + Quote(k.id) + " is corrupt");
  }
  k.burst = static_cast<uint32_t>(burst);
  return k;
}

faas::Result<NewKey> PrepareKey(std::string_view tenant, std::vector<std::string> functions,
                                double rate_per_sec, uint32_t burst) {
  constexpr std::string_view kNamePattern = "[a-z][a-z0-9-]{0,62}";  // as ValidateName
  std::vector<std::string> errs;
  if (!ValidateName(tenant).ok()) {
    errs.push_back("tenant " + Quote(tenant.substr(0, 80)) + " must match " +
                   std::string(kNamePattern));
  }
  for (const std::string& fn : functions) {
    if (!ValidateName(fn).ok()) {
      errs.push_back("function " + Quote(std::string_view(fn).substr(0, 80)) + " must match " +
                     std::string(kNamePattern));
    }
  }
  // The negated form also rejects NaN.
  if (!(rate_per_sec >= 0 && rate_per_sec <= kMaxKeyRatePerSec)) {
    errs.push_back("rate_per_sec: " + FormatRate(rate_per_sec) + " is outside 0.." +
                   FormatRate(kMaxKeyRatePerSec));
  } else if (rate_per_sec == 0 && burst != 0) {
    errs.push_back("burst: " + std::to_string(burst) +
                   " without a rate; set rate_per_sec above 0, or burst 0 for no limit");
  }
  if (burst > kMaxKeyBurst) {
    errs.push_back("burst: " + std::to_string(burst) + " is above the " +
                   std::to_string(kMaxKeyBurst) + " maximum");
  }
  if (!errs.empty()) {
    std::string msg;
    for (const std::string& e : errs) {
      msg += (msg.empty() ? "" : "; ") + e;
    }
    return faas::InvalidArgumentError(msg);
  }
  if (rate_per_sec > 0 && burst == 0) {
    burst = EffectiveBurst(rate_per_sec, 0);
  }
  std::sort(functions.begin(), functions.end());
  functions.erase(std::unique(functions.begin(), functions.end()), functions.end());
  std::string functions_text;
  for (const std::string& fn : functions) {
    functions_text += (functions_text.empty() ? "" : ",") + fn;
  }

  std::array<unsigned char, 32> secret_bytes{};
  FAAS_RETURN_IF_ERROR(FillRandom(secret_bytes.data(), secret_bytes.size()));
  std::string secret = Base64Url(secret_bytes.data(), secret_bytes.size());
  FAAS_CHECK(secret.size() == kApiKeySecretChars);

  ApiKey key;
  key.tenant = std::string(tenant);
  key.functions = std::move(functions);
  key.rate_per_sec = rate_per_sec;
  key.burst = burst;
  key.created_unix_ms = faas::UnixMillisNow();
  key.secret_sha256 = Sha256Hex(secret);
  return NewKey{std::move(key), std::move(functions_text), std::move(secret)};
}

faas::Result<std::string> RandomKeyId() {
  std::array<unsigned char, kApiKeyIdChars / 2> id_bytes{};
  FAAS_RETURN_IF_ERROR(FillRandom(id_bytes.data(), id_bytes.size()));
  return Hex(id_bytes.data(), id_bytes.size());
}

faas::Status NoUnusedKeyId() {
  return faas::InternalError("no unused API key id after " + std::to_string(kMaxKeyIdAttempts) +
                             " random draws");
}

std::string FullKey(const std::string& id, const std::string& secret) {
  std::string full;
  full.reserve(kApiKeyChars);
  full += kApiKeyPrefix;
  full += id;
  full += '_';
  full += secret;
  return full;
}

std::pair<ApiKey, std::string> KeyCreated(NewKey made) {
  const ApiKey& key = made.key;
  Log()->info(faas::log::Format("key.created", {{"key", key.id},
                                                {"tenant", key.tenant},
                                                {"functions", made.functions_text},
                                                {"rate_per_sec", key.rate_per_sec},
                                                {"burst", key.burst}}));
  std::string full = FullKey(key.id, made.secret);
  return {std::move(made.key), std::move(full)};
}

faas::Status InvalidKeyId() {
  // Not echoed: a confused caller may have passed the whole key, secret included.
  return faas::InvalidArgumentError(
      "API key id must be 12 lowercase hex digits (the part between \"faas_\" and the "
      "secret)");
}

faas::Status NoSuchKey(std::string_view id) {
  return faas::NotFoundError("API key " + Quote(id) + " does not exist");
}

}  // namespace registry_internal

namespace {

using namespace registry_internal;  // NOLINT(google-build-using-namespace): this file's helpers
using sql::Stmt;

faas::Result<ApiKey> ReadKey(const Stmt& s) {
  return KeyFromColumns(s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Int(6),
                        s.Text(7));
}

}  // namespace

faas::Result<std::pair<ApiKey, std::string>> SqliteRegistry::CreateKey(
    std::string_view tenant, std::vector<std::string> functions, double rate_per_sec,
    uint32_t burst) {
  FAAS_ASSIGN_OR_RETURN(NewKey made, PrepareKey(tenant, std::move(functions), rate_per_sec, burst));
  ApiKey& key = made.key;
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(db_));
  for (int attempt = 0; key.id.empty(); ++attempt) {
    if (attempt == kMaxKeyIdAttempts) {
      return NoUnusedKeyId();
    }
    FAAS_ASSIGN_OR_RETURN(std::string id, RandomKeyId());
    FAAS_ASSIGN_OR_RETURN(Stmt find,
                          Stmt::Prepare(db_, "SELECT 1 FROM api_keys WHERE id = ?", {id}));
    FAAS_ASSIGN_OR_RETURN(bool taken, find.Step());
    if (!taken) {
      key.id = std::move(id);
    }
  }
  FAAS_ASSIGN_OR_RETURN(
      Stmt insert,
      Stmt::Prepare(db_,
                    "INSERT INTO api_keys (id, tenant, functions, rate_per_sec, burst, "
                    "created_unix_ms, revoked_unix_ms, secret_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                    {key.id, key.tenant, made.functions_text, FormatRate(key.rate_per_sec),
                     int64_t{key.burst}, key.created_unix_ms, key.secret_sha256}));
  FAAS_RETURN_IF_ERROR(insert.Run());
  FAAS_RETURN_IF_ERROR(txn.Commit());
  return KeyCreated(std::move(made));
}

faas::Result<std::vector<ApiKey>> SqliteRegistry::ListKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(
      Stmt s, Stmt::Prepare(db_,
                            "SELECT id, tenant, functions, rate_per_sec, burst, created_unix_ms, "
                            "revoked_unix_ms, secret_sha256 FROM api_keys "
                            "ORDER BY created_unix_ms, id"));
  return sql::ReadAll<ApiKey>(s, ReadKey);
}

faas::Status SqliteRegistry::RevokeKey(std::string_view id) {
  if (!IsKeyId(id)) {
    return InvalidKeyId();
  }
  std::lock_guard<std::mutex> lock(mu_);
  FAAS_ASSIGN_OR_RETURN(
      Stmt update,
      Stmt::Prepare(db_,
                    "UPDATE api_keys SET revoked_unix_ms = ? WHERE id = ? AND revoked_unix_ms = 0",
                    {faas::UnixMillisNow(), id}));
  FAAS_RETURN_IF_ERROR(update.Run());
  if (sqlite3_changes(db_) == 0) {
    FAAS_ASSIGN_OR_RETURN(Stmt find,
                          Stmt::Prepare(db_, "SELECT 1 FROM api_keys WHERE id = ?", {id}));
    FAAS_ASSIGN_OR_RETURN(bool exists, find.Step());
    if (!exists) {
      return NoSuchKey(id);
    }
    return faas::OkStatus();  // already revoked
  }
  Log()->info(faas::log::Format("key.revoked", {{"key", id}}));
  return faas::OkStatus();
}

}  // namespace faas::store
