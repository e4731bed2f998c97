// Fuzz target for the route matcher (gateway::Router).
//
// Input: text lines. Lines up to the first empty line are routes, "METHOD PATH FUNCTION [HOST]";
// the lines after it are lookups, "METHOD PATH [HOST]". Invalid routes are refused (and must not
// crash); every accepted route must then match a request built from its own template, and every
// match must be consistent with the route it names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/gateway/router.h"

namespace {

constexpr std::size_t kMaxRoutes = 256;
constexpr std::size_t kMaxLookups = 256;
constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

std::vector<std::string_view> Split(std::string_view s, char sep, std::size_t max_fields) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_fields) {
    std::size_t at = s.find(sep);
    if (at == std::string_view::npos) {
      break;
    }
    out.push_back(s.substr(0, at));
    s = s.substr(at + 1);
  }
  out.push_back(s);
  return out;
}

void Check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// A request path the template matches: {name} → "v", {name...} → "v/w".
std::string ConcretePath(const std::string& tmpl) {
  if (tmpl == "/") {
    return tmpl;
  }
  std::string out;
  std::string_view view = tmpl;
  for (std::string_view seg : Split(view.substr(1), '/', kUnlimited)) {
    out += '/';
    if (seg.starts_with('{')) {
      out += seg.ends_with("...}") ? "v/w" : "v";
    } else {
      out += seg;
    }
  }
  return out;
}

std::size_t CountParams(std::string_view tmpl) {
  std::size_t n = 0;
  for (char c : tmpl) {
    n += c == '{' ? 1 : 0;
  }
  return n;
}

void CheckMatch(const std::optional<faas::gateway::RouteMatch>& m, std::string_view path) {
  if (!m) {
    return;
  }
  Check(m->route != nullptr);
  Check(m->function == m->route->function);
  Check(m->path == path);
  Check(m->params.size() == CountParams(m->route->path));
  for (const auto& [name, value] : m->params) {
    Check(!name.empty());
    Check(!value.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = Split(input, '\n', kUnlimited);
  std::size_t i = 0;
  faas::gateway::RouterBuilder builder;
  for (; i < lines.size() && !lines[i].empty() && i < kMaxRoutes; ++i) {
    std::vector<std::string_view> f = Split(lines[i], ' ', 4);
    faas::gateway::RouteSpec spec{std::string(f[0]), f.size() > 1 ? std::string(f[1]) : "",
                                  f.size() > 3 ? std::string(f[3]) : "",
                                  f.size() > 2 ? std::string(f[2]) : ""};
    std::size_t before = builder.Size();
    faas::Status s = builder.Add(spec);
    Check(builder.Size() == before + (s.ok() ? 1 : 0));
  }
  std::shared_ptr<const faas::gateway::Router> router = std::move(builder).Build();

  for (const faas::gateway::RouteSpec& r : router->Routes()) {
    std::string path = ConcretePath(r.path);
    std::optional<faas::gateway::RouteMatch> m = router->Match(r.method, r.host, path);
    Check(m.has_value());
    CheckMatch(m, path);
  }
  for (std::size_t n = 0; i < lines.size() && n < kMaxLookups; ++i, ++n) {
    std::vector<std::string_view> f = Split(lines[i], ' ', 3);
    std::string_view path = f.size() > 1 ? f[1] : "";
    std::string_view host = f.size() > 2 ? f[2] : "";
    std::size_t visited = 0;
    CheckMatch(router->Match(f[0], host, path, &visited), path);
    Check(visited <= router->NodeCount());
  }
  return 0;
}
