#include "faas/gateway/gateway.h"

#include <sys/random.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>

#include <nlohmann/json.hpp>

#include "faas/base/event_loop.h"
#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/gateway/errors.h"

#include "http_client.h"

namespace faas::gateway {
namespace {

using scheduler::Outcome;
using Json = nlohmann::json;

constexpr std::string_view kFunctionPrefix = "/function/";
constexpr std::string_view kAsyncPrefix = "/async-function/";
constexpr std::string_view kInvocationsPrefix = "/invocations/";
constexpr std::string_view kQueuesPrefix = "/queues/";
constexpr std::string_view kParamHeaderPrefix = "x-faas-param-";

// ASCII case-insensitive: does `name` start with the lower-case `prefix`?
bool StartsWithIgnoreCase(std::string_view name, std::string_view prefix) {
  if (name.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != prefix[i]) {
      return false;
    }
  }
  return true;
}

// Headers a function may not set, in any case (dropped, not refused: docs/sdk.md): framing and
// hop-by-hop headers are the server's (RFC 9110 §7.6.1), and platform headers are never
// spoofed. The scheduler lower-cases worker header names; this does not rely on it.
bool IsReservedResponseHeader(std::string_view name) {
  static constexpr std::string_view kExact[] = {
      "content-length", "transfer-encoding", "connection",      "keep-alive", "upgrade", "te",
      "trailer",        "server-timing",     "x-invocation-id",
  };
  for (std::string_view reserved : kExact) {
    if (name.size() == reserved.size() && StartsWithIgnoreCase(name, reserved)) {
      return true;
    }
  }
  return StartsWithIgnoreCase(name, "x-faas-") || StartsWithIgnoreCase(name, "proxy-");
}

// What the platform headers, the access log and the request metrics say about one request.
struct RequestInfo {
  std::string route = "other";  // a template, never the raw path (bounded cardinality)
  std::string function;
  std::string tenant;
  std::string trace_id;
  bool cold = false;
  std::string server_timing = "queue;dur=0";  // ServerTiming of the invocation, if one ran
};

// X-Invocation-Id (unless the response has it), X-Faas-Cold-Start and Server-Timing: once per
// response, whichever route answered.
void AddPlatformHeaders(HttpResponse& res, const std::string& inv_id, const RequestInfo& info) {
  bool has_id = false;
  for (const auto& [k, v] : res.headers) {
    has_id = has_id || k == "X-Invocation-Id";
  }
  if (!has_id) {
    res.headers.emplace_back("X-Invocation-Id", inv_id);
  }
  res.headers.emplace_back("X-Faas-Cold-Start", info.cold ? "true" : "false");
  res.headers.emplace_back("Server-Timing", info.server_timing);
}

// GET /healthz (always 200 while serving) and /readyz (503 while starting or draining).
void Health(std::string_view path, bool ready, const std::string& inv_id, RequestInfo& info,
            HttpResponse& res) {
  info.route = path == "/healthz" ? "/healthz" : "/readyz";
  if (path == "/healthz" || ready) {
    res.status = 200;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = "{\"status\":\"ok\"}\n";
  } else {
    res = MakeErrorResponse(503, "not_ready", "faasd is starting or draining", inv_id);
  }
}

// The NAME and "/rest" ("/" when absent) of what follows /function/ or /async-function/.
void SplitNameAndRest(std::string_view tail, std::string* name, std::string* rest) {
  const std::size_t slash = tail.find('/');
  *name = std::string(tail.substr(0, slash));
  *rest = std::string(slash == std::string_view::npos ? "/" : tail.substr(slash));
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Per-thread generator for span and trace ids, seeded from getrandom(2).
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng = [] {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    }
    return std::mt19937_64(seed);
  }();
  return rng;
}

void AppendHex64(std::string& out, uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  out.append(buf, 16);
}

