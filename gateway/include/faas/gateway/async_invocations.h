// Async invocations: accepted now, run later by a queue trigger, their result kept for a while
// and optionally POSTed to a callback URL (docs/http-api.md, "Async invocations").
//
//   AsyncInvocations async({.invoker = &sched, .queue = queue, .metrics = &metrics});
//   Result<std::string> id = async.Submit("resize", "/", "", body, "");  // the control API
//   async.Accept(request, spec->config);                    // the gateway, after its edge checks
//   async.Run(message...);                                  // the internal "async" trigger
//
// One component for every door: the gateway's POST /async-function/NAME and GET
// /invocations/ID, the control API's `faasctl invoke --async`, and the daemon's internal
// triggers that run the queued invocations (kAsyncQueue) and deliver callbacks
// (kCallbackQueue). The request and its record are written in one transaction; a record
// moves queued -> running -> succeeded | failed (back to queued between retries).
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/ip_range.h"
#include "faas/base/status.h"
#include "faas/gateway/address_policy.h"
#include "faas/metering/metrics.h"
#include "faas/scheduler/scheduler.h"
#include "faas/store/config.h"
#include "faas/store/queue.h"

namespace faas::gateway {

// Queue names of the async machinery in the embedded queue.
inline constexpr const char* kAsyncQueue = "_async";
inline constexpr const char* kCallbackQueue = "_callbacks";

struct AsyncOptions {
  scheduler::Invoker* invoker = nullptr;  // not owned
  store::Queue* queue = nullptr;          // nullptr: no async invocations (Unavailable)
  metering::Metrics* metrics = nullptr;   // optional, not owned: rejections, tenants
  std::size_t result_bytes = 256u << 10;  // stored response body of an invocation
  std::vector<Cidr> callback_allow;       // faasd --callback-allow
  // How long an Idempotency-Key is remembered (faasd: the async retention).
  std::chrono::milliseconds idempotency_ttl = std::chrono::hours(24);
};

// One accepted request, as the function will see it when it runs.
struct AsyncRequest {
  std::string invocation_id;
  std::string function;
  std::string tenant;  // of the caller's key; "" for a public function or the control API
  std::string method = "POST";
  std::string path = "/";
  std::string query;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // header policy already applied
  std::string callback_url;                                  // "" = none
  // The caller's Idempotency-Key header ("" = none): a repeat by the same tenant for the same
  // function within AsyncOptions::idempotency_ttl queues nothing and names the first invocation.
  std::string idempotency_key;
};

// Longest Idempotency-Key value accepted (InvalidArgument above it).
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 256;

class AsyncInvocations {
 public:
  explicit AsyncInvocations(AsyncOptions options);
  AsyncInvocations(const AsyncInvocations&) = delete;
  AsyncInvocations& operator=(const AsyncInvocations&) = delete;

  // False when faasd runs without a queue.
  bool Enabled() const { return o_.queue != nullptr; }

  // Checks the body against `config` and the callback URL, then queues the request durably.
  // ResourceExhausted for a body over the function's limit, InvalidArgument for a malformed
  // callback URL, PermissionDenied for one whose host does not resolve or resolves to an address
  // faasd must not reach, Unavailable when the resolver or the queue cannot answer now (or there
  // is no queue). InvalidArgument (with "Idempotency-Key" in the message) for a key that is too
  // long. `invocation_id`, if given, receives the id that names the work: the request's own,
  // or for a repeated Idempotency-Key the first request's (nothing is queued then).
  Status Accept(AsyncRequest request, const store::FunctionConfig& config,
                std::string* invocation_id = nullptr);

  // Queues a POST on behalf of the control API (an admin: no key, no rate limit, a new trace).
  // Returns its invocation id. NotFound for an unknown function, InvalidArgument for a bad or
  // refused callback URL or a body over the function's limit, Unavailable without a queue.
  Result<std::string> Submit(const std::string& function, std::string path, std::string query,
                             std::string body, const std::string& callback_url);

  // The record of an invocation; NotFound for an unknown or expired id (or without a queue),
  // Unavailable when the queue cannot be reached now.
  Result<store::AsyncRecord> Get(std::string_view invocation_id) const;
  // The public JSON view of a record (GET /invocations/{id}, the control API, callbacks).
  static std::string ToJson(const store::AsyncRecord& record);

  // Runs one invocation taken from kAsyncQueue: records running, invokes, stores the result and
  // queues its callback; `final_attempt` makes a failure final. Returns true when the message is
  // done (acknowledge it), false to retry it (`error` says why).
  bool Run(std::string_view body, const store::QueueHeaders& headers, uint32_t attempt,
           bool final_attempt, std::string* error);
  // Delivers the stored result of the invocation named by a kCallbackQueue message's `headers`
  // to its callback URL (POST, JSON, 5 s timeout). True on a 2xx answer; records the callback's
  // state.
  bool DeliverCallback(const store::QueueHeaders& headers, bool final_attempt, std::string* error);

 private:
  void Reject(const std::string& reason);

  AsyncOptions o_;
  AddressPolicy callback_policy_;  // checked at accept and again at connect
};

}  // namespace faas::gateway
