// Error responses (docs/http-api.md, "Errors"), and the HTTP status of each scheduler outcome.
// JsonEscape is faas::JsonEscape (base/text.h).
//
//   res = MakeErrorResponse(503, "no_capacity", "pool is full", inv_id, /*retry_after_s=*/1);
//   // {"error":{"code":"no_capacity","message":"pool is full","invocation_id":"01j9..."}}
#pragma once

#include <string>
#include <string_view>

#include "faas/base/text.h"
#include "faas/gateway/http_server.h"
#include "faas/scheduler/scheduler.h"

namespace faas::gateway {

// {"error":{"code":"...","message":"...","invocation_id":"..."}} with Content-Type
// application/json and the X-Invocation-Id header set; adds Retry-After when retry_after_s > 0.
// All three strings are JSON-escaped. close is false: the caller decides.
HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message,
                               std::string_view invocation_id, int retry_after_s = 0);

// HTTP status and stable error code for a scheduler outcome (one table; one test per row).
struct HttpError {
  int status;
  const char* code;
};
HttpError ToHttpError(scheduler::Outcome outcome);

// Escapes text for a JSON string literal; see faas::JsonEscape.
using faas::JsonEscape;

}  // namespace faas::gateway