// The public JSON view of an async invocation (GET /invocations/{id} and callbacks).
std::string AsyncJson(const store::AsyncRecord& r) {
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

std::string HeaderValue(const store::QueueHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

}  // namespace

std::string ContinueTrace(const std::string* incoming, std::string* trace_id) {
  // version "00" - trace-id (32 hex, not all 0) - parent-id (16 hex, not all 0) - flags (2 hex)
  std::string out;
  out.reserve(55);
  if (incoming != nullptr && incoming->size() == 55 && incoming->starts_with("00-") &&
      (*incoming)[35] == '-' && (*incoming)[52] == '-') {
    std::string_view in = *incoming;
    std::string_view tid = in.substr(3, 32);
    std::string_view pid = in.substr(36, 16);
    std::string_view flags = in.substr(53, 2);
    // All-zero trace and parent ids are invalid (W3C trace context §3.2.2).
    if (IsHex(tid) && IsHex(pid) && IsHex(flags) && tid.find_first_not_of('0') != tid.npos &&
        pid.find_first_not_of('0') != pid.npos) {
      out.append("00-").append(tid).append("-");
      AppendHex64(out, Rng()() | 1);
      out.append("-").append(flags);
      trace_id->assign(tid);
      return out;
    }
  }
  out = "00-";
  AppendHex64(out, Rng()());
  AppendHex64(out, Rng()() | 1);
  trace_id->assign(out, 3, 32);
  out += '-';
  AppendHex64(out, Rng()() | 1);
  out += "-00";
  return out;
}

HttpError ToHttpError(Outcome outcome) {
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
      return {502, code};
    case Outcome::kNoCapacity:
    case Outcome::kShuttingDown:
      return {503, code};
    case Outcome::kTimeout:
      return {504, code};
  }
  return {500, code};  // not an Outcome; OutcomeName said "internal"
}

std::string ServerTiming(const scheduler::InvokeResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "queue;dur=%.3f, cold;dur=%.3f, exec;dur=%.3f, cpu;dur=%.3f",
                ToMillis(r.timings.queue), ToMillis(r.timings.cold), ToMillis(r.timings.exec),
                ToMillis(r.cpu));
  return buf;
}

struct Gateway::Impl {
  GatewayOptions o;
  Gateway* self;
  AddressPolicy callback_policy;  // where callbacks may go (checked at accept and at connect)
  RateLimiter limiter;
  std::atomic<int64_t> in_flight{0};
  std::mutex rejections_mu;
  std::function<HttpServer::Rejections()> server_rejections;  // guarded by rejections_mu

  void Reject(const std::string& reason) {
    if (o.metrics != nullptr) {
      o.metrics->RecordRejection(reason);
    }
  }
  void TenantInvocation(const std::string& tenant, const std::string& function) {
    if (o.metrics != nullptr && !tenant.empty()) {
      o.metrics->RecordTenantInvocation(tenant, function);
    }
  }
  // For /metrics: requests in flight and the HTTP server's own refusals.
  metering::HttpGauges Gauges() {
    metering::HttpGauges g;
    g.in_flight = in_flight.load(std::memory_order_relaxed);
    std::lock_guard lock(rejections_mu);
    if (server_rejections) {
      HttpServer::Rejections r = server_rejections();
      g.rejections = {{"connections_global", r.connections_global},
                      {"connections_per_ip", r.connections_per_ip},
                      {"header_too_large", r.header_too_large},
                      {"payload_too_large", r.payload_too_large},
                      {"request_timeout", r.request_timeout},
                      {"bad_request", r.bad_request}};
    }
    return g;
  }
  std::shared_ptr<spdlog::logger> access = log::Get("access");
  std::shared_ptr<spdlog::logger> log = log::Get("gateway");

  // The caller's API key, allowed to invoke `function` ("" admits only keys not limited to some
  // functions); else nullopt with the 401 in `res` (`hint` appended to the message).
  std::optional<Principal> Authenticate(const HttpRequest& req, std::string_view function,
                                        const std::string& inv_id, HttpResponse& res,
                                        std::string_view hint = "") {
    Result<Principal> p = self->keys_.load()->Authenticate(req.Header("authorization"), function);
    if (p.ok()) {
      return std::move(*p);
    }
    Reject("unauthorized");
    res = MakeErrorResponse(401, "unauthorized", p.status().message() + std::string(hint), inv_id);
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return std::nullopt;
  }

  // Takes a token from the key's bucket; false with the 429 in `res` when it is empty.
  bool WithinKeyRate(const Principal& p, const std::string& inv_id, HttpResponse& res) {
    if (p.rate_per_sec <= 0) {
      return true;
    }
    std::chrono::nanoseconds wait = limiter.Take("k:" + p.key_id, p.rate_per_sec, p.burst);
    if (wait.count() <= 0) {
      return true;
    }
    RateLimited(res, inv_id, wait,
                "this API key is over its rate of " + FormatRate(p.rate_per_sec));
    return false;
  }

