#include "faas/gateway/router.h"

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "faas/store/config.h"

namespace faas::gateway {
namespace {

constexpr std::array<std::string_view, 8> kMethods = {"GET",   "HEAD",   "POST",    "PUT",
                                                      "PATCH", "DELETE", "OPTIONS", "ANY"};
constexpr std::string_view kAny = "ANY";
constexpr std::size_t kMaxParamNameBytes = 64;

// First template segments faasd serves itself, and the built-in route each belongs to.
struct Reserved {
  std::string_view segment;
  std::string_view route;
};
constexpr std::array<Reserved, 8> kReserved = {{
    {"function", "ANY /function/{name}[/{rest}]"},
    {"async-function", "POST /async-function/{name}"},
    {"invocations", "GET /invocations/{id}"},
    {"queues", "POST /queues/{name}"},
    {"healthz", "GET /healthz"},
    {"readyz", "GET /readyz"},
    {"metrics", "GET /metrics"},
    {"console", "GET /console/"},
}};

// Heterogeneous lookup: find(std::string_view) without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
char Upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

bool IsParamName(std::string_view s) {
  if (s.empty() || s.size() > kMaxParamNameBytes) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

// RFC 3986 pchar without '%': literals are plain text, compared with the decoded request.
bool IsLiteralChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// A quoted value for messages: printable ASCII kept, anything else '?', at most 200 bytes.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    out += (u >= 0x20 && u < 0x7f) ? s[i] : '?';
  }
  if (s.size() > 200) {
    out += "...";
  }
  return out + "\"";
}

enum class SegmentKind { kLiteral, kParam, kRest };
struct Segment {
  SegmentKind kind;
  std::string text;  // the literal, or the parameter's name
};

// Splits a template into segments; appends problems (without the path prefix) to `problems`.
std::vector<Segment> ParseTemplate(std::string_view path, std::vector<std::string>& problems) {
  std::vector<Segment> out;
  if (path.empty() || path.front() != '/') {
    problems.emplace_back("must start with '/'");
    return out;
  }
  if (path.size() > kMaxRoutePathBytes) {
    problems.emplace_back("is longer than " + std::to_string(kMaxRoutePathBytes) + " bytes");
    return out;
  }
  if (path == "/") {
    return out;
  }
  std::vector<std::string> names;
  std::string_view rest = path.substr(1);
  std::size_t index = 0;
  bool after_wildcard = false;
  for (;;) {
    ++index;
    std::size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    std::string where = "segment " + std::to_string(index);
    if (after_wildcard) {
      problems.emplace_back("a {name...} wildcard must be the last segment");
      after_wildcard = false;  // say it once
    }
    if (seg.empty()) {
      problems.emplace_back(where + " is empty");
    } else if (seg.front() == '{' && seg.back() == '}' && seg.size() >= 2) {
      std::string_view inner = seg.substr(1, seg.size() - 2);
      SegmentKind kind = SegmentKind::kParam;
      if (inner.ends_with("...")) {
        kind = SegmentKind::kRest;
        inner.remove_suffix(3);
        after_wildcard = slash != std::string_view::npos;
      }
      if (!IsParamName(inner)) {
        problems.emplace_back("parameter name " + Quote(inner) + " must match [a-z_][a-z0-9_]* (" +
                              "at most " + std::to_string(kMaxParamNameBytes) + " bytes)");
      } else {
        for (const std::string& n : names) {
          if (n == inner) {
            problems.emplace_back("parameter " + Quote(inner) + " appears more than once");
            break;
          }
        }
        names.emplace_back(inner);
      }
      out.push_back({kind, std::string(inner)});
    } else if (seg.find_first_of("{}") != std::string_view::npos) {
      problems.emplace_back(where + " " + Quote(seg) +
                            ": a parameter must be a whole segment, like {id} or {rest...}");
    } else if (seg == "." || seg == "..") {
      problems.emplace_back(where + " " + Quote(seg) + ": dot segments are not allowed");
    } else {
      bool ok = true;
      for (char c : seg) {
        ok = ok && IsLiteralChar(c);
      }
      if (!ok) {
        problems.emplace_back(where + " " + Quote(seg) +
                              ": a literal may contain only letters, digits and -._~!$&'()*+,;=:@");
      }
      out.push_back({SegmentKind::kLiteral, std::string(seg)});
    }
    if (slash == std::string_view::npos) {
      break;
    }
    rest = rest.substr(slash + 1);
  }
  if (index > kMaxRouteSegments) {
    problems.emplace_back("has " + std::to_string(index) + " segments, more than " +
                          std::to_string(kMaxRouteSegments));
  }
  return out;
}

std::string ValidateHost(std::string_view host) {
  if (host.size() > kMaxRouteHostBytes) {
    return "is longer than " + std::to_string(kMaxRouteHostBytes) + " bytes";
  }
  if (host.front() == '[') {  // an IPv6 literal, as in a Host header
    bool ok = host.size() > 2 && host.back() == ']';
    for (char c : host.substr(1, host.size() - 2)) {
      ok = ok && ((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.');
    }
    return ok ? "" : "must be a host name or a bracketed IPv6 address, like [::1]";
  }
  if (host.find(':') != std::string_view::npos) {
    return "must be a host name without a port";
  }
  for (char c : host) {
    if (!IsHostChar(c)) {
      return "may contain only letters, digits, '-' and '.'";
    }
  }
  if (host.front() == '.' || host.back() == '.' || host.find("..") != std::string_view::npos) {
    return "has an empty label";
  }
  return "";
}

// The Host header as routes are keyed: lower-cased, port and one trailing dot removed.
std::string NormalizeHostHeader(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    std::size_t close = host.find(']');
    host = host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
  } else if (std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  std::string out(host);
  for (char& c : out) {
    c = Lower(c);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = Lower(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

// Percent-decodes one segment; false on a malformed escape.
bool Decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  return true;
}

// The shape of a template for conflict checks: literals kept, parameter names dropped.
std::string Shape(const std::vector<Segment>& segs) {
  std::string out;
  for (const Segment& s : segs) {
    out += '/';
    switch (s.kind) {
      case SegmentKind::kLiteral:
        out += s.text;
        break;
      case SegmentKind::kParam:
        out += "{}";
        break;
      case SegmentKind::kRest:
        out += "{...}";
        break;
    }
  }
  return out.empty() ? "/" : out;
}

// Routes ending at a node (or whose wildcard starts after it), by method.
struct Endpoints {
  std::vector<std::pair<std::string, uint32_t>> by_method;  // at most 8 entries

  // The route for `method`, else the ANY route; -1 when neither exists.
  int64_t Find(std::string_view method) const {
    int64_t any = -1;
    for (const auto& [m, route] : by_method) {
      if (m == method) {
        return route;
      }
      if (m == kAny) {
        any = route;
      }
    }
    return any;
  }
};

struct Node {
  StringMap<std::unique_ptr<Node>> literals;
  std::unique_ptr<Node> param;
  Endpoints end;
  Endpoints rest;

  std::size_t Count() const {
    std::size_t n = 1;
    for (const auto& [k, child] : literals) {
      n += child->Count();
    }
    return n + (param ? param->Count() : 0);
  }
};

}  // namespace

struct Router::Impl {
  std::vector<std::vector<std::string>> param_names;  // per route, in template order
  Node any_host;
  StringMap<std::unique_ptr<Node>> hosts;
};

namespace {

// One lookup: the decoded request segments and the values captured so far.
struct Walk {
  const std::vector<std::string>& segs;
  std::string_view method;
  std::vector<std::string> captured;
  std::size_t visited = 0;

  int64_t From(const Node& n, std::size_t i) {
    ++visited;
    if (i == segs.size()) {
      return n.end.Find(method);
    }
    if (!n.literals.empty()) {
      if (auto it = n.literals.find(segs[i]); it != n.literals.end()) {
        if (int64_t r = From(*it->second, i + 1); r >= 0) {
          return r;
        }
      }
    }
    if (n.param && !segs[i].empty()) {
      captured.push_back(segs[i]);
      if (int64_t r = From(*n.param, i + 1); r >= 0) {
        return r;
      }
      captured.pop_back();
    }
    if (int64_t r = n.rest.Find(method); r >= 0) {
      std::string value;
      for (std::size_t k = i; k < segs.size(); ++k) {
        value += segs[k];
        if (k + 1 < segs.size()) {
          value += '/';
        }
      }
      if (!value.empty()) {
        captured.push_back(std::move(value));
        return r;
      }
    }
    return -1;
  }
};

}  // namespace

RouteSpec NormalizeRoute(RouteSpec r) {
  for (char& c : r.method) {
    c = Upper(c);
  }
  for (char& c : r.host) {
    c = Lower(c);
  }
  if (r.host.size() > 1 && r.host.back() == '.') {
    r.host.pop_back();  // "example.com." names the same host as "example.com"
  }
  return r;
}

faas::Status ValidateRoute(const RouteSpec& r) {
  std::vector<std::string> problems;
  bool method_ok = false;
  for (std::string_view m : kMethods) {
    method_ok = method_ok || r.method == m;
  }
  if (!method_ok) {
    problems.push_back("method " + Quote(r.method) +
                       ": must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, ANY");
  }
  std::vector<std::string> path_problems;
  ParseTemplate(r.path, path_problems);
  for (std::string& p : path_problems) {
    problems.push_back("path " + Quote(r.path) + ": " + p);
  }
  if (!r.host.empty()) {
    if (std::string why = ValidateHost(r.host); !why.empty()) {
      problems.push_back("host " + Quote(r.host) + ": " + why);
    }
  }
  if (faas::Status s = store::ValidateName(r.function); !s.ok()) {
    problems.push_back("function " + s.message());
  }
  if (problems.empty()) {
    return faas::OkStatus();
  }
  std::string msg;
  for (const std::string& p : problems) {
    msg += (msg.empty() ? "" : "; ") + p;
  }
  return faas::InvalidArgumentError(std::move(msg));
}

std::string DescribeRoute(const RouteSpec& r) {
  return r.method + " " + r.host + r.path;
}

Router::Router() : impl_(std::make_unique<Impl>()) {}
Router::~Router() = default;

std::optional<RouteMatch> Router::Match(std::string_view method, std::string_view host,
                                        std::string_view path, std::size_t* nodes_visited) const {
  if (nodes_visited != nullptr) {
    *nodes_visited = 0;
  }
  if (routes_.empty() || path.empty() || path.front() != '/') {
    return std::nullopt;
  }
  std::vector<std::string> segs;
  if (path.size() > 1) {
    std::string_view rest = path.substr(1);
    for (;;) {
      std::size_t slash = rest.find('/');
      std::string decoded;
      if (!Decode(rest.substr(0, slash), decoded)) {
        return std::nullopt;
      }
      segs.push_back(std::move(decoded));
      if (slash == std::string_view::npos) {
        break;
      }
      rest = rest.substr(slash + 1);
    }
  }
  const Node* tries[2] = {nullptr, &impl_->any_host};
  if (!impl_->hosts.empty() && !host.empty()) {
    if (auto it = impl_->hosts.find(NormalizeHostHeader(host)); it != impl_->hosts.end()) {
      tries[0] = it->second.get();
    }
  }
  for (const Node* trie : tries) {
    if (trie == nullptr) {
      continue;
    }
    Walk walk{segs, method, {}, 0};
    int64_t found = walk.From(*trie, 0);
    if (nodes_visited != nullptr) {
      *nodes_visited += walk.visited;
    }
    if (found < 0) {
      continue;
    }
    auto index = static_cast<std::size_t>(found);
    const std::vector<std::string>& names = impl_->param_names[index];
    RouteMatch m;
    m.function = routes_[index].function;
    m.path = std::string(path);
    m.route = &routes_[index];
    m.params.reserve(names.size());
    for (std::size_t k = 0; k < names.size() && k < walk.captured.size(); ++k) {
      m.params.emplace_back(names[k], std::move(walk.captured[k]));
    }
    return m;
  }
  return std::nullopt;
}

std::size_t Router::NodeCount() const {
  std::size_t n = impl_->any_host.Count();
  for (const auto& [host, trie] : impl_->hosts) {
    n += trie->Count();
  }
  return n;
}

struct RouterBuilder::State {
  std::unique_ptr<Router> router{new Router()};
  StringMap<std::size_t> shapes;  // "METHOD host shape" → route index
};

RouterBuilder::RouterBuilder() : state_(std::make_unique<State>()) {}
RouterBuilder::~RouterBuilder() = default;
RouterBuilder::RouterBuilder(RouterBuilder&&) noexcept = default;
RouterBuilder& RouterBuilder::operator=(RouterBuilder&&) noexcept = default;

std::size_t RouterBuilder::Size() const {
  return state_->router->routes_.size();
}

faas::Status RouterBuilder::Add(RouteSpec route) {
  route = NormalizeRoute(std::move(route));
  FAAS_RETURN_IF_ERROR(ValidateRoute(route));
  std::vector<std::string> ignored;
  std::vector<Segment> segs = ParseTemplate(route.path, ignored);
  if (!segs.empty() && segs.front().kind == SegmentKind::kLiteral) {
    for (const Reserved& r : kReserved) {
      if (segs.front().text == r.segment) {
        return faas::AlreadyExistsError(
            "route " + DescribeRoute(route) + " conflicts with the built-in route " +
            std::string(r.route) + ": /" + std::string(r.segment) + " is reserved by faasd");
      }
    }
  }
  Router& router = *state_->router;
  std::string key = route.method + " " + route.host + " " + Shape(segs);
  if (auto it = state_->shapes.find(key); it != state_->shapes.end()) {
    return faas::AlreadyExistsError("route " + DescribeRoute(route) + " conflicts with route " +
                                    DescribeRoute(router.routes_[it->second]) + " -> " +
                                    router.routes_[it->second].function +
                                    " (same method, host and path shape)");
  }
  Node* node = &router.impl_->any_host;
  if (!route.host.empty()) {
    auto& trie = router.impl_->hosts[route.host];
    if (!trie) {
      trie = std::make_unique<Node>();
    }
    node = trie.get();
  }
  std::vector<std::string> names;
  Endpoints* target = &node->end;
  for (const Segment& s : segs) {
    switch (s.kind) {
      case SegmentKind::kLiteral: {
        auto& child = node->literals[s.text];
        if (!child) {
          child = std::make_unique<Node>();
        }
        node = child.get();
        target = &node->end;
        break;
      }
      case SegmentKind::kParam:
        if (!node->param) {
          node->param = std::make_unique<Node>();
        }
        node = node->param.get();
        target = &node->end;
        names.push_back(s.text);
        break;
      case SegmentKind::kRest:
        target = &node->rest;
        names.push_back(s.text);
        break;
    }
  }
  auto index = static_cast<uint32_t>(router.routes_.size());
  target->by_method.emplace_back(route.method, index);
  state_->shapes.emplace(std::move(key), index);
  router.impl_->param_names.push_back(std::move(names));
  router.routes_.push_back(std::move(route));
  return faas::OkStatus();
}

std::shared_ptr<const Router> RouterBuilder::Build() && {
  std::shared_ptr<const Router> out(std::move(state_->router));
  state_ = std::make_unique<State>();
  return out;
}

}  // namespace faas::gateway
