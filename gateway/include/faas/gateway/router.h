// Router: custom HTTP routes (docs/http-api.md) — `METHOD /path/{param}/{rest...}` → function.
//
//   RouterBuilder b;
//   FAAS_RETURN_IF_ERROR(b.Add({.method = "GET", .path = "/users/{id}", .function = "users"}));
//   FAAS_RETURN_IF_ERROR(b.Add({.method = "ANY", .path = "/files/{rest...}", .function =
//   "files"})); std::shared_ptr<const Router> router = std::move(b).Build();
//   std::optional<RouteMatch> m = router->Match("GET", "api.example.com:8080", "/users/42");
//   // m->function == "users", m->params == {{"id", "42"}}, m->path == "/users/42"
//
// A template is '/' or '/'-separated non-empty segments, each a literal (`users`), a parameter
// (`{id}`: exactly one non-empty segment) or, last only, a wildcard (`{rest...}`: one or more
// segments, its value the rest of the path joined with '/'). Lookup is a walk of a segment trie:
// its cost depends on the request path's length and the trie's shape near it, never on the
// number of routes. Precedence at each segment: literal, then parameter, then wildcard, with
// backtracking: a more specific branch that fails deeper (or has no route for the method) falls
// back to the next one. At the end of a branch, a route for the request's method beats one
// registered with ANY. Routes with a host are kept in one trie per host; when the request's Host
// (case-insensitive, port stripped) has a trie that matches, it wins over the host-less trie.
//
// Request paths are split on '/' before percent-decoding, so `%2F` stays inside a segment;
// literals are compared and parameters returned decoded. A path with an invalid escape matches
// no route.
//
// Thread-safety: a Router is immutable and safe to share between threads. Updates build a new
// one with RouterBuilder and swap the std::shared_ptr (Gateway::SetRoutes).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/status.h"

namespace faas::gateway {

// One route as configured (and stored in the registry).
struct RouteSpec {
  std::string method;    // GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY
  std::string path;      // template, e.g. /users/{id}/files/{rest...}
  std::string host;      // "" = every host; else matched against the Host header
  std::string function;  // function name (store::ValidateName)
};

// Most segments a template may have: bounds the depth of a lookup.
constexpr std::size_t kMaxRouteSegments = 32;
// Longest template, and longest host, accepted.
constexpr std::size_t kMaxRoutePathBytes = 1024;
constexpr std::size_t kMaxRouteHostBytes = 253;  // longest DNS name

// `r` with the method upper-cased and the host lower-cased, without a trailing '.' (how routes
// are stored and keyed).
RouteSpec NormalizeRoute(RouteSpec r);

// Checks one route on its own (after NormalizeRoute): the template, method, host and function
// name. InvalidArgument lists every problem at once, each quoting the value, e.g.
// `path "users/{id}": must start with '/'; method "FETCH": must be one of GET, HEAD, ...`.
// Built-in paths are not checked here (see RouterBuilder::Add).
faas::Status ValidateRoute(const RouteSpec& r);

// "GET /users/{id}" or "GET api.example.com/users/{id}": how messages name a route.
std::string DescribeRoute(const RouteSpec& r);

// A successful lookup.
struct RouteMatch {
  std::string function;
  // Parameter name → percent-decoded value, in template order; a wildcard's value is the rest
  // of the path, decoded segment by segment and joined with '/'.
  std::vector<std::pair<std::string, std::string>> params;
  std::string path;                  // the path the function sees: the full request path, as sent
  const RouteSpec* route = nullptr;  // the route that matched; lives as long as the Router
};

class Router {
 public:
  // Looks up `method` (as sent; compared exactly, so "get" matches only ANY routes), `host` (the
  // Host header, may be empty, any case, may carry a port) and `path` (raw, not decoded, no
  // query). nullopt when no route matches. Never fails otherwise; thread-safe.
  // `nodes_visited` (optional, for tests) receives how many trie nodes the walk entered.
  std::optional<RouteMatch> Match(std::string_view method, std::string_view host,
                                  std::string_view path,
                                  std::size_t* nodes_visited = nullptr) const;

  // Every route, in the order they were added.
  const std::vector<RouteSpec>& Routes() const { return routes_; }

  // Trie nodes in all tries (for tests: a trie shares prefixes, so this grows with distinct
  // prefixes, not with routes × segments).
  std::size_t NodeCount() const;

  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

 private:
  friend class RouterBuilder;
  struct Impl;
  Router();
  std::vector<RouteSpec> routes_;
  std::unique_ptr<Impl> impl_;
};

// Builds one immutable Router. Not thread-safe (one builder per thread).
class RouterBuilder {
 public:
  RouterBuilder();
  ~RouterBuilder();
  RouterBuilder(RouterBuilder&&) noexcept;
  RouterBuilder& operator=(RouterBuilder&&) noexcept;

  // Normalizes and adds one route. On error nothing is added:
  //   InvalidArgument: ValidateRoute's message.
  //   AlreadyExists:   the route has the same method, host and shape (the same literals in the
  //                    same positions, parameters and wildcards in the same positions, whatever
  //                    their names) as an added route, or lies under a path faasd serves itself
  //                    (/function/, /async-function/, /invocations/, /healthz, /readyz,
  //                    /metrics). The message names the route it conflicts with.
  faas::Status Add(RouteSpec route);
  // Routes added so far.
  std::size_t Size() const;
  // The router; the builder is left empty.
  std::shared_ptr<const Router> Build() &&;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace faas::gateway