  // The edge checks (see gateway.h). On refusal fills `res` and returns false. `spec` is the
  // function's current version when it exists.
  bool Admit(const std::string& name, const HttpRequest& req, const std::string& inv_id,
             RequestInfo& info, HttpResponse& res,
             std::shared_ptr<const scheduler::FunctionSpec>& spec) {
    spec = o.scheduler->Current(name);
    if (spec == nullptr || !spec->config.is_public) {
      std::optional<Principal> p = Authenticate(req, name, inv_id, res);
      if (!p) {
        return false;
      }
      info.tenant = p->tenant;
      if (!WithinKeyRate(*p, inv_id, res)) {
        return false;
      }
    }
    if (spec == nullptr) {
      Reject("function_not_found");
      res = MakeErrorResponse(404, "function_not_found", "function \"" + name + "\" does not exist",
                              inv_id);
      return false;
    }
    if (spec->config.rate_per_sec > 0) {
      std::string bucket = "f:" + name;
      std::chrono::nanoseconds wait =
          limiter.Take(bucket, spec->config.rate_per_sec, store::EffectiveBurst(spec->config));
      if (wait.count() > 0) {
        RateLimited(res, inv_id, wait,
                    "function \"" + name + "\" is over its rate of " +
                        FormatRate(spec->config.rate_per_sec));
        return false;
      }
    }
    return true;
  }

