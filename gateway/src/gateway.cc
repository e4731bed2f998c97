#include "faas/gateway/gateway.h"

#include <charconv>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "faas/base/event_loop.h"
#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/base/text.h"

#include "edge_checks.h"
#include "header_policy.h"
#include "route_kind.h"

namespace faas::gateway {

namespace {

// `d` in milliseconds with three decimals ("0.012"), rounded to the nearest microsecond. Integer
// formatting: "%.3f" of a double was 2 % of faasd's CPU on the warm path (perf, issue #14).
void AppendMillis(std::string& out, std::chrono::nanoseconds d) {
  int64_t us = (d.count() + (d.count() < 0 ? -500 : 500)) / 1000;
  if (us < 0) {
    out += '-';
    us = -us;
  }
  char digits[24];
  const std::to_chars_result whole = std::to_chars(digits, digits + sizeof digits, us / 1000);
  out.append(digits, whole.ptr);
  const auto frac = static_cast<int>(us % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
}

}  // namespace

std::string ServerTiming(const scheduler::InvokeResult& r) {
  std::string out;
  out.reserve(96);
  out += "queue;dur=";
  AppendMillis(out, r.timings.queue);
  out += ", cold;dur=";
  AppendMillis(out, r.timings.cold);
  out += ", exec;dur=";
  AppendMillis(out, r.timings.exec);
  out += ", cpu;dur=";
  AppendMillis(out, r.cpu);
  return out;
}

namespace {

using scheduler::Outcome;

// One request, from its arrival to its response: what the platform headers, the access log and
// the request metrics say about it.
struct Call {
  Clock::time_point t0 = Clock::now();
  std::string inv_id = NewInvocationId();
  std::string method;
  std::string remote;
  std::string route = "other";  // a template, never the raw path (bounded cardinality)
  std::string function;
  std::string tenant;
  std::string trace_id;
  bool cold = false;
  std::string server_timing = "queue;dur=0";  // ServerTiming of the invocation, if one ran
  HttpResponse res;
};

// X-Invocation-Id (unless the response has it), X-Faas-Cold-Start and Server-Timing: once per
// response, whichever route answered.
void AddPlatformHeaders(Call& c) {
  bool has_id = false;
  for (const auto& [k, v] : c.res.headers) {
    has_id = has_id || k == "X-Invocation-Id";
  }
  if (!has_id) {
    c.res.headers.emplace_back("X-Invocation-Id", c.inv_id);
  }
  c.res.headers.emplace_back("X-Faas-Cold-Start", c.cold ? "true" : "false");
  c.res.headers.emplace_back("Server-Timing", c.server_timing);
}

}  // namespace

struct Gateway::Impl {
  explicit Impl(GatewayOptions options) : o(std::move(options)), edge(o.metrics, o.limiter) {}

  GatewayOptions o;
  EdgeChecks edge;
  std::atomic<int64_t> in_flight{0};
  std::mutex rejections_mu;
  std::function<HttpServer::Rejections()> server_rejections;  // guarded by rejections_mu
  std::shared_ptr<spdlog::logger> access = log::Get("access");
  // Routes that may block (storage, metrics rendering) run here.
  BlockingPool blocking;

  std::shared_ptr<Call> Begin(const HttpRequest& req, std::string route) {
    in_flight.fetch_add(1, std::memory_order_relaxed);
    auto c = std::make_shared<Call>();
    c->method = req.method;  // the handlers may move the request's strings
    c->remote = req.remote_addr;
    c->route = std::move(route);
    return c;
  }

