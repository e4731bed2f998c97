#include "faas/gateway/async_invocations.h"

#include <nlohmann/json.hpp>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/base/time.h"
#include "faas/gateway/errors.h"
#include "faas/gateway/trace_context.h"

#include "header_policy.h"
#include "http_client.h"

namespace faas::gateway {
namespace {

using scheduler::Outcome;
using Json = nlohmann::json;

std::string HeaderValue(const store::QueueHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

std::shared_ptr<spdlog::logger> Log() {
  static auto log = log::Get("gateway");
  return log;
}

}  // namespace

AsyncInvocations::AsyncInvocations(AsyncOptions options)
    : o_(std::move(options)), callback_policy_(o_.callback_allow) {}

void AsyncInvocations::Reject(const std::string& reason) {
  if (o_.metrics != nullptr) {
    o_.metrics->RecordRejection(reason);
  }
}

Status AsyncInvocations::Accept(AsyncRequest request, const store::FunctionConfig& config,
                                std::string* invocation_id) {
  if (invocation_id != nullptr) {
    *invocation_id = request.invocation_id;
  }
  if (o_.queue == nullptr) {
    return UnavailableError("this faasd runs without a queue, so it takes no async invocations");
  }
  if (request.body.size() > config.max_body_bytes) {
    Reject("payload_too_large");
    return ResourceExhaustedError("the request body of " + std::to_string(request.body.size()) +
                                  " bytes is over the limit of " +
                                  std::to_string(config.max_body_bytes) + " bytes for \"" +
                                  request.function + "\"");
  }
  if (request.idempotency_key.size() > kMaxIdempotencyKeyBytes) {
    Reject("invalid_idempotency_key");
    return InvalidArgumentError(
        "the Idempotency-Key header is " + std::to_string(request.idempotency_key.size()) +
        " bytes, over the limit of " + std::to_string(kMaxIdempotencyKeyBytes));
  }
  if (!request.callback_url.empty()) {
    FAAS_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(request.callback_url));
    // Checked now so the caller hears of it, and again when the callback is sent (PostJson):
    // the name may resolve differently by then.
    if (Result<std::vector<SocketAddress>> to = callback_policy_.Resolve(url.host, url.port);
        !to.ok()) {
      Reject("invalid_callback");
      return Status(to.status().code() == StatusCode::kUnavailable ? StatusCode::kUnavailable
                                                                   : StatusCode::kPermissionDenied,
                    "callback URL refused: " + to.status().message());
    }
  }
  // The request travels in the message's headers; the function's own as "h:<name>".
  store::QueueHeaders headers;
  headers.emplace_back("id", request.invocation_id);
  headers.emplace_back("fn", request.function);
  headers.emplace_back("method", std::move(request.method));
  headers.emplace_back("path", std::move(request.path));
  headers.emplace_back("query", std::move(request.query));
  headers.emplace_back("tenant", request.tenant);
  for (auto& [k, v] : request.headers) {
    if (k != "x-callback-url") {
      headers.emplace_back("h:" + k, std::move(v));
    }
  }
  store::AsyncRecord rec;
  rec.invocation_id = request.invocation_id;
  rec.function = request.function;
  rec.tenant = request.tenant;
  rec.status = "queued";
  rec.callback_url = request.callback_url;
  rec.callback_status = request.callback_url.empty() ? "" : "pending";
  rec.created_unix_ms = rec.updated_unix_ms = UnixMillisNow();
  Status queued;
  if (request.idempotency_key.empty()) {
    queued = o_.queue->PublishAsync(kAsyncQueue, rec, request.body, headers).status();
  } else {
    // Scoped by tenant and function, so two tenants (or two functions) never share a key. The
    // parts are length-prefixed: no choice of names can make two scopes collide.
    std::string key = std::to_string(request.tenant.size()) + ":" + request.tenant +
                      std::to_string(request.function.size()) + ":" + request.function +
                      request.idempotency_key;
    Result<store::AsyncPublish> once = o_.queue->PublishAsyncOnce(
        kAsyncQueue, key, o_.idempotency_ttl, rec, request.body, headers);
    queued = once.status();
    if (once.ok() && once->duplicate) {
      FAAS_LOG(Log(), debug, "async.idempotent_repeat", {"inv", request.invocation_id},
               {"fn", request.function}, {"first", once->invocation_id});
      if (invocation_id != nullptr) {
        *invocation_id = once->invocation_id;
      }
    }
  }
  if (!queued.ok()) {
    FAAS_LOG(Log(), err, "async.enqueue_failed", {"inv", request.invocation_id},
             {"fn", request.function}, {"error", queued.ToString()});
    if (queued.code() == StatusCode::kUnknown) {
      return queued;  // it may have been queued: the caller must not be told it was not
    }
    return UnavailableError("could not queue the invocation: " + queued.message());
  }
  return OkStatus();
}

Result<std::string> AsyncInvocations::Submit(const std::string& function, std::string path,
                                             std::string query, std::string body,
                                             const std::string& callback_url) {
  if (o_.queue == nullptr) {
    return UnavailableError("this faasd runs without a queue, so it takes no async invocations");
  }
  std::shared_ptr<const scheduler::FunctionSpec> spec = o_.invoker->Current(function);
  if (spec == nullptr) {
    return NotFoundError("function \"" + function + "\" does not exist");
  }
  AsyncRequest r;
  r.invocation_id = NewInvocationId();
  r.function = function;
  r.path = std::move(path);
  r.query = std::move(query);
  r.body = std::move(body);
  r.callback_url = callback_url;
  std::string trace_id;
  r.headers.emplace_back("traceparent", ContinueTrace(nullptr, &trace_id));
  std::string id = r.invocation_id;
  Status queued = Accept(std::move(r), spec->config);
  if (queued.ok()) {
    return id;
  }
  // The control API reports a body over the limit like a bad callback URL: invalid_argument.
  return Status(queued.code() == StatusCode::kUnavailable ? StatusCode::kUnavailable
                                                          : StatusCode::kInvalidArgument,
                queued.message());
}

Result<store::AsyncRecord> AsyncInvocations::Get(std::string_view invocation_id) const {
  if (o_.queue == nullptr) {
    return NotFoundError("this faasd runs without a queue");
  }
  return o_.queue->GetAsync(invocation_id);
}

std::string AsyncInvocations::ToJson(const store::AsyncRecord& r) {
  Json j = {{"invocation_id", r.invocation_id},
            {"function", r.function},
            {"status", r.status},
            {"attempts", r.attempts},
            {"created_unix_ms", r.created_unix_ms},
            {"updated_unix_ms", r.updated_unix_ms}};
  if (r.status == "succeeded" || (r.status == "failed" && r.http_status != 0)) {
    Json headers = Json::object();
    for (const auto& [k, v] : r.headers) {
      headers[k] = v;
    }
    bool utf8 = IsValidUtf8(r.body);
    j["result"] = {{"status", r.http_status},
                   {"headers", std::move(headers)},
                   {"body", utf8 ? r.body : Base64Encode(r.body)},
                   {"body_encoding", utf8 ? "utf-8" : "base64"},
                   {"truncated", r.body_truncated}};
  }
  if (!r.error_code.empty()) {
    j["error"] = {{"code", r.error_code}, {"message", r.error_message}};
  }
  if (!r.callback_url.empty()) {
    j["callback"] = {{"url", r.callback_url}, {"status", r.callback_status}};
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool AsyncInvocations::Run(std::string_view body, const store::QueueHeaders& headers,
                           uint32_t attempt, bool final_attempt, std::string* error) {
  std::string id = HeaderValue(headers, "id");
  std::string fn = HeaderValue(headers, "fn");
  Result<store::AsyncRecord> got = o_.queue->GetAsync(id);
  if (!got.ok()) {
    *error = "no async record for \"" + id + "\": " + got.status().ToString();
    return true;  // expired or never recorded: nothing to run it for
  }
  store::AsyncRecord rec = std::move(*got);
  rec.status = "running";
  rec.attempts = attempt;
  rec.updated_unix_ms = UnixMillisNow();
  if (Status s = o_.queue->PutAsync(rec); !s.ok()) {
    *error = s.ToString();
    return false;
  }
  scheduler::InvokeRequest ir;
  // Every attempt is its own ledger row, so a retry is billed too.
  ir.invocation_id = attempt <= 1 ? id : id + "-a" + std::to_string(attempt);
  ir.method = HeaderValue(headers, "method");
  ir.path = HeaderValue(headers, "path");
  ir.query = HeaderValue(headers, "query");
  ir.tenant = rec.tenant;
  ir.trigger = "async";
  ir.message_id = id;
  ir.attempt = attempt;
  ir.body.assign(body);
  for (const auto& [k, v] : headers) {
    if (k.starts_with("h:")) {
      ir.headers.emplace_back(k.substr(2), v);
    }
  }
  scheduler::InvokeResult r = o_.invoker->Invoke(fn, std::move(ir));
  if (o_.metrics != nullptr && !rec.tenant.empty()) {
    o_.metrics->RecordTenantInvocation(rec.tenant, fn);
    o_.metrics->RecordTenantCpu(rec.tenant, r.cpu);
  }
  rec.updated_unix_ms = UnixMillisNow();
  bool done = true;
  if (r.outcome == Outcome::kOk) {
    rec.status = "succeeded";
    rec.http_status = r.status;
    rec.headers.clear();
    for (auto& [k, v] : r.headers) {
      if (!IsReservedResponseHeader(k)) {
        rec.headers.emplace_back(std::move(k), std::move(v));
      }
    }
    rec.body_truncated = r.body.size() > o_.result_bytes;
    if (rec.body_truncated) {
      r.body.resize(o_.result_bytes);
    }
    rec.body = std::move(r.body);
    rec.error_code.clear();
    rec.error_message.clear();
  } else {
    HttpError e = ToHttpError(r.outcome);
    rec.error_code = e.code;
    rec.error_message = r.error_message;
    rec.http_status = e.status;
    *error = std::string(e.code) + ": " + r.error_message;
    // A function that no longer exists or a body over its limit will not get better. But on a
    // cluster the gateway that runs the work may not have seen a deploy that the accepting
    // gateway had (each follows the registry within about a second): work queued moments ago
    // for an unknown function is retried, not failed.
    constexpr int64_t kRegistryLagMs = 10'000;
    bool recent = UnixMillisNow() - rec.created_unix_ms < kRegistryLagMs;
    bool permanent =
        (r.outcome == Outcome::kNotFound && !recent) || r.outcome == Outcome::kPayloadTooLarge;
    done = final_attempt || permanent;
    rec.status = done ? "failed" : "queued";
  }
  if (done && !rec.callback_url.empty()) {
    // The final record and its callback message in one transaction: the callback never reads
    // a record that is not final yet (it used to, when the message went first), and both are
    // written before this message is acknowledged, so a crash in between sends the callback
    // twice (at least once), never zero times.
    if (Result<int64_t> cb = o_.queue->PublishAsync(kCallbackQueue, rec, "", {{"id", id}});
        !cb.ok()) {
      *error = "could not store the result and queue its callback: " + cb.status().ToString();
      return false;
    }
  } else if (Status s = o_.queue->PutAsync(rec); !s.ok()) {
    *error = s.ToString();
    return false;
  }
  FAAS_LOG(Log(), debug, "async.done", {"inv", id}, {"fn", fn}, {"attempt", attempt},
           {"status", rec.status});
  return done;
}

bool AsyncInvocations::DeliverCallback(const store::QueueHeaders& headers, bool final_attempt,
                                       std::string* error) {
  std::string invocation_id = HeaderValue(headers, "id");
  Result<store::AsyncRecord> rec = o_.queue->GetAsync(invocation_id);
  if (!rec.ok() || rec->callback_url.empty()) {
    return true;  // expired or no callback: nothing to deliver
  }
  Result<int> status =
      PostJson(rec->callback_url, ToJson(*rec), std::chrono::seconds(5), callback_policy_);
  bool delivered = status.ok() && *status >= 200 && *status < 300;
  if (!delivered) {
    *error = status.ok() ? "callback answered HTTP " + std::to_string(*status)
                         : status.status().message();
  }
  if (delivered || final_attempt) {
    rec->callback_status = delivered ? "delivered" : "failed";
    rec->updated_unix_ms = UnixMillisNow();
    if (Status s = o_.queue->PutAsync(*rec); !s.ok()) {
      FAAS_LOG(Log(), warn, "async.callback_state_lost", {"inv", invocation_id},
               {"error", s.ToString()});
    }
  }
  if (delivered) {
    FAAS_LOG(Log(), debug, "async.callback", {"inv", invocation_id}, {"url", rec->callback_url},
             {"delivered", true});
  } else {
    FAAS_LOG(Log(), warn, "async.callback", {"inv", invocation_id}, {"url", rec->callback_url},
             {"delivered", false}, {"final", final_attempt}, {"error", *error});
  }
  return delivered;
}

}  // namespace faas::gateway