  static std::string FormatRate(double rate) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%g/s", rate);
    return buf;
  }

  void RateLimited(HttpResponse& res, const std::string& inv_id, std::chrono::nanoseconds wait,
                   const std::string& message) {
    Reject("rate_limited");
    double seconds = static_cast<double>(wait.count()) / 1e9;
    int retry_after = std::max(1, static_cast<int>(std::ceil(seconds)));
    res = MakeErrorResponse(429, "rate_limited",
                            message + "; retry after " + std::to_string(retry_after) + "s", inv_id,
                            retry_after);
  }

  // The headers the function sees: the client's minus platform headers (and the API key when
  // the platform consumed it), then the route params and the trace context.
  static std::vector<std::pair<std::string, std::string>> FunctionHeaders(
      HttpRequest& req, std::vector<std::pair<std::string, std::string>>&& params,
      bool strip_authorization, std::string traceparent) {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(req.headers.size() + params.size() + 1);
    for (auto& [k, v] : req.headers) {
      if (k.starts_with("x-faas-") || k == "traceparent" ||
          (strip_authorization && k == "authorization")) {
        continue;  // platform headers are set by the platform only
      }
      out.emplace_back(std::move(k), std::move(v));
    }
    for (auto& [k, v] : params) {  // after the stripping above: clients cannot spoof these
      out.emplace_back(std::string(kParamHeaderPrefix) + k, std::move(v));
    }
    out.emplace_back("traceparent", std::move(traceparent));
    return out;
  }

  // The edge checks, then the scheduler's request; false with the refusal in `res`.
  bool PrepareInvoke(const std::string& name, std::string path, HttpRequest& req, HttpResponse& res,
                     const std::string& inv_id, RequestInfo& info,
                     std::vector<std::pair<std::string, std::string>>&& params,
                     scheduler::InvokeRequest* ir) {
    info.function = name;
    std::shared_ptr<const scheduler::FunctionSpec> spec;
    if (!Admit(name, req, inv_id, info, res, spec)) {
      return false;
    }
    std::string traceparent = ContinueTrace(req.Header("traceparent"), &info.trace_id);
    ir->invocation_id = inv_id;
    ir->method = req.method;
    ir->path = std::move(path);
    ir->query = std::move(req.query);
    ir->body = std::move(req.body);
    ir->tenant = info.tenant;
    ir->headers =
        FunctionHeaders(req, std::move(params), !spec->config.is_public, std::move(traceparent));
    return true;
  }

  // The invocation's answer as the client's response.
  void FinishInvoke(const std::string& name, scheduler::InvokeResult& r, HttpResponse& res,
                    const std::string& inv_id, RequestInfo& info) {
    info.cold = r.cold_start;
    info.server_timing = ServerTiming(r);
    TenantInvocation(info.tenant, name);
    if (r.outcome == Outcome::kOk) {
      res.status = r.status;
      res.headers.reserve(r.headers.size() + 4);
      for (auto& [k, v] : r.headers) {
        if (!IsReservedResponseHeader(k)) {
          res.headers.emplace_back(std::move(k), std::move(v));
        }
      }
      res.body = std::move(r.body);
    } else {
      HttpError e = ToHttpError(r.outcome);
      if (r.outcome == Outcome::kNoCapacity || r.outcome == Outcome::kPayloadTooLarge) {
        Reject(e.code);
      }
      std::string message = r.outcome == Outcome::kFunctionError
                                ? "the function \"" + name + "\" failed: " + r.error_message
                                : r.error_message;
      res = MakeErrorResponse(e.status, e.code, message, inv_id,
                              r.outcome == Outcome::kNoCapacity ? 1 : 0);
    }
    res.headers.emplace_back("X-Faas-Trace-Id", info.trace_id);
    if (!r.logs.empty()) {
      static auto fnlog = log::Get("function");
      FAAS_LOG(fnlog, debug, "function.output", {"inv", inv_id}, {"fn", name}, {"output", r.logs});
    }
  }

  void Invoke(const std::string& name, std::string path, HttpRequest& req, HttpResponse& res,
              const std::string& inv_id, RequestInfo& info,
              std::vector<std::pair<std::string, std::string>>&& params) {
    scheduler::InvokeRequest ir;
    if (!PrepareInvoke(name, std::move(path), req, res, inv_id, info, std::move(params), &ir)) {
      return;
    }
    scheduler::InvokeResult r = o.scheduler->Invoke(name, std::move(ir));
    FinishInvoke(name, r, res, inv_id, info);
  }

  void NoRoute(const HttpRequest& req, const std::string& inv_id, HttpResponse& res) {
    Reject("route_not_found");
    res = MakeErrorResponse(
        404, "route_not_found",
        "no route for " + req.method + " " + req.path + " (functions are served at /function/NAME)",
        inv_id);
  }

  // Every response, whichever route answered: platform headers, metrics, the access log line.
  void Finalize(std::string_view method, const std::string& remote, HttpResponse& res,
                const std::string& inv_id, const RequestInfo& info, Clock::time_point t0) {
    AddPlatformHeaders(res, inv_id, info);
    std::chrono::nanoseconds took = Clock::now() - t0;
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (o.metrics != nullptr) {
      o.metrics->RecordHttpRequest(info.route, info.function, res.status, took);
    }
    if (o.access_log) {
      FAAS_LOG(access, info, "request", {"method", method}, {"route", info.route},
               {"fn", info.function}, {"status", res.status}, {"ms", ToMillis(took)},
               {"cold", info.cold}, {"tenant", info.tenant}, {"inv", inv_id},
               {"trace", info.trace_id}, {"remote", remote});
    }
  }

  // Routes that may block (storage, metrics rendering) and async-handler work run here.
  BlockingPool blocking;

  // POST /async-function/{name}[/{rest}]: checks, then queues durably and answers 202.
  void InvokeAsync(const std::string& name, std::string path, HttpRequest& req, HttpResponse& res,
                   const std::string& inv_id, RequestInfo& info) {
    info.function = name;
    std::shared_ptr<const scheduler::FunctionSpec> spec;
    if (req.method != "POST") {
      res = MakeErrorResponse(405, "method_not_allowed",
                              "async invocations are POST /async-function/NAME", inv_id);
      res.headers.emplace_back("Allow", "POST");
    } else if (o.queue == nullptr) {
      res = MakeErrorResponse(503, "async_unavailable",
                              "this faasd runs without a queue, so it takes no async invocations",
                              inv_id);
    } else if (Admit(name, req, inv_id, info, res, spec)) {
      Status queued = Enqueue(name, std::move(path), req, inv_id, info, *spec);
      if (queued.ok()) {
        res.status = 202;
        res.headers.emplace_back("Content-Type", "application/json");
        res.headers.emplace_back("Location", std::string(kInvocationsPrefix) + inv_id);
        res.headers.emplace_back("X-Faas-Trace-Id", info.trace_id);
        res.body = "{\"invocation_id\":\"" + inv_id + "\",\"status\":\"queued\",\"status_url\":\"" +
                   std::string(kInvocationsPrefix) + inv_id + "\"}\n";
      } else if (queued.code() == StatusCode::kResourceExhausted) {
        res = MakeErrorResponse(413, "payload_too_large", queued.message(), inv_id);
      } else if (queued.code() == StatusCode::kInvalidArgument) {
        res = MakeErrorResponse(400, "invalid_callback_url", queued.message(), inv_id);
      } else if (queued.code() == StatusCode::kPermissionDenied) {
        res = MakeErrorResponse(400, "invalid_callback", queued.message(), inv_id);
      } else {
        res = MakeErrorResponse(503, "async_unavailable", queued.message(), inv_id, 1);
      }
    }
  }

  // Checks the body and callback URL and queues the invocation durably. ResourceExhausted for a
  // body over the function's limit, InvalidArgument for a malformed callback URL,
  // PermissionDenied for one whose host does not resolve or resolves to an address faasd must
  // not reach (callback_policy), Unavailable when the resolver or the queue cannot answer now.
  Status Enqueue(const std::string& name, std::string path, HttpRequest& req,
                 const std::string& inv_id, RequestInfo& info,
                 const scheduler::FunctionSpec& spec) {
    if (req.body.size() > spec.config.max_body_bytes) {
      Reject("payload_too_large");
      return ResourceExhaustedError("the request body of " + std::to_string(req.body.size()) +
                                    " bytes is over the limit of " +
                                    std::to_string(spec.config.max_body_bytes) + " bytes for \"" +
                                    name + "\"");
    }
    std::string callback;
    if (const std::string* cb = req.Header("x-callback-url")) {
      FAAS_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(*cb));
      // Checked now so the caller hears of it, and again when the callback is sent (PostJson):
      // the name may resolve differently by then.
      if (Result<std::vector<SocketAddress>> to = callback_policy.Resolve(url.host, url.port);
          !to.ok()) {
        Reject("invalid_callback");
        return Status(to.status().code() == StatusCode::kUnavailable
                          ? StatusCode::kUnavailable
                          : StatusCode::kPermissionDenied,
                      "callback URL refused: " + to.status().message());
      }
      callback = *cb;
    }
    std::string traceparent = ContinueTrace(req.Header("traceparent"), &info.trace_id);
    store::QueueHeaders headers;
    headers.emplace_back("id", inv_id);
    headers.emplace_back("fn", name);
    headers.emplace_back("method", req.method);
    headers.emplace_back("path", std::move(path));
    headers.emplace_back("query", req.query);
    headers.emplace_back("tenant", info.tenant);
    for (auto& [k, v] : FunctionHeaders(req, {}, !spec.config.is_public, std::move(traceparent))) {
      if (k != "x-callback-url") {
        headers.emplace_back("h:" + k, std::move(v));
      }
    }
    store::AsyncRecord rec;
    rec.invocation_id = inv_id;
    rec.function = name;
    rec.tenant = info.tenant;
    rec.status = "queued";
    rec.callback_url = callback;
    rec.callback_status = callback.empty() ? "" : "pending";
    rec.created_unix_ms = rec.updated_unix_ms = UnixMillisNow();
    Result<int64_t> id = o.queue->PublishAsync(kAsyncQueue, rec, req.body, headers);
    if (!id.ok()) {
      FAAS_LOG(log, err, "async.enqueue_failed", {"inv", inv_id}, {"fn", name},
               {"error", id.status().ToString()});
      return UnavailableError("could not queue the invocation: " + id.status().message());
    }
    return OkStatus();
  }

  // POST /queues/{name}: publishes the body to the embedded queue. Needs a key that is not
  // limited to some functions (a queue feeds whatever its triggers say); the key's rate applies.
  void PublishToQueue(std::string_view queue, HttpRequest& req, HttpResponse& res,
                      const std::string& inv_id, RequestInfo& info) {
    if (req.method != "POST") {
      res = MakeErrorResponse(405, "method_not_allowed", "publish with POST /queues/NAME", inv_id);
      res.headers.emplace_back("Allow", "POST");
      return;
    }
    std::optional<Principal> p = Authenticate(
        req, "", inv_id, res, " (publishing needs a key not limited to some functions)");
    if (!p) {
      return;
    }
    info.tenant = p->tenant;
    if (!WithinKeyRate(*p, inv_id, res)) {
      return;
    }
    if (o.queue == nullptr || queue.empty() || queue.starts_with("_")) {
      res = MakeErrorResponse(o.queue == nullptr ? 503 : 400,
                              o.queue == nullptr ? "async_unavailable" : "invalid_queue",
                              o.queue == nullptr ? "this faasd runs without a queue"
                                                 : "queue names must not be empty or start with _",
                              inv_id);
      return;
    }
    store::QueueHeaders headers;
    headers.emplace_back("tenant", p->tenant);
    if (const std::string* ct = req.Header("content-type")) {
      headers.emplace_back("content-type", *ct);
    }
    Result<int64_t> id = o.queue->Publish(queue, req.body, headers);
    if (!id.ok()) {
      bool bad = id.status().code() == StatusCode::kInvalidArgument;
      res = MakeErrorResponse(bad ? 400 : 503, bad ? "invalid_queue" : "async_unavailable",
                              id.status().message(), inv_id, bad ? 0 : 1);
      return;
    }
    res.status = 202;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = "{\"queue\":\"" + JsonEscape(queue) + "\",\"message_id\":\"" + std::to_string(*id) +
               "\"}\n";
  }

  // GET /invocations/{id}: the caller needs a key of the tenant that queued it (unless the
  // function is public); anyone else gets the same 404 as for an unknown id.
  void GetInvocation(std::string_view id, HttpRequest& req, HttpResponse& res,
                     const std::string& inv_id, RequestInfo& info) {
    Result<store::AsyncRecord> rec =
        o.queue == nullptr ? Result<store::AsyncRecord>(NotFoundError("")) : o.queue->GetAsync(id);
    auto not_found = [&] {
      res = MakeErrorResponse(
          404, "invocation_not_found",
          "no async invocation \"" + std::string(id) + "\" (results are kept for a limited time)",
          inv_id);
    };
    if (!rec.ok()) {
      not_found();
      return;
    }
    info.function = rec->function;
    std::shared_ptr<const scheduler::FunctionSpec> spec = o.scheduler->Current(rec->function);
    if (!rec->tenant.empty() || spec == nullptr || !spec->config.is_public) {
      std::optional<Principal> p = Authenticate(req, rec->function, inv_id, res);
      if (!p) {
        return;
      }
      info.tenant = p->tenant;
      if (p->tenant != rec->tenant) {
        not_found();
        return;
      }
    }
    res.status = 200;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = AsyncJson(*rec);
  }
};

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->o = std::move(options);
  impl_->self = this;
  impl_->callback_policy = AddressPolicy(impl_->o.callback_allow);
  SetKeys(nullptr);
  if (impl_->o.metrics != nullptr) {
    impl_->o.metrics->SetHttpSource([impl = impl_.get()] { return impl->Gauges(); });
  }
}

