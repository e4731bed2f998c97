// Error responses in the DESIGN §4.2 shape, and a JSON string escaper for the hot path.
//
//   res = MakeErrorResponse(503, "no_capacity", "pool is full", inv_id, /*retry_after_s=*/1);
//   // {"error":{"code":"no_capacity","message":"pool is full","invocation_id":"01j9..."}}
#pragma once

#include <string>
#include <string_view>

#include "faas/gateway/http_server.h"

namespace faas::gateway {

// {"error":{"code":"...","message":"...","invocation_id":"..."}} with Content-Type
// application/json and the X-Invocation-Id header set; adds Retry-After when retry_after_s > 0.
// All three strings are JSON-escaped. close is false: the caller decides.
HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message,
                               std::string_view invocation_id, int retry_after_s = 0);

// Escapes `s` for use inside a JSON string literal (quotes not included). The result is valid
// JSON for any input bytes: '"', '\\' and control characters are escaped, valid UTF-8 passes
// through, and each byte of an invalid UTF-8 sequence (overlong forms, surrogates, code points
// above U+10FFFF, truncated sequences) becomes \ufffd.
std::string JsonEscape(std::string_view s);

}  // namespace faas::gateway
