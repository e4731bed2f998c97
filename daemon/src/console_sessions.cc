#include "console_sessions.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <utility>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/hash.h"
#include "faas/store/sessions.h"

namespace faas::daemon {
namespace {

std::string Sha256(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return {reinterpret_cast<const char*>(digest), sizeof digest};
}

}  // namespace

bool TokenMatches(std::string_view given, std::string_view want) {
  if (want.empty()) {
    return false;
  }
  const std::string a = Sha256(given);
  const std::string b = Sha256(want);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomHex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    // getrandom(2) blocks until the pool is ready and fails only for EINTR or a bad buffer.
    FAAS_CHECK(n > 0 || errno == EINTR);
    got += n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char b : raw) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

MemorySessions::MemorySessions(Options options) : options_(std::move(options)) {}

std::string MemorySessions::Key(std::string_view id) {
  return Sha256(id);
}

Result<ConsoleSessions::Created> MemorySessions::Create() {
  Created c{RandomHex(32), RandomHex(32)};
  const Clock::time_point now = Now();
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [now](const auto& kv) { return kv.second.expires <= now; });
  while (!sessions_.empty() && sessions_.size() >= options_.max_sessions) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) {
        oldest = it;
      }
    }
    sessions_.erase(oldest);
  }
  sessions_[Key(c.id)] = Session{c.csrf, now + options_.ttl};
  return c;
}

Result<std::optional<std::string>> MemorySessions::Find(std::string_view id) {
  if (id.empty()) {
    return std::optional<std::string>();
  }
  const std::string key = Key(id);
  const Clock::time_point now = Now();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    return std::optional<std::string>();
  }
  if (it->second.expires <= now) {
    sessions_.erase(it);
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second.csrf);
}

Status MemorySessions::Erase(std::string_view id) {
  const std::string key = Key(id);
  std::lock_guard lock(mu_);
  sessions_.erase(key);
  return OkStatus();
}

std::size_t MemorySessions::Size() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

StoredSessions::StoredSessions(std::unique_ptr<store::SessionStore> store, std::chrono::seconds ttl)
    : store_(std::move(store)), ttl_(ttl) {}

StoredSessions::~StoredSessions() = default;

Result<ConsoleSessions::Created> StoredSessions::Create() {
  Created c{RandomHex(32), RandomHex(32)};
  FAAS_RETURN_IF_ERROR(store_->PutSession(store::Sha256Hex(c.id), c.csrf, ttl_));
  return c;
}

Result<std::optional<std::string>> StoredSessions::Find(std::string_view id) {
  if (id.empty()) {
    return std::optional<std::string>();
  }
  // The hash is what the store keys on: a forged or altered id simply finds no row.
  return store_->FindSession(store::Sha256Hex(id));
}

Status StoredSessions::Erase(std::string_view id) {
  if (id.empty()) {
    return OkStatus();
  }
  return store_->DeleteSession(store::Sha256Hex(id));
}

}  // namespace faas::daemon
