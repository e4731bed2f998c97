#include "faas/gateway/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/store/hash.h"

namespace faas::gateway {
namespace {

constexpr std::string_view kMissing = "missing Authorization: Bearer <key> header";
constexpr std::string_view kInvalid = "invalid API key";
constexpr std::string_view kRevoked = "API key revoked";
constexpr std::size_t kMaxQuotedFunction = 80;  // a path segment can be long; the message not

Status Unauthenticated(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t';
}

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int HexValue(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

// The token after "Bearer" (scheme case-insensitive, RFC 9110 §11.1), or "" when the header is
// not a Bearer credential.
std::string_view BearerToken(std::string_view v) {
  while (!v.empty() && IsSpace(v.front())) {
    v.remove_prefix(1);
  }
  while (!v.empty() && IsSpace(v.back())) {
    v.remove_suffix(1);
  }
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !IsSpace(v[kScheme.size()])) {
    return {};
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = v[i];
    const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) {
      return {};
    }
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && IsSpace(v.front())) {
    v.remove_prefix(1);
  }
  return v;
}

// Splits "faas_<id>_<secret>"; false unless every part has its exact length and alphabet.
bool SplitKey(std::string_view key, std::string_view* id, std::string_view* secret) {
  if (key.size() != store::kApiKeyChars || !key.starts_with(store::kApiKeyPrefix)) {
    return false;
  }
  key.remove_prefix(store::kApiKeyPrefix.size());
  *id = key.substr(0, store::kApiKeyIdChars);
  if (!std::all_of(id->begin(), id->end(), IsLowerHex) || key[store::kApiKeyIdChars] != '_') {
    return false;
  }
  *secret = key.substr(store::kApiKeyIdChars + 1);
  return std::all_of(secret->begin(), secret->end(), IsBase64Url);
}

}  // namespace

std::shared_ptr<const KeyTable> KeyTable::Build(std::vector<store::ApiKey> keys) {
  std::shared_ptr<KeyTable> table(new KeyTable());
  table->keys_.reserve(keys.size());
  for (store::ApiKey& k : keys) {
    const bool id_ok =
        k.id.size() == store::kApiKeyIdChars && std::all_of(k.id.begin(), k.id.end(), IsLowerHex);
    if (!id_ok || !store::IsSha256Hex(k.secret_sha256)) {
      static const auto log = faas::log::Get("gateway");
      FAAS_LOG(log, err, "auth.bad_key_record", {"key", k.id.substr(0, 32)});
      continue;
    }
    Entry e{};
    for (std::size_t i = 0; i < e.secret_sha256.size(); ++i) {
      e.secret_sha256[i] = static_cast<unsigned char>(HexValue(k.secret_sha256[2 * i]) << 4 |
                                                      HexValue(k.secret_sha256[2 * i + 1]));
    }
    e.tenant = std::move(k.tenant);
    e.functions = std::move(k.functions);
    std::sort(e.functions.begin(), e.functions.end());
    e.functions.erase(std::unique(e.functions.begin(), e.functions.end()), e.functions.end());
    e.rate_per_sec = k.rate_per_sec;
    e.burst = k.burst;
    e.revoked = k.revoked_unix_ms != 0;
    table->keys_.insert_or_assign(std::move(k.id), std::move(e));
  }
  return table;
}

Result<Principal> KeyTable::Authenticate(const std::string* authorization_header,
                                         std::string_view function) const {
  if (authorization_header == nullptr) {
    return Unauthenticated(std::string(kMissing));
  }
  const std::string_view token = BearerToken(*authorization_header);
  if (token.empty()) {
    return Unauthenticated(std::string(kMissing));
  }
  std::string_view id;
  std::string_view secret;
  if (!SplitKey(token, &id, &secret)) {
    return Unauthenticated(std::string(kInvalid));
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  // Fails only when OpenSSL cannot allocate, as in store::Sha256Hex.
  FAAS_CHECK(EVP_Digest(secret.data(), secret.size(), digest.data(), &digest_len, EVP_sha256(),
                        nullptr) == 1 &&
             digest_len == 32);
  const auto it = keys_.find(id);
  if (it == keys_.end()) {
    return Unauthenticated(std::string(kInvalid));
  }
  const Entry& e = it->second;
  if (CRYPTO_memcmp(digest.data(), e.secret_sha256.data(), e.secret_sha256.size()) != 0) {
    return Unauthenticated(std::string(kInvalid));
  }
  if (e.revoked) {
    return Unauthenticated(std::string(kRevoked));
  }
  if (!e.functions.empty() &&
      !std::binary_search(e.functions.begin(), e.functions.end(), function, std::less<>())) {
    return Unauthenticated("this API key may not invoke function " +
                           QuoteForMessage(function, kMaxQuotedFunction));
  }
  return Principal{
      .key_id = it->first, .tenant = e.tenant, .rate_per_sec = e.rate_per_sec, .burst = e.burst};
}

}  // namespace faas::gateway