Gateway::~Gateway() {
  if (impl_->o.metrics != nullptr) {
    impl_->o.metrics->SetHttpSource({});
  }
}

void Gateway::SetServerRejections(std::function<HttpServer::Rejections()> source) {
  std::lock_guard lock(impl_->rejections_mu);
  impl_->server_rejections = std::move(source);
}

void Gateway::Handle(HttpRequest& req, HttpResponse& res) {
  Clock::time_point t0 = Clock::now();
  impl_->in_flight.fetch_add(1, std::memory_order_relaxed);
  std::string inv_id = NewInvocationId();
  RequestInfo info;
  std::string_view path = req.path;
  std::string method = req.method;  // the handlers may move the request's strings
  if (path.starts_with(kFunctionPrefix) || path.starts_with(kAsyncPrefix)) {
    bool async = path.starts_with(kAsyncPrefix);
    std::string name;
    std::string rest;
    SplitNameAndRest(path.substr(async ? kAsyncPrefix.size() : kFunctionPrefix.size()), &name,
                     &rest);
    if (!name.empty()) {
      info.route = async ? "/async-function/{name}" : "/function/{name}";
      if (async) {
        impl_->InvokeAsync(name, std::move(rest), req, res, inv_id, info);
      } else {
        impl_->Invoke(name, std::move(rest), req, res, inv_id, info, {});
      }
    }
  }
  if (info.route == "other") {
    if (path.starts_with(kQueuesPrefix)) {
      info.route = "/queues/{name}";
      impl_->PublishToQueue(path.substr(kQueuesPrefix.size()), req, res, inv_id, info);
    } else if (path.starts_with(kInvocationsPrefix) && req.method == "GET") {
      info.route = "/invocations/{id}";
      impl_->GetInvocation(path.substr(kInvocationsPrefix.size()), req, res, inv_id, info);
    } else if (path == "/metrics" && impl_->o.metrics != nullptr) {
      info.route = "/metrics";
      res.status = 200;
      res.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      res.body = impl_->o.metrics->Render();
    } else if (path == "/healthz" || path == "/readyz") {
      Health(path, ready_.load(), inv_id, info, res);
    } else {
      std::shared_ptr<const Router> routes;  // keeps m->route alive
      std::optional<RouteMatch> m = MatchRoute(req, &routes);
      if (m) {
        info.route = m->route->path;
        impl_->Invoke(m->function, std::move(m->path), req, res, inv_id, info,
                      std::move(m->params));
      } else {
        impl_->NoRoute(req, inv_id, res);
      }
    }
  }
  impl_->Finalize(method, req.remote_addr, res, inv_id, info, t0);
}

