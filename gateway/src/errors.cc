#include "faas/gateway/errors.h"

#include <string>
#include <string_view>

#include "faas/base/text.h"

namespace faas::gateway {

HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message,
                               std::string_view invocation_id, int retry_after_s) {
  HttpResponse res;
  res.status = status;
  res.headers.emplace_back("Content-Type", "application/json");
  res.headers.emplace_back("X-Invocation-Id", std::string(invocation_id));
  if (retry_after_s > 0) {
    res.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  }
  res.body.reserve(64 + code.size() + message.size() + invocation_id.size());
  res.body += R"({"error":{"code":")";
  res.body += JsonEscape(code);
  res.body += R"(","message":")";
  res.body += JsonEscape(message);
  res.body += R"(","invocation_id":")";
  res.body += JsonEscape(invocation_id);
  res.body += "\"}}";
  return res;
}

HttpError ToHttpError(scheduler::Outcome outcome) {
  using scheduler::Outcome;
  // The code is the scheduler's name for the outcome; only the status is decided here.
  const char* code = scheduler::OutcomeName(outcome).data();
  switch (outcome) {
    case Outcome::kOk:
      return {200, code};
    case Outcome::kNotFound:
      return {404, code};
    case Outcome::kPayloadTooLarge:
      return {413, code};
    case Outcome::kFunctionError:
    case Outcome::kInternal:
      return {500, code};
    case Outcome::kCrashed:
    case Outcome::kInitFailed:
    case Outcome::kResponseTooLarge:
    case Outcome::kSandboxViolation:
    case Outcome::kNodeLost:
      return {502, code};
    case Outcome::kNoCapacity:
    case Outcome::kShuttingDown:
      return {503, code};
    case Outcome::kTimeout:
      return {504, code};
  }
  return {500, code};  // not an Outcome; OutcomeName said "internal"
}

}  // namespace faas::gateway