  // Every response, whichever route answered: platform headers, metrics, the access log line.
  void Finish(Call& c) {
    AddPlatformHeaders(c);
    std::chrono::nanoseconds took = Clock::now() - c.t0;
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (o.metrics != nullptr) {
      o.metrics->RecordHttpRequest(c.route, c.function, c.res.status, took);
    }
    if (o.access_log) {
      FAAS_LOG(access, info, "request", {"method", c.method}, {"route", c.route},
               {"fn", c.function}, {"status", c.res.status}, {"ms", ToMillis(took)},
               {"cold", c.cold}, {"tenant", c.tenant}, {"inv", c.inv_id}, {"trace", c.trace_id},
               {"remote", c.remote});
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

  // The edge checks, then the scheduler's request; false with the refusal in c.res.
  bool PrepareInvoke(Call& c, ClassifiedRoute& route, HttpRequest& req,
                     scheduler::InvokeRequest* ir) {
    c.function = route.name;
    std::shared_ptr<const scheduler::FunctionSpec> spec = o.invoker->Current(route.name);
    if (!edge.Admit(route.name, spec.get(), req, c.inv_id, &c.tenant, c.res)) {
      return false;
    }
    std::string traceparent = ContinueTrace(req.Header("traceparent"), &c.trace_id);
    ir->invocation_id = c.inv_id;
    ir->method = req.method;
    ir->path = std::move(route.rest);
    ir->query = std::move(req.query);
    ir->body = std::move(req.body);
    ir->tenant = c.tenant;
    ir->headers = FunctionHeaders(req, std::move(route.params), !spec->config.is_public,
                                  std::move(traceparent));
    return true;
  }

  // The invocation's answer as the client's response.
  void FinishInvoke(Call& c, scheduler::InvokeResult& r) {
    c.cold = r.cold_start;
    c.server_timing = ServerTiming(r);
    if (o.metrics != nullptr && !c.tenant.empty()) {
      o.metrics->RecordTenantInvocation(c.tenant, c.function);
      o.metrics->RecordTenantCpu(c.tenant, r.cpu);
    }
    if (r.outcome == Outcome::kOk) {
      c.res.status = r.status;
      c.res.headers.reserve(r.headers.size() + 4);
      for (auto& [k, v] : r.headers) {
        if (!IsReservedResponseHeader(k)) {
          c.res.headers.emplace_back(std::move(k), std::move(v));
        }
      }
      c.res.body = std::move(r.body);
    } else {
      HttpError e = ToHttpError(r.outcome);
      if (r.outcome == Outcome::kNoCapacity || r.outcome == Outcome::kPayloadTooLarge) {
        edge.Reject(e.code);
      }
      std::string message = r.outcome == Outcome::kFunctionError
                                ? "the function \"" + c.function + "\" failed: " + r.error_message
                                : r.error_message;
      c.res = MakeErrorResponse(e.status, e.code, message, c.inv_id,
                                r.outcome == Outcome::kNoCapacity ? 1 : 0);
      if (r.outcome == Outcome::kNodeLost && c.res.body.ends_with("}}")) {
        // ../shared/CLUSTER.md §5: the client learns which node died with its call.
        c.res.body.resize(c.res.body.size() - 2);
        c.res.body += ",\"node\":\"" + JsonEscape(r.node) + "\"}}";
      }
    }
    const std::string& node = r.node.empty() ? o.node_id : r.node;
    if (!node.empty()) {
      c.res.headers.emplace_back("X-Faas-Node", node);
    }
    c.res.headers.emplace_back("X-Faas-Trace-Id", c.trace_id);
    if (!r.logs.empty()) {
      static auto fnlog = log::Get("function");
      FAAS_LOG(fnlog, debug, "function.output", {"inv", c.inv_id}, {"fn", c.function},
               {"output", r.logs});
    }
  }

  // GET /healthz (always 200 while serving) and /readyz (503 while starting or draining).
  static void Health(Call& c, bool ready) {
    if (c.route == "/healthz" || ready) {
      c.res.status = 200;
      c.res.headers.emplace_back("Content-Type", "application/json");
      c.res.body = "{\"status\":\"ok\"}\n";
    } else {
      c.res = MakeErrorResponse(503, "not_ready", "faasd is starting or draining", c.inv_id);
    }
  }

  void NoRoute(Call& c, const HttpRequest& req) {
    edge.Reject("route_not_found");
    c.res = MakeErrorResponse(
        404, "route_not_found",
        "no route for " + req.method + " " + req.path + " (functions are served at /function/NAME)",
        c.inv_id);
  }

  // The routes that may block, on a blocking thread.
  void RunBlocking(Call& c, ClassifiedRoute& route, HttpRequest& req,
                   const ConsoleHandler* console) {
    switch (route.kind) {
      case RouteKind::kConsole:
        if (console != nullptr) {
          (*console)(req, c.inv_id, c.res);
          return;
        }
        break;
      case RouteKind::kAsync:
        AcceptAsync(c, route, req);
        return;
      case RouteKind::kQueue:
        PublishToQueue(c, route.name, req);
        return;
      case RouteKind::kInvocation:
        GetInvocation(c, route.name, req);
        return;
      case RouteKind::kMetrics:
        if (o.metrics != nullptr) {
          c.res.status = 200;
          c.res.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
          c.res.body = o.metrics->Render();
          return;
        }
        break;
      default:
        break;
    }
    NoRoute(c, req);
  }

  // POST /async-function/{name}[/{rest}]: the edge checks, then queued durably; 202.
  void AcceptAsync(Call& c, ClassifiedRoute& route, HttpRequest& req) {
    c.function = route.name;
    if (req.method != "POST") {
      c.res = MakeErrorResponse(405, "method_not_allowed",
                                "async invocations are POST /async-function/NAME", c.inv_id);
      c.res.headers.emplace_back("Allow", "POST");
      return;
    }
    if (o.async == nullptr || !o.async->Enabled()) {
      c.res = MakeErrorResponse(503, "async_unavailable",
                                "this faasd runs without a queue, so it takes no async invocations",
                                c.inv_id);
      return;
    }
    std::shared_ptr<const scheduler::FunctionSpec> spec = o.invoker->Current(route.name);
    if (!edge.Admit(route.name, spec.get(), req, c.inv_id, &c.tenant, c.res)) {
      return;
    }
    AsyncRequest a;
    a.invocation_id = c.inv_id;
    a.function = route.name;
    a.tenant = c.tenant;
    a.method = req.method;
    a.path = std::move(route.rest);
    a.query = std::move(req.query);
    a.body = std::move(req.body);
    if (const std::string* cb = req.Header("x-callback-url")) {
      a.callback_url = *cb;
    }
    if (const std::string* key = req.Header("idempotency-key")) {
      a.idempotency_key = *key;
    }
    a.headers = FunctionHeaders(req, {}, !spec->config.is_public,
                                ContinueTrace(req.Header("traceparent"), &c.trace_id));
    std::string queued_id;
    Status queued = o.async->Accept(std::move(a), spec->config, &queued_id);
    if (queued.ok() && queued_id != c.inv_id) {
      // A repeated Idempotency-Key: the answer names the first invocation, which was queued.
      c.inv_id = queued_id;
    }
    if (queued.ok()) {
      c.res.status = 202;
      c.res.headers.emplace_back("Content-Type", "application/json");
      c.res.headers.emplace_back("Location", "/invocations/" + c.inv_id);
      c.res.headers.emplace_back("X-Faas-Trace-Id", c.trace_id);
      c.res.body = "{\"invocation_id\":\"" + c.inv_id +
                   "\",\"status\":\"queued\",\"status_url\":\"/invocations/" + c.inv_id + "\"}\n";
    } else if (queued.code() == StatusCode::kResourceExhausted) {
      c.res = MakeErrorResponse(413, "payload_too_large", queued.message(), c.inv_id);
    } else if (queued.code() == StatusCode::kInvalidArgument &&
               queued.message().find("Idempotency-Key") != std::string::npos) {
      c.res = MakeErrorResponse(400, "invalid_idempotency_key", queued.message(), c.inv_id);
    } else if (queued.code() == StatusCode::kInvalidArgument) {
      c.res = MakeErrorResponse(400, "invalid_callback_url", queued.message(), c.inv_id);
    } else if (queued.code() == StatusCode::kPermissionDenied) {
      c.res = MakeErrorResponse(400, "invalid_callback", queued.message(), c.inv_id);
    } else if (queued.code() == StatusCode::kUnknown) {
      // No Retry-After: a blind retry under a new id may run the work twice.
      c.res = MakeErrorResponse(
          503, "async_outcome_unknown",
          queued.message() + ". GET /invocations/" + c.inv_id +
              " tells once the queue is back; a retry with the same Idempotency-Key is safe",
          c.inv_id);
    } else {
      c.res = MakeErrorResponse(503, "async_unavailable", queued.message(), c.inv_id, 1);
    }
  }

  // POST /queues/{name}: publishes the body to the embedded queue. Needs a key that is not
  // limited to some functions (a queue feeds whatever its triggers say); the key's rate applies.
  void PublishToQueue(Call& c, std::string_view queue, HttpRequest& req) {
    if (req.method != "POST") {
      c.res =
          MakeErrorResponse(405, "method_not_allowed", "publish with POST /queues/NAME", c.inv_id);
      c.res.headers.emplace_back("Allow", "POST");
      return;
    }
    std::optional<Principal> p = edge.Authenticate(
        req, "", c.inv_id, c.res, " (publishing needs a key not limited to some functions)");
    if (!p) {
      return;
    }
    c.tenant = p->tenant;
    if (!edge.WithinKeyRate(*p, c.inv_id, c.res)) {
      return;
    }
    if (o.queue == nullptr) {
      c.res =
          MakeErrorResponse(503, "async_unavailable", "this faasd runs without a queue", c.inv_id);
      return;
    }
    if (queue.empty() || queue.starts_with("_")) {
      c.res = MakeErrorResponse(400, "invalid_queue",
                                "queue names must not be empty or start with _", c.inv_id);
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
      c.res = MakeErrorResponse(bad ? 400 : 503, bad ? "invalid_queue" : "async_unavailable",
                                id.status().message(), c.inv_id, bad ? 0 : 1);
      return;
    }
    c.res.status = 202;
    c.res.headers.emplace_back("Content-Type", "application/json");
    c.res.body = "{\"queue\":\"" + JsonEscape(queue) + "\",\"message_id\":\"" +
                 std::to_string(*id) + "\"}\n";
  }

  // GET /invocations/{id}: the caller needs a key of the tenant that queued it (unless the
  // function is public); anyone else gets the same 404 as for an unknown id.
  void GetInvocation(Call& c, std::string_view id, HttpRequest& req) {
    Result<store::AsyncRecord> rec =
        o.async == nullptr ? Result<store::AsyncRecord>(NotFoundError("")) : o.async->Get(id);
    auto not_found = [&] {
      c.res = MakeErrorResponse(
          404, "invocation_not_found",
          "no async invocation \"" + std::string(id) + "\" (results are kept for a limited time)",
          c.inv_id);
    };
    if (rec.status().code() == StatusCode::kUnavailable) {
      // The queue's store (Redis in a cluster) is unreachable: the record may well exist.
      c.res = MakeErrorResponse(503, "async_unavailable",
                                "async results cannot be read now: " + rec.status().message(),
                                c.inv_id, 1);
      return;
    }
    if (!rec.ok()) {
      not_found();
      return;
    }
    c.function = rec->function;
    std::shared_ptr<const scheduler::FunctionSpec> spec = o.invoker->Current(rec->function);
    if (!rec->tenant.empty() || spec == nullptr || !spec->config.is_public) {
      std::optional<Principal> p = edge.Authenticate(req, rec->function, c.inv_id, c.res);
      if (!p) {
        return;
      }
      c.tenant = p->tenant;
      if (p->tenant != rec->tenant) {
        not_found();
        return;
      }
    }
    c.res.status = 200;
    c.res.headers.emplace_back("Content-Type", "application/json");
    c.res.body = AsyncInvocations::ToJson(*rec);
  }
};

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (impl_->o.metrics != nullptr) {
    impl_->o.metrics->SetHttpSource([impl = impl_.get()] { return impl->Gauges(); });
  }
}

Gateway::~Gateway() {
  if (impl_->o.metrics != nullptr) {
    impl_->o.metrics->SetHttpSource({});
  }
}

void Gateway::SetKeys(std::shared_ptr<const KeyTable> keys) {
  impl_->edge.SetKeys(std::move(keys));
}

void Gateway::SetServerRejections(std::function<HttpServer::Rejections()> source) {
  std::lock_guard lock(impl_->rejections_mu);
  impl_->server_rejections = std::move(source);
}

void Gateway::HandleAsync(HttpRequest& req, const Responder& responder) {
  std::shared_ptr<const Router> routes = routes_.load();
  ClassifiedRoute route = ClassifyRoute(req, routes.get());
  std::shared_ptr<Call> call = impl_->Begin(req, route.route);
  Impl* impl = impl_.get();

  if (MayBlock(route.kind)) {
    auto box =
        std::make_shared<std::pair<HttpRequest, ClassifiedRoute>>(std::move(req), std::move(route));
    std::shared_ptr<const ConsoleHandler> console =
        box->second.kind == RouteKind::kConsole ? console_.load() : nullptr;
    if (!impl->blocking.Run([impl, call, box, responder, console] {
          impl->RunBlocking(*call, box->second, box->first, console.get());
          impl->Finish(*call);
          responder.Send(std::move(call->res));
        })) {
      call->res = MakeErrorResponse(503, "no_capacity", "cannot start a thread for the request",
                                    call->inv_id, 1);
      impl->Finish(*call);
      responder.Send(std::move(call->res));
    }
    return;
  }
  if (route.kind == RouteKind::kInvoke || route.kind == RouteKind::kCustom) {
    scheduler::InvokeRequest ir;
    if (impl->PrepareInvoke(*call, route, req, &ir)) {
      impl->o.invoker->InvokeAsync(route.name, std::move(ir), responder.Loop(),
                                   [impl, call, responder](scheduler::InvokeResult r) {
                                     impl->FinishInvoke(*call, r);
                                     impl->Finish(*call);
                                     responder.Send(std::move(call->res));
                                   });
      return;
    }
  } else if (route.kind == RouteKind::kHealth) {
    Impl::Health(*call, ready_.load());
  } else {
    impl->NoRoute(*call, req);
  }
  // Answered here, on the loop: refusals, health checks and unknown routes.
  impl->Finish(*call);
  responder.Send(std::move(call->res));
}

}  // namespace faas::gateway
