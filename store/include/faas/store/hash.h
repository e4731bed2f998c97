// Content hashes for artifacts and versions.
//
//   std::string hex = faas::store::Sha256Hex(library_bytes);  // 64 lowercase hex digits
#pragma once

#include <string>
#include <string_view>

namespace faas::store {

// SHA-256 of `data` as 64 lowercase hex digits (OpenSSL EVP). Thread-safe; cannot fail
// (an OpenSSL failure here means allocation failure and aborts via FAAS_CHECK).
std::string Sha256Hex(std::string_view data);

// True if `s` is exactly 64 lowercase hex digits, i.e. a value Sha256Hex can return.
bool IsSha256Hex(std::string_view s);

}  // namespace faas::store
