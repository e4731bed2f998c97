#include "console.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/console/assets.h"
#include "faas/gateway/errors.h"
#include "faas/v1/control.grpc.pb.h"

namespace faas::daemon {
namespace {

using gateway::HttpRequest;
using gateway::HttpResponse;
using gateway::MakeErrorResponse;

constexpr std::string_view kCookie = "faas_console";
constexpr std::string_view kCsrfHeader = "x-faas-csrf";
// No inline script or style, nothing from another origin, no framing, forms post only here.
constexpr std::string_view kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
// A library upload is sent to the control API in chunks of this size (its limit is 8 MiB).
constexpr std::size_t kDeployChunkBytes = 1u << 20;

// The pages behind sign-in: the path under /console/ and the embedded file.
constexpr std::pair<std::string_view, std::string_view> kPages[] = {
    {"", "functions.html"},      {"functions", "functions.html"}, {"function", "function.html"},
    {"billing", "billing.html"}, {"queues", "queues.html"},       {"cluster", "cluster.html"},
};

// The deploy form's settings (query parameters of POST /console/api/functions/NAME/versions),
// named as in FunctionConfig. Whole numbers here; bounds are the control API's (ValidateConfig).
constexpr std::string_view kDeployNumbers[] = {"memory_mb", "timeout_ms", "max_instances",
                                               "min_warm", "idle_ttl_ms"};

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// application/x-www-form-urlencoded decoding ('+' is a space); a bad escape is kept as is.
std::string FormDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "a=1&b=two" (a query or a form body); the first value of a repeated name wins.
std::map<std::string, std::string> ParseForm(std::string_view s) {
  std::map<std::string, std::string> out;
  while (!s.empty()) {
    const std::size_t amp = s.find('&');
    std::string_view pair = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view() : s.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    std::string name = FormDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : FormDecode(pair.substr(eq + 1));
    out.emplace(std::move(name), std::move(value));
  }
  return out;
}

// The value of cookie `name` in the request's Cookie headers, or "".
std::string CookieValue(const HttpRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k != "cookie") {
      continue;
    }
    std::string_view rest = v;
    while (!rest.empty()) {
      const std::size_t semi = rest.find(';');
      std::string_view item = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!item.empty() && item.front() == ' ') {
        item.remove_prefix(1);
      }
      if (item.size() > name.size() && item.starts_with(name) && item[name.size()] == '=') {
        return std::string(item.substr(name.size() + 1));
      }
    }
  }
  return "";
}

// A non-negative integer, or `fallback` when absent or malformed.
int64_t ToInt(const std::map<std::string, std::string>& form, const std::string& name,
              int64_t fallback = 0) {
  auto it = form.find(name);
  if (it == form.end()) {
    return fallback;
  }
  int64_t v = 0;
  const char* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, v);
  return ec == std::errc() && ptr == end && v >= 0 ? v : fallback;
}

std::string Get(const std::map<std::string, std::string>& form, const std::string& name) {
  auto it = form.find(name);
  return it == form.end() ? "" : it->second;
}

// Headers every console answer carries. API answers and pages are never cached: they hold data
// that only a signed-in admin may see.
void AddSecurityHeaders(HttpResponse& res, bool cache_static) {
  res.headers.emplace_back("Content-Security-Policy", std::string(kCsp));
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  res.headers.emplace_back("Cache-Control", cache_static ? "no-cache" : "no-store");
}

void Redirect(HttpResponse& res, std::string location) {
  res.status = 303;
  res.headers.emplace_back("Location", std::move(location));
}

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 413;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

// A CSV field: quoted when it holds a separator or quote, or could start a spreadsheet formula.
std::string CsvField(std::string_view s) {
  const bool quote =
      s.find_first_of(",\"\r\n") != std::string_view::npos ||
      (!s.empty() && std::string_view("=+-@").find(s.front()) != std::string_view::npos);
  if (!quote) {
    return std::string(s);
  }
  std::string out = "\"";
  if (!s.empty() && std::string_view("=+-@").find(s.front()) != std::string_view::npos) {
    out += '\'';
  }
  for (char c : s) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

}  // namespace

struct Console::Impl {
  explicit Impl(ConsoleOptions o)
      : options(std::move(o)),
        sessions(MakeSessions(options)),
        stub(v1::Control::NewStub(options.control)) {
    for (const auto& [page, file] : kPages) {
      if (!pages.contains(std::string(file))) {
        pages.emplace(file, ComposePage(file));
      }
    }
  }