std::optional<RouteMatch> Gateway::MatchRoute(const HttpRequest& req,
                                              std::shared_ptr<const Router>* routes) const {
  *routes = routes_.load();
  if (*routes == nullptr) {
    return std::nullopt;
  }
  const std::string* host = req.Header("host");
  return (*routes)->Match(req.method, host == nullptr ? std::string_view() : *host, req.path);
}

void Gateway::HandleAsync(HttpRequest& req, Responder responder) {
  // Only invocations are served on the loop; other routes read or write storage.
  std::string_view path = req.path;
  std::string name;
  std::string rest;
  std::vector<std::pair<std::string, std::string>> params;
  std::string route;
  if (path.starts_with(kFunctionPrefix)) {
    SplitNameAndRest(path.substr(kFunctionPrefix.size()), &name, &rest);
    if (!name.empty()) {
      route = "/function/{name}";
    }
  } else if (!path.starts_with(kAsyncPrefix) && !path.starts_with(kQueuesPrefix) &&
             !path.starts_with(kInvocationsPrefix) && path != "/metrics" && path != "/healthz" &&
             path != "/readyz") {
    std::shared_ptr<const Router> routes;  // keeps m->route alive
    if (std::optional<RouteMatch> m = MatchRoute(req, &routes)) {
      route = m->route->path;
      name = m->function;
      rest = std::move(m->path);
      params = std::move(m->params);
    }
  }
  const bool storage = path.starts_with(kAsyncPrefix) || path.starts_with(kQueuesPrefix) ||
                       path.starts_with(kInvocationsPrefix) || path == "/metrics";
  if (route.empty() && !storage) {
    // Health checks and unknown routes: answered here, on the loop (no storage involved).
    const Clock::time_point t0 = Clock::now();
    impl_->in_flight.fetch_add(1, std::memory_order_relaxed);
    const std::string inv_id = NewInvocationId();
    RequestInfo info;
    HttpResponse res;
    if (path == "/healthz" || path == "/readyz") {
      Health(path, ready_.load(), inv_id, info, res);
    } else {
      impl_->NoRoute(req, inv_id, res);
    }
    impl_->Finalize(req.method, req.remote_addr, res, inv_id, info, t0);
    responder.Send(std::move(res));
    return;
  }
  if (route.empty()) {
    auto box = std::make_shared<HttpRequest>(std::move(req));
    if (!impl_->blocking.Run([this, box, responder] {
          HttpResponse res;
          Handle(*box, res);
          responder.Send(std::move(res));
        })) {
      responder.Send(MakeErrorResponse(503, "no_capacity", "cannot start a thread for the request",
                                       NewInvocationId(), 1));
    }
    return;
  }
  struct Call {
    Clock::time_point t0 = Clock::now();
    std::string inv_id = NewInvocationId();
    RequestInfo info;
    std::string method;
    std::string remote;
    HttpResponse res;
  };
  auto call = std::make_shared<Call>();
  impl_->in_flight.fetch_add(1, std::memory_order_relaxed);
  call->info.route = std::move(route);
  call->method = req.method;
  call->remote = req.remote_addr;
  scheduler::InvokeRequest ir;
  if (!impl_->PrepareInvoke(name, std::move(rest), req, call->res, call->inv_id, call->info,
                            std::move(params), &ir)) {
    impl_->Finalize(call->method, call->remote, call->res, call->inv_id, call->info, call->t0);
    responder.Send(std::move(call->res));
    return;
  }
  Impl* impl = impl_.get();
  impl_->o.scheduler->InvokeAsync(
      name, std::move(ir), responder.Loop(),
      [impl, call, name, responder](scheduler::InvokeResult r) {
        impl->FinishInvoke(name, r, call->res, call->inv_id, call->info);
        impl->Finalize(call->method, call->remote, call->res, call->inv_id, call->info, call->t0);
        responder.Send(std::move(call->res));
      });
}

