// Which headers cross the platform's edge, in each direction.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/gateway/http_server.h"

namespace faas::gateway {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Headers a function may not set, in any case (dropped, not refused: docs/sdk.md): framing and
// hop-by-hop headers are the server's (RFC 9110 §7.6.1), and platform headers are never
// spoofed. The scheduler lower-cases worker header names; this does not rely on it.
bool IsReservedResponseHeader(std::string_view name);

// The headers a function sees: the client's (moved out of `req`) minus platform headers
// (x-faas-*, traceparent) and, when the platform consumed it, the API key; then the route
// params as x-faas-param-<name>, and the trace context.
HeaderList FunctionHeaders(HttpRequest& req, HeaderList&& params, bool strip_authorization,
                           std::string traceparent);

}  // namespace faas::gateway