  // The file `path` as it is embedded at build time (console/CMakeLists.txt).
  static std::string AssetBody(std::string_view path) {
    const console::Asset* a = console::FindAsset(path);
    FAAS_CHECK(a != nullptr);
    return std::string(a->body);
  }

  // Puts the function settings (console/web/_settings.html: the fields of the "new function"
  // form and of the deploy form) in the page's `<!--faas:settings PREFIX[ defaults]-->` line:
  // every {id} in the fragment becomes PREFIX, and its <!--d-->hints<!--/d--> on the defaults are
  // kept (without the markers) only where the slot says "defaults". No slot, no change.
  static void PutSettings(std::string& html) {
    constexpr std::string_view kSlot = "<!--faas:settings ";
    const std::size_t at = html.find(kSlot);
    if (at == std::string::npos) {
      return;
    }
    const std::size_t args_at = at + kSlot.size();
    const std::size_t close = html.find("-->\n", args_at);
    FAAS_CHECK(close != std::string::npos);
    const std::string_view args = std::string_view(html).substr(args_at, close - args_at);
    const std::string_view prefix = args.substr(0, args.find(' '));
    const bool defaults = args.ends_with(" defaults");
    std::string fragment = AssetBody("_settings.html");
    for (std::size_t i = fragment.find("{id}"); i != std::string::npos;
         i = fragment.find("{id}", i)) {
      fragment.replace(i, 4, prefix);
      i += prefix.size();
    }
    constexpr std::string_view kOpen = "<!--d-->";
    constexpr std::string_view kClose = "<!--/d-->";
    for (std::size_t i = fragment.find(kOpen); i != std::string::npos;
         i = fragment.find(kOpen, i)) {
      const std::size_t end = fragment.find(kClose, i);
      FAAS_CHECK(end != std::string::npos);
      if (defaults) {
        fragment.erase(end, kClose.size());
        fragment.erase(i, kOpen.size());
      } else {
        fragment.erase(i, end + kClose.size() - i);
      }
    }
    // The whole slot line, its indentation too: the fragment's lines carry their own.
    const std::size_t line = html.rfind('\n', at) + 1;
    html.replace(line, close + 4 - line, fragment);
  }

  // The page `file` with the shared head and navigation put in its <!--faas:head--> and
  // <!--faas:nav--> slots (console/web/_head.html, _nav.html: one copy of each for every page),
  // its own link marked aria-current, and the function settings in their slot (PutSettings).
  // Done once, at start: the files are compiled in.
  static std::string ComposePage(std::string_view file) {
    std::string html = AssetBody(file);
    PutSettings(html);
    std::string nav = AssetBody("_nav.html");
    std::string_view stem = file.substr(0, file.rfind('.'));
    const std::string link = "href=\"/console/" + std::string(stem) + "\"";
    if (std::size_t at = nav.find(link); at != std::string::npos) {
      nav.insert(at + link.size(), " aria-current=\"page\"");
    }
    for (const auto& [slot, fragment] :
         {std::pair<std::string_view, std::string>{"<!--faas:head-->\n", AssetBody("_head.html")},
          std::pair<std::string_view, std::string>{"<!--faas:nav-->\n", nav}}) {
      const std::size_t at = html.find(slot);
      FAAS_CHECK(at != std::string::npos);  // every page in kPages has both slots
      html.replace(at, slot.size(), fragment);
    }
    return html;
  }

  static std::unique_ptr<ConsoleSessions> MakeSessions(ConsoleOptions& o) {
    if (o.session_store != nullptr) {
      return std::make_unique<StoredSessions>(std::move(o.session_store), o.session_ttl);
    }
    return std::make_unique<MemorySessions>(
        MemorySessions::Options{.ttl = o.session_ttl, .max_sessions = 1024, .now = {}});
  }

  // A session store that cannot be reached signs nobody in or out: 503, and the store's reason.
  static void StoreFailed(const Status& s, const std::string& inv, HttpResponse& res) {
    res = MakeErrorResponse(503, "store_unavailable",
                            "the console's session store cannot be reached: " + s.message(), inv,
                            /*retry_after_s=*/1);
  }