Result<std::string> Gateway::EnqueueAsync(const std::string& name, std::string path,
                                          std::string query, std::string body,
                                          const std::string& callback_url) {
  if (impl_->o.queue == nullptr) {
    return UnavailableError("this faasd runs without a queue, so it takes no async invocations");
  }
  std::shared_ptr<const scheduler::FunctionSpec> spec = impl_->o.scheduler->Current(name);
  if (spec == nullptr) {
    return NotFoundError("function \"" + name + "\" does not exist");
  }
  HttpRequest req;
  req.method = "POST";
  req.path = std::string(kAsyncPrefix) + name + path;
  req.query = std::move(query);
  req.body = std::move(body);
  if (!callback_url.empty()) {
    req.headers.emplace_back("x-callback-url", callback_url);
  }
  RequestInfo info;
  std::string inv_id = NewInvocationId();
  Status queued = impl_->Enqueue(name, std::move(path), req, inv_id, info, *spec);
  if (queued.ok()) {
    return inv_id;
  }
  // The control API reports a body over the limit like a bad callback URL: invalid_argument.
  return Status(queued.code() == StatusCode::kUnavailable ? StatusCode::kUnavailable
                                                          : StatusCode::kInvalidArgument,
                queued.message());
}

Result<std::string> Gateway::AsyncStatusJson(std::string_view invocation_id) const {
  if (impl_->o.queue == nullptr) {
    return NotFoundError("this faasd runs without a queue");
  }
  FAAS_ASSIGN_OR_RETURN(store::AsyncRecord rec, impl_->o.queue->GetAsync(invocation_id));
  return AsyncJson(rec);
}

