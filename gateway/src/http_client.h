// Private: the small HTTP/1.1 client that delivers async-invocation callbacks.
//
//   FAAS_ASSIGN_OR_RETURN(HttpUrl u, ParseHttpUrl(url));      // at POST /async-function, then
//   FAAS_RETURN_IF_ERROR(policy.Resolve(u.host, u.port).status());  // (gateway.cc) and later,
//   FAAS_ASSIGN_OR_RETURN(int status, PostJson(url, body, 5s, policy));  // off the request path
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "faas/base/status.h"
#include "faas/gateway/address_policy.h"

namespace faas::gateway {

struct HttpUrl {
  std::string host;  // name or numeric address (IPv6 without brackets)
  uint16_t port = 80;
  std::string target = "/";  // path and query
};

// Accepts only http://HOST[:PORT][/PATH] (no https, no user-info, no fragment), at most 2048
// bytes, no control characters or spaces. InvalidArgument says what is wrong.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// POSTs `json` to `url` with Connection: close and returns the response status code. The host is
// resolved once and every address checked against `policy` (PermissionDenied when one is
// blocked); only the checked addresses are connected to, so a second DNS answer cannot rebind
// the URL to a blocked address. The whole exchange (resolve excepted) is bounded by `timeout`.
// Unavailable for network failures, DeadlineExceeded on timeout.
Result<int> PostJson(std::string_view url, const std::string& json,
                     std::chrono::milliseconds timeout, const AddressPolicy& policy);

}  // namespace faas::gateway
