// ClassifyRoute: the one table of built-in routes, and custom routes behind them.
#include "route_kind.h"

#include <gtest/gtest.h>

namespace faas::gateway {
namespace {

HttpRequest Req(std::string method, std::string path) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

std::shared_ptr<const Router> Routes() {
  RouterBuilder b;
  EXPECT_TRUE(
      b.Add({.method = "GET", .path = "/users/{id}", .host = "", .function = "users"}).ok());
  return std::move(b).Build();
}

TEST(ClassifyRoute, BuiltInRoutes) {
  struct Row {
    std::string method, path;
    RouteKind kind;
    std::string route, name, rest;
  };
  const Row rows[] = {
      {"GET", "/function/hello", RouteKind::kInvoke, "/function/{name}", "hello", "/"},
      {"PUT", "/function/hello/a/b", RouteKind::kInvoke, "/function/{name}", "hello", "/a/b"},
      {"POST", "/async-function/x/y", RouteKind::kAsync, "/async-function/{name}", "x", "/y"},
      {"GET", "/async-function/x", RouteKind::kAsync, "/async-function/{name}", "x", "/"},
      {"POST", "/queues/jobs", RouteKind::kQueue, "/queues/{name}", "jobs", ""},
      {"GET", "/invocations/01abc", RouteKind::kInvocation, "/invocations/{id}", "01abc", ""},
      {"GET", "/metrics", RouteKind::kMetrics, "/metrics", "", ""},
      {"GET", "/healthz", RouteKind::kHealth, "/healthz", "", ""},
      {"GET", "/readyz", RouteKind::kHealth, "/readyz", "", ""},
      // No name, or a method the route does not take: no route.
      {"GET", "/function/", RouteKind::kNone, "other", "", "/"},
      {"POST", "/async-function/", RouteKind::kNone, "other", "", "/"},
      {"DELETE", "/invocations/01abc", RouteKind::kNone, "other", "", ""},
      {"GET", "/function", RouteKind::kNone, "other", "", ""},
      {"GET", "/nothing", RouteKind::kNone, "other", "", ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.method + " " + row.path);
    ClassifiedRoute c = ClassifyRoute(Req(row.method, row.path), nullptr);
    EXPECT_EQ(c.kind, row.kind);
    EXPECT_EQ(c.route, row.route);
    EXPECT_EQ(c.name, row.name);
    EXPECT_EQ(c.rest, row.rest);
  }
}

TEST(ClassifyRoute, CustomRoutesAfterBuiltIns) {
  std::shared_ptr<const Router> routes = Routes();
  ClassifiedRoute c = ClassifyRoute(Req("GET", "/users/42"), routes.get());
  EXPECT_EQ(c.kind, RouteKind::kCustom);
  EXPECT_EQ(c.route, "/users/{id}");
  EXPECT_EQ(c.name, "users");
  EXPECT_EQ(c.rest, "/users/42");
  ASSERT_EQ(c.params.size(), 1u);
  EXPECT_EQ(c.params[0], (std::pair<std::string, std::string>{"id", "42"}));
  EXPECT_EQ(ClassifyRoute(Req("POST", "/users/42"), routes.get()).kind, RouteKind::kNone);
  EXPECT_EQ(ClassifyRoute(Req("GET", "/healthz"), routes.get()).kind, RouteKind::kHealth);
}

TEST(ClassifyRoute, OnlyStorageRoutesMayBlock) {
  EXPECT_TRUE(MayBlock(RouteKind::kAsync));
  EXPECT_TRUE(MayBlock(RouteKind::kQueue));
  EXPECT_TRUE(MayBlock(RouteKind::kInvocation));
  EXPECT_TRUE(MayBlock(RouteKind::kMetrics));
  // Invocations run on the event loop; health checks and 404s answer there.
  EXPECT_FALSE(MayBlock(RouteKind::kInvoke));
  EXPECT_FALSE(MayBlock(RouteKind::kCustom));
  EXPECT_FALSE(MayBlock(RouteKind::kHealth));
  EXPECT_FALSE(MayBlock(RouteKind::kNone));
}

}  // namespace
}  // namespace faas::gateway