bool Gateway::RunAsync(std::string_view body, const store::QueueHeaders& headers, uint32_t attempt,
                       bool final_attempt, std::string* error) {
  Impl& im = *impl_;
  std::string id = HeaderValue(headers, "id");
  std::string fn = HeaderValue(headers, "fn");
  Result<store::AsyncRecord> got = im.o.queue->GetAsync(id);
  if (!got.ok()) {
    *error = "no async record for \"" + id + "\": " + got.status().ToString();
    return true;  // expired or never recorded: nothing to run it for
  }
  store::AsyncRecord rec = std::move(*got);
  rec.status = "running";
  rec.attempts = attempt;
  rec.updated_unix_ms = UnixMillisNow();
  if (Status s = im.o.queue->PutAsync(rec); !s.ok()) {
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
  scheduler::InvokeResult r = im.o.scheduler->Invoke(fn, std::move(ir));
  im.TenantInvocation(rec.tenant, fn);
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
    rec.body_truncated = r.body.size() > im.o.async_result_bytes;
    if (rec.body_truncated) {
      r.body.resize(im.o.async_result_bytes);
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
    // A function that no longer exists or a body over its limit will not get better.
    bool permanent = r.outcome == Outcome::kNotFound || r.outcome == Outcome::kPayloadTooLarge;
    done = final_attempt || permanent;
    rec.status = done ? "failed" : "queued";
  }
  if (done && !rec.callback_url.empty()) {
    // Queued before this message is acknowledged: a crash in between sends the callback twice
    // (at least once), never zero times.
    if (Result<int64_t> cb = im.o.queue->Publish(kCallbackQueue, "", {{"id", id}}); !cb.ok()) {
      *error = "could not queue the callback: " + cb.status().ToString();
      return false;
    }
  }
  if (Status s = im.o.queue->PutAsync(rec); !s.ok()) {
    *error = s.ToString();
    return false;
  }
  FAAS_LOG(im.log, debug, "async.done", {"inv", id}, {"fn", fn}, {"attempt", attempt},
           {"status", rec.status});
  return done;
}

bool Gateway::DeliverCallback(const store::QueueHeaders& headers, bool final_attempt,
                              std::string* error) {
  Impl& im = *impl_;
  std::string invocation_id = HeaderValue(headers, "id");
  Result<store::AsyncRecord> rec = im.o.queue->GetAsync(invocation_id);
  if (!rec.ok() || rec->callback_url.empty()) {
    return true;  // expired or no callback: nothing to deliver
  }
  Result<int> status =
      PostJson(rec->callback_url, AsyncJson(*rec), std::chrono::seconds(5), im.callback_policy);
  bool delivered = status.ok() && *status >= 200 && *status < 300;
  if (!delivered) {
    *error = status.ok() ? "callback answered HTTP " + std::to_string(*status)
                         : status.status().message();
  }
  if (delivered || final_attempt) {
    rec->callback_status = delivered ? "delivered" : "failed";
    rec->updated_unix_ms = UnixMillisNow();
    if (Status s = im.o.queue->PutAsync(*rec); !s.ok()) {
      FAAS_LOG(im.log, warn, "async.callback_state_lost", {"inv", invocation_id},
               {"error", s.ToString()});
    }
  }
  if (delivered) {
    FAAS_LOG(im.log, debug, "async.callback", {"inv", invocation_id}, {"url", rec->callback_url},
             {"delivered", true});
  } else {
    FAAS_LOG(im.log, warn, "async.callback", {"inv", invocation_id}, {"url", rec->callback_url},
             {"delivered", false}, {"final", final_attempt}, {"error", *error});
  }
  return delivered;
}

}  // namespace faas::gateway
