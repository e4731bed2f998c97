#include "faas/gateway/gateway.h"

#include <cstdio>
#include <optional>
#include <string_view>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/gateway/errors.h"

namespace faas::gateway {
namespace {

using scheduler::Outcome;

constexpr std::string_view kFunctionPrefix = "/function/";
constexpr std::string_view kParamHeaderPrefix = "x-faas-param-";

// Headers a function may not set: framing is ours, and platform headers are never spoofed.
bool IsReservedResponseHeader(std::string_view name) {
  return name == "content-length" || name == "transfer-encoding" || name == "connection" ||
         name == "keep-alive" || name == "upgrade" || name == "server-timing" ||
         name == "x-invocation-id" || name.starts_with("x-faas-");
}

void AddPlatformHeaders(HttpResponse& res, const std::string& inv_id,
                        const scheduler::InvokeResult* r) {
  bool has_id = false;
  for (const auto& [k, v] : res.headers) {
    has_id = has_id || k == "X-Invocation-Id";
  }
  if (!has_id) {
    res.headers.emplace_back("X-Invocation-Id", inv_id);
  }
  res.headers.emplace_back("X-Faas-Cold-Start", r != nullptr && r->cold_start ? "true" : "false");
  res.headers.emplace_back("Server-Timing",
                           r != nullptr ? ServerTiming(*r) : std::string("queue;dur=0"));
}

}  // namespace

HttpError ToHttpError(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return {200, "ok"};
    case Outcome::kFunctionError: return {500, "function_error"};
    case Outcome::kCrashed: return {502, "function_crashed"};
    case Outcome::kTimeout: return {504, "function_timeout"};
    case Outcome::kInitFailed: return {502, "init_failed"};
    case Outcome::kResponseTooLarge: return {502, "response_too_large"};
    case Outcome::kSandboxViolation: return {502, "sandbox_violation"};
    case Outcome::kNoCapacity: return {503, "no_capacity"};
    case Outcome::kNotFound: return {404, "function_not_found"};
    case Outcome::kPayloadTooLarge: return {413, "payload_too_large"};
    case Outcome::kShuttingDown: return {503, "shutting_down"};
    case Outcome::kInternal: return {500, "internal"};
  }
  return {500, "internal"};
}

std::string ServerTiming(const scheduler::InvokeResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "queue;dur=%.3f, cold;dur=%.3f, exec;dur=%.3f, cpu;dur=%.3f",
                ToMillis(r.timings.queue), ToMillis(r.timings.cold), ToMillis(r.timings.exec),
                ToMillis(r.cpu));
  return buf;
}

void Gateway::Handle(HttpRequest& req, HttpResponse& res) {
  std::string_view path = req.path;
  if (path.starts_with(kFunctionPrefix)) {
    std::string_view tail = path.substr(kFunctionPrefix.size());
    std::size_t slash = tail.find('/');
    std::string name(tail.substr(0, slash));
    std::string rest(slash == std::string_view::npos ? "/" : tail.substr(slash));
    if (!name.empty()) {
      Invoke(name, std::move(rest), req, res);
      return;
    }
  }
  std::string inv_id = NewInvocationId();
  if (path == "/metrics" && metrics_ != nullptr) {
    res.status = 200;
    res.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    res.body = metrics_->Render();
    AddPlatformHeaders(res, inv_id, nullptr);
    return;
  }
  if (path == "/healthz" || path == "/readyz") {
    bool ok = path == "/healthz" || ready_.load();
    if (ok) {
      res.status = 200;
      res.headers.emplace_back("Content-Type", "application/json");
      res.body = "{\"status\":\"ok\"}\n";
    } else {
      res = MakeErrorResponse(503, "not_ready", "faasd is starting or draining", inv_id);
    }
    AddPlatformHeaders(res, inv_id, nullptr);
    return;
  }
  if (std::shared_ptr<const Router> routes = routes_.load()) {
    const std::string* host = req.Header("host");
    std::optional<RouteMatch> m =
        routes->Match(req.method, host == nullptr ? std::string_view() : *host, path);
    if (m) {
      Invoke(m->function, std::move(m->path), req, res, std::move(m->params));
      return;
    }
  }
  res = MakeErrorResponse(404, "route_not_found",
                          "no route for " + req.method + " " + req.path +
                              " (functions are served at /function/NAME)",
                          inv_id);
  AddPlatformHeaders(res, inv_id, nullptr);
}

void Gateway::Invoke(const std::string& name, std::string path, HttpRequest& req, HttpResponse& res,
                     Params&& params) {
  scheduler::InvokeRequest ir;
  ir.invocation_id = NewInvocationId();
  ir.method = req.method;
  ir.path = std::move(path);
  ir.query = std::move(req.query);
  ir.body = std::move(req.body);
  ir.headers.reserve(req.headers.size() + params.size());
  for (auto& [k, v] : req.headers) {
    if (!k.starts_with("x-faas-")) {  // platform headers are set by the platform only
      ir.headers.emplace_back(std::move(k), std::move(v));
    }
  }
  for (auto& [k, v] : params) {  // after the stripping above: clients cannot spoof these
    ir.headers.emplace_back(std::string(kParamHeaderPrefix) + k, std::move(v));
  }
  std::string inv_id = ir.invocation_id;
  scheduler::InvokeResult r = scheduler_->Invoke(name, std::move(ir));
  if (r.outcome == Outcome::kOk) {
    res.status = r.status;
    res.headers.reserve(r.headers.size() + 3);
    for (auto& [k, v] : r.headers) {
      if (!IsReservedResponseHeader(k)) {
        res.headers.emplace_back(std::move(k), std::move(v));
      }
    }
    res.body = std::move(r.body);
  } else {
    HttpError e = ToHttpError(r.outcome);
    std::string message = r.outcome == Outcome::kFunctionError
                              ? "the function \"" + name + "\" failed: " + r.error_message
                              : r.error_message;
    res = MakeErrorResponse(e.status, e.code, message, inv_id,
                            r.outcome == Outcome::kNoCapacity ? 1 : 0);
  }
  AddPlatformHeaders(res, inv_id, &r);
  static auto log = log::Get("gateway");
  FAAS_LOG(log, debug, "invocation", {"inv", inv_id}, {"fn", name}, {"status", res.status},
           {"cold", r.cold_start}, {"outcome", scheduler::OutcomeName(r.outcome)},
           {"exec_ms", ToMillis(r.timings.exec)});
  if (!r.logs.empty()) {
    static auto fnlog = log::Get("function");
    FAAS_LOG(fnlog, debug, "function.output", {"inv", inv_id}, {"fn", name}, {"output", r.logs});
  }
}

}  // namespace faas::gateway
