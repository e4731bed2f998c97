// Private: the small HTTP/1.1 client that delivers async-invocation callbacks.
//
//   FAAS_RETURN_IF_ERROR(ValidateCallbackUrl(url));            // at POST /async-function
//   FAAS_ASSIGN_OR_RETURN(int status, PostJson(url, body, 5s)); // later, off the request path
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "faas/base/status.h"

namespace faas::gateway {

struct HttpUrl {
  std::string host;  // name or numeric address (IPv6 without brackets)
  uint16_t port = 80;
  std::string target = "/";  // path and query
};

// Accepts only http://HOST[:PORT][/PATH] (no https, no user-info, no fragment), at most 2048
// bytes, no control characters or spaces. InvalidArgument says what is wrong.
Result<HttpUrl> ParseHttpUrl(std::string_view url);
inline Status ValidateCallbackUrl(std::string_view url) { return ParseHttpUrl(url).status(); }

// POSTs `json` to `url` with Connection: close and returns the response status code. The whole
// exchange (resolve excepted) is bounded by `timeout`. Unavailable for network failures,
// DeadlineExceeded on timeout.
Result<int> PostJson(std::string_view url, const std::string& json,
                     std::chrono::milliseconds timeout);

}  // namespace faas::gateway
