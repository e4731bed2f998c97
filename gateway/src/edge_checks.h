// The checks an invocation passes at the edge, before any scheduling work: the caller's API key
// (401 unauthorized; skipped for functions deployed public), the key's rate limit, then the
// function's rate limit (429 rate_limited with Retry-After). A caller without a valid key cannot
// tell a missing private function from an existing one: both answer 401. Refusals are counted
// in faas_rejections_total by reason.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "faas/gateway/auth.h"
#include "faas/gateway/http_server.h"
#include "faas/gateway/rate_limit.h"
#include "faas/metering/metrics.h"
#include "faas/scheduler/scheduler.h"

namespace faas::gateway {

class EdgeChecks {
 public:
  // Both optional, not owned. Rate limits are counted by `limiter` (the cluster's shared one),
  // else in this process.
  explicit EdgeChecks(metering::Metrics* metrics, Limiter* limiter = nullptr);

  // Replaces the API keys (nullptr = none: only public functions can be invoked).
  void SetKeys(std::shared_ptr<const KeyTable> keys);

  // The caller's API key, allowed to invoke `function` ("" admits only keys not limited to some
  // functions); else nullopt with the 401 in `res` (`hint` appended to the message).
  std::optional<Principal> Authenticate(const HttpRequest& req, std::string_view function,
                                        const std::string& inv_id, HttpResponse& res,
                                        std::string_view hint = "");
  // Takes a token from the key's bucket; false with the 429 in `res` when it is empty.
  bool WithinKeyRate(const Principal& p, const std::string& inv_id, HttpResponse& res);
  // Every check for invoking `name`, whose current version is `spec` (nullptr: none, which
  // answers 404 function_not_found, but only to a caller with a valid key). On refusal fills
  // `res` and returns false. *tenant gets the key's tenant ("" for a public function).
  bool Admit(const std::string& name, const scheduler::FunctionSpec* spec, const HttpRequest& req,
             const std::string& inv_id, std::string* tenant, HttpResponse& res);
  // Counts a refusal (faas_rejections_total{reason}).
  void Reject(const std::string& reason);

 private:
  void RateLimited(HttpResponse& res, const std::string& inv_id, std::chrono::nanoseconds wait,
                   const std::string& message);

  metering::Metrics* metrics_;
  RateLimiter local_limiter_;
  Limiter* limiter_;  // never null: the given one or &local_limiter_
  std::atomic<std::shared_ptr<const KeyTable>> keys_;  // never null
};

}  // namespace faas::gateway