  ConsoleOptions options;
  std::unique_ptr<ConsoleSessions> sessions;
  std::map<std::string, std::string, std::less<>>
      pages;  // file -> composed page; const after start
  std::unique_ptr<v1::Control::Stub> stub;
  std::shared_ptr<spdlog::logger> log = log::Get("console");

  // Sends each call with the admin token, as faasctl does.
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.AddMetadata("authorization", "Bearer " + options.admin_token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  }

  // The control API's answer as JSON: the reply message, or the error shape of errors.h with
  // the control API's faas code.
  static void Answer(grpc::ClientContext& ctx, const grpc::Status& s,
                     const google::protobuf::Message& reply, const std::string& inv,
                     HttpResponse& res) {
    if (!s.ok()) {
      std::string code = "internal";
      const auto& trailers = ctx.GetServerTrailingMetadata();
      if (auto it = trailers.find("faas-code"); it != trailers.end()) {
        code = std::string(it->second.data(), it->second.size());
      }
      res = MakeErrorResponse(HttpStatusOf(s.error_code()), code, s.error_message(), inv);
      return;
    }
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    opts.preserve_proto_field_names = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(reply, &json, opts).ok()) {
      res = MakeErrorResponse(500, "internal", "cannot print the reply as JSON", inv);
      return;
    }
    res.status = 200;
    res.headers.emplace_back("Content-Type", "application/json");
    res.body = std::move(json);
    res.body += '\n';
  }

  void ServeAsset(std::string_view path, const std::string& inv, HttpResponse& res,
                  std::string_view error_html = {}) {
    const console::Asset* a = console::FindAsset(path);
    if (a == nullptr) {
      res = MakeErrorResponse(404, "route_not_found",
                              "no console file /console/" + std::string(path), inv);
      return;
    }
    res.status = 200;
    res.headers.emplace_back("Content-Type", std::string(a->content_type));
    res.body = std::string(a->body);
    if (!error_html.empty()) {
      // The sign-in page's one server-side slot: the failed attempt's message (static text).
      constexpr std::string_view kSlot = "<!--signin-error-->";
      if (std::size_t at = res.body.find(kSlot); at != std::string::npos) {
        res.body.replace(at, kSlot.size(), error_html);
      }
    }
  }

  void SignIn(const HttpRequest& req, const std::string& inv, HttpResponse& res) {
    const std::map<std::string, std::string> form = ParseForm(req.body);
    if (!TokenMatches(Get(form, "token"), options.admin_token)) {
      FAAS_LOG(log, warn, "console.signin_failed", {"remote", req.remote_addr}, {"inv", inv});
      ServeAsset("signin.html", inv, res,
                 "<p class=\"error\" role=\"alert\" id=\"signin-error\">That is not the admin "
                 "token of this faasd.</p>");
      res.status = 401;
      return;
    }
    Result<ConsoleSessions::Created> created = sessions->Create();
    if (!created.ok()) {
      FAAS_LOG(log, err, "console.session_store_failed", {"error", created.status().message()},
               {"inv", inv});
      return StoreFailed(created.status(), inv, res);
    }
    const ConsoleSessions::Created& s = *created;
    std::string cookie = std::string(kCookie) + "=" + s.id + "; Path=/console; HttpOnly; " +
                         "SameSite=Strict; Max-Age=" + std::to_string(options.session_ttl.count());
    const std::string* proto = req.Header("x-forwarded-proto");
    if (options.secure_cookie || (proto != nullptr && *proto == "https")) {
      cookie += "; Secure";
    }
    res.headers.emplace_back("Set-Cookie", std::move(cookie));
    FAAS_LOG(log, info, "console.signin", {"remote", req.remote_addr}, {"inv", inv});
    Redirect(res, "/console/");
  }

  void SignOut(const HttpRequest& req, const std::string& inv, HttpResponse& res) {
    if (Status s = sessions->Erase(CookieValue(req, kCookie)); !s.ok()) {
      FAAS_LOG(log, err, "console.session_store_failed", {"error", s.message()}, {"inv", inv});
      return StoreFailed(s, inv, res);
    }
    res.headers.emplace_back("Set-Cookie", std::string(kCookie) +
                                               "=; Path=/console; HttpOnly; SameSite=Strict; "
                                               "Max-Age=0");
    res.status = 204;
  }

  void Api(HttpRequest& req, std::string_view path, const std::string& csrf, const std::string& inv,
           HttpResponse& res) {
    const bool read = req.method == "GET" || req.method == "HEAD";
    if (!read) {
      const std::string* given = req.Header(kCsrfHeader);
      if (given == nullptr || !TokenMatches(*given, csrf)) {
        res = MakeErrorResponse(403, "csrf_failed",
                                "changes need the session's CSRF token in X-Faas-Csrf (GET "
                                "/console/api/session)",
                                inv);
        return;
      }
    }
    const std::map<std::string, std::string> q = ParseForm(req.query);
    std::vector<std::string_view> seg;
    for (std::string_view rest = path; !rest.empty();) {
      const std::size_t slash = rest.find('/');
      seg.push_back(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    grpc::ClientContext ctx;
    Prepare(ctx);
    auto method_not_allowed = [&](const char* allow) {
      res = MakeErrorResponse(405, "method_not_allowed",
                              req.method + " is not allowed on /console/api/" + std::string(path),
                              inv);
      res.headers.emplace_back("Allow", allow);
    };
    if (seg.size() == 1 && seg[0] == "session") {
      if (!read) {
        return method_not_allowed("GET");
      }
      res.status = 200;
      res.headers.emplace_back("Content-Type", "application/json");
      res.body = "{\"csrf_token\":\"" + csrf + "\"}\n";
      return;
    }
    if (seg.size() == 1 && seg[0] == "functions") {
      if (req.method == "POST") {
        // A new function (the Functions page's create form): its name in the query.
        return Deploy(Get(q, "name"), q, req, inv, res, /*create=*/true);
      }
      if (!read) {
        return method_not_allowed("GET, POST");
      }
      v1::ListFunctionsReply reply;
      grpc::Status s = stub->ListFunctions(&ctx, v1::ListFunctionsRequest(), &reply);
      return Answer(ctx, s, reply, inv, res);
    }
    if (seg.size() == 1 && (seg[0] == "bill" || seg[0] == "bill.csv")) {
      if (!read) {
        return method_not_allowed("GET");
      }
      v1::BillRequest br;
      br.set_function(Get(q, "function"));
      br.set_since_unix_ms(ToInt(q, "since"));
      br.set_until_unix_ms(ToInt(q, "until"));
      br.set_by(Get(q, "by"));
      v1::BillReply reply;
      grpc::Status s = stub->Bill(&ctx, br, &reply);
      if (!s.ok() || seg[0] == "bill") {
        return Answer(ctx, s, reply, inv, res);
      }
      return BillCsv(reply, br.by(), res);
    }
    if (seg.size() == 1 && seg[0] == "triggers") {
      if (!read) {
        return method_not_allowed("GET");
      }
      v1::ListTriggersReply reply;
      grpc::Status s = stub->ListTriggers(&ctx, v1::ListTriggersRequest(), &reply);
      return Answer(ctx, s, reply, inv, res);
    }
    if (seg.size() >= 2 && seg.size() <= 3 && seg[0] == "queues") {
      if (seg.size() == 2) {
        if (!read) {
          return method_not_allowed("GET");
        }
        v1::QueueName qn;
        qn.set_queue(std::string(seg[1]));
        v1::QueueStats reply;
        grpc::Status s = stub->GetQueueStats(&ctx, qn, &reply);
        return Answer(ctx, s, reply, inv, res);
      }
      // The embedded queue's dead letters, listed or (POST .../redrive) moved back to it.
      const bool redrive = seg[2] == "redrive";
      if (seg[2] == "dead" || redrive) {
        if (redrive ? req.method != "POST" : !read) {
          return method_not_allowed(redrive ? "POST" : "GET");
        }
        v1::ListDeadRequest dr;
        dr.set_queue(std::string(seg[1]));
        dr.set_limit(static_cast<uint32_t>(std::min<int64_t>(ToInt(q, "limit", 100), 1000)));
        dr.set_replay(redrive);
        v1::ListDeadReply reply;
        grpc::Status s = stub->ListDead(&ctx, dr, &reply);
        if (redrive) {
          FAAS_LOG(log, info, "console.redrive", {"queue", dr.queue()}, {"ok", s.ok()},
                   {"replayed", reply.replayed()}, {"inv", inv});
        }
        return Answer(ctx, s, reply, inv, res);
      }
    }
    // The cluster's nodes (`faasctl node list`) and draining one (`faasctl node drain ID`).
    if (seg.size() == 1 && seg[0] == "nodes") {
      if (!read) {
        return method_not_allowed("GET");
      }
      v1::ListNodesReply reply;
      grpc::Status s = stub->ListNodes(&ctx, v1::ListNodesRequest(), &reply);
      return Answer(ctx, s, reply, inv, res);
    }
    if (seg.size() == 3 && seg[0] == "nodes" && seg[2] == "drain") {
      if (req.method != "POST") {
        return method_not_allowed("POST");
      }
      v1::DrainNodeRequest dr;
      dr.set_id(std::string(seg[1]));
      v1::ClusterNode reply;
      grpc::Status s = stub->DrainNode(&ctx, dr, &reply);
      FAAS_LOG(log, info, "console.drain", {"node", dr.id()}, {"ok", s.ok()}, {"inv", inv});
      return Answer(ctx, s, reply, inv, res);
    }
    if (seg.size() >= 2 && seg[0] == "functions") {
      const std::string name(seg[1]);
      v1::NameRequest nr;
      nr.set_name(name);
      if (seg.size() == 2) {
        if (req.method == "DELETE") {
          v1::DeleteReply reply;
          grpc::Status s = stub->DeleteFunction(&ctx, nr, &reply);
          FAAS_LOG(log, info, "console.delete", {"fn", name}, {"ok", s.ok()}, {"inv", inv});
          return Answer(ctx, s, reply, inv, res);
        }
        if (!read) {
          return method_not_allowed("GET, DELETE");
        }
        v1::FunctionInfo reply;
        grpc::Status s = stub->DescribeFunction(&ctx, nr, &reply);
        return Answer(ctx, s, reply, inv, res);
      }
      if (seg.size() == 3 && seg[2] == "versions") {
        if (req.method == "POST") {
          return Deploy(name, q, req, inv, res);
        }
        if (!read) {
          return method_not_allowed("GET, POST");
        }
        v1::ListVersionsReply reply;
        grpc::Status s = stub->ListVersions(&ctx, nr, &reply);
        return Answer(ctx, s, reply, inv, res);
      }
      if (seg.size() == 3 && seg[2] == "rollback") {
        if (req.method != "POST") {
          return method_not_allowed("POST");
        }
        v1::RollbackRequest rr;
        rr.set_name(name);
        rr.set_version(static_cast<uint32_t>(ToInt(q, "version")));
        v1::VersionInfo reply;
        grpc::Status s = stub->Rollback(&ctx, rr, &reply);
        FAAS_LOG(log, info, "console.rollback", {"fn", name}, {"version", rr.version()},
                 {"ok", s.ok()}, {"inv", inv});
        return Answer(ctx, s, reply, inv, res);
      }
      if (seg.size() == 3 && seg[2] == "invocations") {
        if (!read) {
          return method_not_allowed("GET");
        }
        v1::ListInvocationsRequest lr;
        lr.set_function(name);
        lr.set_last(static_cast<uint32_t>(std::min<int64_t>(ToInt(q, "last", 100), 1000)));
        lr.set_outcome(Get(q, "outcome"));
        v1::ListInvocationsReply reply;
        grpc::Status s = stub->ListInvocations(&ctx, lr, &reply);
        return Answer(ctx, s, reply, inv, res);
      }
      if (seg.size() == 3 && seg[2] == "logs") {
        if (!read) {
          return method_not_allowed("GET");
        }
        v1::LogsRequest lr;
        lr.set_function(name);
        lr.set_invocation_id(Get(q, "invocation"));
        lr.set_last(static_cast<uint32_t>(std::min<int64_t>(ToInt(q, "last", 50), 1000)));
        lr.set_after_seq(static_cast<uint64_t>(ToInt(q, "after_seq")));
        v1::LogsReply reply;
        grpc::Status s = stub->GetLogs(&ctx, lr, &reply);
        return Answer(ctx, s, reply, inv, res);
      }
    }
    res = MakeErrorResponse(404, "route_not_found",
                            "no console API /console/api/" + std::string(path), inv);
  }

  static void BillCsv(const v1::BillReply& reply, const std::string& by, HttpResponse& res) {
    std::string csv = (by.empty() ? std::string("total") : CsvField(by)) +
                      ",invocations,cpu_ms,billed_ms,cost_micros,cold_starts,errors\r\n";
    for (const v1::BillRow& r : reply.rows()) {
      csv += CsvField(r.key()) + "," + std::to_string(r.invocations()) + "," +
             std::to_string(r.cpu_ms()) + "," + std::to_string(r.billed_ms()) + "," +
             std::to_string(r.cost_micros()) + "," + std::to_string(r.cold_starts()) + "," +
             std::to_string(r.errors()) + "\r\n";
    }
    res.status = 200;
    res.headers.emplace_back("Content-Type", "text/csv; charset=utf-8");
    res.headers.emplace_back("Content-Disposition", "attachment; filename=\"faas-bill.csv\"");
    res.body = std::move(csv);
  }

  // The deploy form's settings over `config`: each one given replaces the current value. Values
  // that are not whole numbers (or true/false) are refused here, every one at once, with the
  // control API's code; their bounds are checked by the control API itself (ValidateConfig), so
  // the console accepts exactly what `faasctl deploy` does. False when `res` holds the error.
  static bool ApplyDeploySettings(const std::map<std::string, std::string>& q,
                                  v1::FunctionConfig& config, const std::string& inv,
                                  HttpResponse& res) {
    std::vector<std::string> errs;
    for (std::string_view name : kDeployNumbers) {
      auto it = q.find(std::string(name));
      if (it == q.end()) {
        continue;
      }
      uint64_t v = 0;
      const std::string& text = it->second;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        errs.push_back(std::string(name) + ": \"" + text.substr(0, 40) +
                       "\" is not a whole number");
        continue;
      }
      if ((name == "max_instances" || name == "min_warm") && v > UINT32_MAX) {
        v = UINT32_MAX;  // out of range either way: ValidateConfig names the bound
      }
      if (name == "memory_mb") {
        config.set_memory_mb(v);
      } else if (name == "timeout_ms") {
        config.set_timeout_ms(v);
      } else if (name == "max_instances") {
        config.set_max_instances(static_cast<uint32_t>(v));
      } else if (name == "min_warm") {
        config.set_min_warm(static_cast<uint32_t>(v));
        config.set_has_min_warm(true);
      } else {
        config.set_idle_ttl_ms(v);
      }
    }
    if (auto it = q.find("isolation"); it != q.end()) {
      config.set_isolation(it->second);  // "warm" | "fresh": checked by the control API
    }
    if (auto it = q.find("idempotent"); it != q.end()) {
      if (it->second == "true" || it->second == "false") {
        config.set_idempotent(it->second == "true");
      } else {
        errs.push_back("idempotent: \"" + it->second.substr(0, 40) + "\" must be true or false");
      }
    }
    if (errs.empty()) {
      return true;
    }
    std::string msg = "invalid config: ";
    for (std::size_t i = 0; i < errs.size(); ++i) {
      msg += (i == 0 ? "" : "; ") + errs[i];
    }
    res = MakeErrorResponse(400, "invalid_config", msg, inv);
    return false;
  }

  // A new version of `name` from the uploaded library (the request body), with the current
  // version's configuration (a function's first version gets the defaults) changed by the
  // settings given in the query (ApplyDeploySettings). With `create`, `name` must not exist
  // yet (409 function_exists: a create form never replaces someone's function by a typo); the
  // name itself is checked by the control API's Deploy, as for `faasctl deploy` (invalid_name).
  void Deploy(const std::string& name, const std::map<std::string, std::string>& q,
              HttpRequest& req, const std::string& inv, HttpResponse& res, bool create = false) {
    v1::DeployChunk first;
    first.set_name(name);
    if (create && req.body.empty()) {
      res = MakeErrorResponse(400, "invalid_artifact",
                              "a new function needs its library (a .so file) as the body", inv);
      return;
    }
    {
      grpc::ClientContext dctx;
      Prepare(dctx);
      v1::NameRequest nr;
      nr.set_name(name);
      v1::FunctionInfo info;
      if (stub->DescribeFunction(&dctx, nr, &info).ok()) {
        if (create) {
          res = MakeErrorResponse(
              409, "function_exists",
              "a function named " + name + " exists: deploy a new version from its page", inv);
          return;
        }
        if (info.has_latest()) {
          *first.mutable_config() = info.latest().config();
        }
      }
    }
    if (!ApplyDeploySettings(q, *first.mutable_config(), inv, res)) {
      return;
    }
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::DeployReply reply;
    std::unique_ptr<grpc::ClientWriter<v1::DeployChunk>> writer = stub->Deploy(&ctx, &reply);
    std::string_view body = req.body;
    bool sent = true;
    v1::DeployChunk chunk = std::move(first);
    do {
      const std::size_t n = std::min(body.size(), kDeployChunkBytes);
      chunk.set_data(std::string(body.substr(0, n)));
      body.remove_prefix(n);
      sent = writer->Write(chunk);
      chunk.Clear();
    } while (sent && !body.empty());
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    FAAS_LOG(log, info, create ? "console.create" : "console.deploy", {"fn", name},
             {"bytes", req.body.size()}, {"ok", s.ok()}, {"inv", inv});
    Answer(ctx, s, reply, inv, res);
  }

  void Handle(HttpRequest& req, const std::string& inv, HttpResponse& res) {
    if (req.path == "/console") {
      AddSecurityHeaders(res, false);
      res.status = 308;
      res.headers.emplace_back("Location", "/console/");
      return;
    }
    const std::string_view rest =
        std::string_view(req.path).substr(std::string_view("/console/").size());
    const bool read = req.method == "GET" || req.method == "HEAD";
    if (rest == "signin") {
      if (req.method == "POST") {
        SignIn(req, inv, res);
      } else if (read) {
        ServeAsset("signin.html", inv, res);
      } else {
        res =
            MakeErrorResponse(405, "method_not_allowed", "sign in with POST /console/signin", inv);
      }
      AddSecurityHeaders(res, false);
      return;
    }
    if (rest.starts_with("assets/")) {
      // Public: the sign-in page needs its style sheet; these files hold no data.
      if (read) {
        ServeAsset(rest, inv, res);
      } else {
        res = MakeErrorResponse(405, "method_not_allowed", "console files are read with GET", inv);
      }
      AddSecurityHeaders(res, res.status == 200);
      return;
    }
    Result<std::optional<std::string>> found = sessions->Find(CookieValue(req, kCookie));
    if (!found.ok()) {
      FAAS_LOG(log, err, "console.session_store_failed", {"error", found.status().message()},
               {"inv", inv});
      StoreFailed(found.status(), inv, res);
      AddSecurityHeaders(res, false);
      return;
    }
    const std::optional<std::string>& csrf = *found;
    if (rest.starts_with("api/")) {
      if (!csrf) {
        res = MakeErrorResponse(401, "unauthorized",
                                "sign in to the console first (POST /console/signin)", inv);
      } else {
        Api(req, rest.substr(4), *csrf, inv, res);
      }
      AddSecurityHeaders(res, false);
      return;
    }
    if (rest == "signout") {
      if (req.method != "POST") {
        res = MakeErrorResponse(405, "method_not_allowed", "sign out with POST /console/signout",
                                inv);
      } else if (!csrf) {
        res = MakeErrorResponse(401, "unauthorized", "not signed in", inv);
      } else if (const std::string* given = req.Header(kCsrfHeader);
                 given == nullptr || !TokenMatches(*given, *csrf)) {
        res = MakeErrorResponse(403, "csrf_failed", "sign-out needs the session's CSRF token", inv);
      } else {
        SignOut(req, inv, res);
      }
      AddSecurityHeaders(res, false);
      return;
    }
    for (const auto& [page, file] : kPages) {
      if (rest != page) {
        continue;
      }
      if (!read) {
        res = MakeErrorResponse(405, "method_not_allowed", "console pages are read with GET", inv);
      } else if (!csrf) {
        Redirect(res, "/console/signin");
      } else {
        res.status = 200;
        res.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
        res.body = pages.find(file)->second;
      }
      AddSecurityHeaders(res, false);
      return;
    }
    res = MakeErrorResponse(404, "route_not_found", "no console page " + req.path, inv);
    AddSecurityHeaders(res, false);
  }
};

Console::Console(ConsoleOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Console::~Console() = default;

void Console::Handle(gateway::HttpRequest& req, const std::string& invocation_id,
                     gateway::HttpResponse& res) {
  impl_->Handle(req, invocation_id, res);
}

std::shared_ptr<const gateway::ConsoleHandler> Console::Handler() {
  return std::make_shared<const gateway::ConsoleHandler>(
      [this](gateway::HttpRequest& req, const std::string& inv, gateway::HttpResponse& res) {
        Handle(req, inv, res);
      });
}

}  // namespace faas::daemon
