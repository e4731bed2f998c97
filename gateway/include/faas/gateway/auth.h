// API-key authentication at the gateway edge (docs/http-api.md "unauthorized"). A KeyTable is an
// immutable snapshot of the registry's keys, rebuilt and swapped in whole when keys change, so a
// request never waits for a reload:
//
//   FAAS_ASSIGN_OR_RETURN(std::vector<store::ApiKey> keys, registry->ListKeys());
//   gateway.SetKeys(faas::gateway::KeyTable::Build(std::move(keys)));
//   ...
//   faas::Result<Principal> who = keys->Authenticate(req.Header("authorization"), "resize");
//   if (!who.ok()) { /* 401 unauthorized, who.status().message() */ }
//   limiter.Take(who->key_id, who->rate_per_sec, who->burst);
//
// A key is "faas_<id>_<secret>" (store/registry.h). The id finds the record; the secret is
// checked against the stored SHA-256 in constant time. Nothing here logs or returns secrets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "faas/base/status.h"
#include "faas/store/registry.h"

namespace faas::gateway {

// Who a request authenticated as, and the key's own rate limit (rate 0 = unlimited).
struct Principal {
  std::string key_id;
  std::string tenant;
  double rate_per_sec = 0;
  uint32_t burst = 0;
};

// Immutable after Build, so Authenticate is thread-safe without locks.
class KeyTable {
 public:
  // Indexes `keys` (revoked ones included, to answer "API key revoked"). Records with a malformed
  // id or secret_sha256 are skipped and logged (the registry never writes them).
  static std::shared_ptr<const KeyTable> Build(std::vector<store::ApiKey> keys);

  // Checks `authorization_header` (the Authorization value, nullptr when absent) for a valid,
  // unrevoked key allowed to invoke `function`. Costs one SHA-256 of the secret and one hash
  // lookup; the secret is hashed before the lookup, so an unknown id takes as long as a wrong
  // secret. Errors, all Unauthenticated (a key's revocation or scope is told only to a caller
  // who holds its secret):
  //   "missing Authorization: Bearer <key> header"  absent, empty, or another scheme
  //   "invalid API key"                              malformed, unknown id, or wrong secret
  //   "API key revoked"
  //   "this API key may not invoke function \"x\""
  Result<Principal> Authenticate(const std::string* authorization_header,
                                 std::string_view function) const;

  // Number of keys indexed, revoked ones included.
  std::size_t Size() const { return keys_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> secret_sha256;  // raw digest bytes
    std::string tenant;
    std::vector<std::string> functions;  // sorted, unique; empty = all
    double rate_per_sec;
    uint32_t burst;
    bool revoked;
  };
  // Lets find() take the id as a string_view.
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  KeyTable() = default;

  std::unordered_map<std::string, Entry, IdHash, std::equal_to<>> keys_;  // by key id
};

}  // namespace faas::gateway
