#include "faas/gateway/router.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace faas::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

using Params = std::vector<std::pair<std::string, std::string>>;

std::shared_ptr<const Router> Make(const std::vector<RouteSpec>& routes) {
  RouterBuilder b;
  for (const RouteSpec& r : routes) {
    Status s = b.Add(r);
    EXPECT_TRUE(s.ok()) << DescribeRoute(r) << ": " << s.ToString();
  }
  return std::move(b).Build();
}

// The function a request reaches, or "" when none.
std::string FunctionFor(const Router& r, std::string_view method, std::string_view path,
                        std::string_view host = "") {
  std::optional<RouteMatch> m = r.Match(method, host, path);
  return m ? m->function : "";
}

Status AddError(const std::vector<RouteSpec>& existing, const RouteSpec& route) {
  RouterBuilder b;
  for (const RouteSpec& r : existing) {
    EXPECT_TRUE(b.Add(r).ok()) << DescribeRoute(r);
  }
  return b.Add(route);
}

std::string InvalidMessage(const RouteSpec& route) {
  Status s = ValidateRoute(NormalizeRoute(route));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << DescribeRoute(route);
  return s.message();
}

TEST(Router, MatchesLiteralParamAndWildcardTemplates) {
  auto r = Make({{"GET", "/users/{id}", "", "users"},
                 {"ANY", "/files/{rest...}", "", "files"},
                 {"GET", "/", "", "root"},
                 {"GET", "/a/b/c", "", "abc"}});
  std::optional<RouteMatch> m = r->Match("GET", "", "/users/42");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "users");
  EXPECT_THAT(m->params, ElementsAre(Pair("id", "42")));
  EXPECT_EQ(m->path, "/users/42");
  EXPECT_EQ(m->route->path, "/users/{id}");

  m = r->Match("PUT", "", "/files/a/b/c.txt");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "files");
  EXPECT_THAT(m->params, ElementsAre(Pair("rest", "a/b/c.txt")));

  EXPECT_EQ(FunctionFor(*r, "GET", "/"), "root");
  EXPECT_EQ(FunctionFor(*r, "GET", "/a/b/c"), "abc");
  EXPECT_EQ(FunctionFor(*r, "GET", "/a/b"), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "/a/b/c/d"), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "/users"), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/"), "");  // a parameter is never empty
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/42/x"), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "/files"), "");   // a wildcard needs one segment or more
  EXPECT_EQ(FunctionFor(*r, "GET", "/files/"), "");  // ... that is not empty
  EXPECT_EQ(FunctionFor(*r, "GET", ""), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "*"), "");
}

TEST(Router, LiteralBeatsParamBeatsWildcard) {
  auto r = Make({{"GET", "/users/me", "", "me"},
                 {"GET", "/users/{id}", "", "by-id"},
                 {"GET", "/users/{rest...}", "", "rest"}});
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/me"), "me");
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/you"), "by-id");
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/you/photos"), "rest");
  // Registration order does not matter.
  auto reversed = Make({{"GET", "/users/{rest...}", "", "rest"},
                        {"GET", "/users/{id}", "", "by-id"},
                        {"GET", "/users/me", "", "me"}});
  EXPECT_EQ(FunctionFor(*reversed, "GET", "/users/me"), "me");
  EXPECT_EQ(FunctionFor(*reversed, "GET", "/users/you"), "by-id");
}

TEST(Router, BacktracksWhenAMoreSpecificBranchFailsDeeper) {
  auto r = Make({{"GET", "/users/me/settings", "", "settings"},
                 {"GET", "/users/{id}/posts", "", "posts"},
                 {"GET", "/users/{rest...}", "", "rest"},
                 {"GET", "/{a}/{b}/c", "", "abc"}});
  // "me" takes the literal branch, which has no "posts": back up to {id}.
  std::optional<RouteMatch> m = r->Match("GET", "", "/users/me/posts");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "posts");
  EXPECT_THAT(m->params, ElementsAre(Pair("id", "me")));
  EXPECT_EQ(FunctionFor(*r, "GET", "/users/me/settings"), "settings");
  // Neither the literal nor the parameter branch goes on to "x": back up to the wildcard.
  m = r->Match("GET", "", "/users/me/x");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "rest");
  EXPECT_THAT(m->params, ElementsAre(Pair("rest", "me/x")));
  // From the root: the literal "users" branch fails, the {a} branch matches.
  m = r->Match("GET", "", "/users/9/c");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "rest");  // /users/{rest...} is more specific at the first segment
  m = r->Match("GET", "", "/other/9/c");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "abc");
  EXPECT_THAT(m->params, ElementsAre(Pair("a", "other"), Pair("b", "9")));
  // A failed branch leaves no captured values behind.
  auto clean = Make({{"GET", "/{a}/x/{b}", "", "one"}, {"GET", "/{c}/{d}/y", "", "two"}});
  m = clean->Match("GET", "", "/p/x/y");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "one");
  m = clean->Match("GET", "", "/p/q/y");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "two");
  EXPECT_THAT(m->params, ElementsAre(Pair("c", "p"), Pair("d", "q")));
}

TEST(Router, ExactMethodBeatsAnyAndAMissingMethodFallsBack) {
  auto r = Make({{"GET", "/items/{id}", "", "get-item"},
                 {"ANY", "/items/{id}", "", "any-item"},
                 {"POST", "/things/special", "", "special"},
                 {"GET", "/things/{id}", "", "thing"}});
  EXPECT_EQ(FunctionFor(*r, "GET", "/items/1"), "get-item");
  EXPECT_EQ(FunctionFor(*r, "DELETE", "/items/1"), "any-item");
  EXPECT_EQ(FunctionFor(*r, "BREW", "/items/1"), "any-item");
  EXPECT_EQ(FunctionFor(*r, "POST", "/things/special"), "special");
  // The literal branch has no GET route: fall back to the parameter.
  EXPECT_EQ(FunctionFor(*r, "GET", "/things/special"), "thing");
  EXPECT_EQ(FunctionFor(*r, "PUT", "/things/special"), "");
  // Methods are compared as sent: lower case reaches only ANY routes.
  EXPECT_EQ(FunctionFor(*r, "get", "/items/1"), "any-item");
  EXPECT_EQ(FunctionFor(*r, "get", "/things/1"), "");
}

TEST(Router, HostRoutesMatchTheirHostOnlyAndBeatHostlessOnes) {
  auto r = Make({{"GET", "/whoami", "api.example.com", "api"},
                 {"GET", "/whoami", "", "default"},
                 {"GET", "/only-api", "API.Example.com", "only"}});
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", "api.example.com"), "api");
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", "API.EXAMPLE.COM:8080"), "api");
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", "api.example.com."), "api");
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", "www.example.com"), "default");
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", ""), "default");
  EXPECT_EQ(FunctionFor(*r, "GET", "/only-api", "api.example.com:80"), "only");
  EXPECT_EQ(FunctionFor(*r, "GET", "/only-api", "other"), "");
  EXPECT_EQ(FunctionFor(*r, "GET", "/only-api", ""), "");
  // A host's trie that does not match falls back to the host-less routes.
  EXPECT_EQ(FunctionFor(*r, "GET", "/whoami", "api.example.com"), "api");
  auto fallback = Make({{"GET", "/a", "h.example", "host-a"}, {"GET", "/b", "", "any-b"}});
  EXPECT_EQ(FunctionFor(*fallback, "GET", "/b", "h.example"), "any-b");
  // IPv6 literal hosts keep their brackets; the port goes.
  auto v6 = Make({{"GET", "/x", "[::1]", "v6"}});
  EXPECT_EQ(FunctionFor(*v6, "GET", "/x", "[::1]:8080"), "v6");
  EXPECT_EQ(FunctionFor(*v6, "GET", "/x", "[::1]"), "v6");
}

TEST(Router, ParamsArePercentDecodedAfterSplitting) {
  auto r = Make({{"GET", "/users/{id}", "", "users"}, {"GET", "/files/{rest...}", "", "files"}});
  std::optional<RouteMatch> m = r->Match("GET", "", "/users/a%20b%2Fc");
  ASSERT_TRUE(m);
  EXPECT_THAT(m->params, ElementsAre(Pair("id", "a b/c")));
  EXPECT_EQ(m->path, "/users/a%20b%2Fc");  // the function sees the path as sent
  m = r->Match("GET", "", "/files/dir%20one/f%C3%A9.txt");
  ASSERT_TRUE(m);
  EXPECT_THAT(m->params, ElementsAre(Pair("rest", "dir one/f\xC3\xA9.txt")));
  // Literals are compared decoded.
  EXPECT_EQ(FunctionFor(*r, "GET", "/%75sers/7"), "users");
  // Invalid escapes match nothing.
  for (const char* bad : {"/users/%", "/users/%2", "/users/%zz", "/users/a%g1", "/files/a/%"}) {
    EXPECT_EQ(FunctionFor(*r, "GET", bad), "") << bad;
  }
  // Lower-case hex is fine.
  m = r->Match("GET", "", "/users/%2f");
  ASSERT_TRUE(m);
  EXPECT_THAT(m->params, ElementsAre(Pair("id", "/")));
}

TEST(Router, ValidationReportsEachProblemWithItsValue) {
  struct Case {
    RouteSpec route;
    const char* says;
  };
  std::vector<Case> cases = {
      {{"GET", "users/{id}", "", "f"}, "path \"users/{id}\": must start with '/'"},
      {{"GET", "", "", "f"}, "must start with '/'"},
      {{"GET", "/a//b", "", "f"}, "segment 2 is empty"},
      {{"GET", "/a/", "", "f"}, "segment 2 is empty"},
      {{"GET", "/{Id}", "", "f"}, "parameter name \"Id\" must match [a-z_][a-z0-9_]*"},
      {{"GET", "/{1d}", "", "f"}, "parameter name \"1d\""},
      {{"GET", "/{}", "", "f"}, "parameter name \"\""},
      {{"GET", "/{a-b}", "", "f"}, "parameter name \"a-b\""},
      {{"GET", "/{id}/x/{id}", "", "f"}, "parameter \"id\" appears more than once"},
      {{"GET", "/{id}/{id...}", "", "f"}, "parameter \"id\" appears more than once"},
      {{"GET", "/{rest...}/x", "", "f"}, "wildcard must be the last segment"},
      {{"GET", "/user-{id}", "", "f"}, "a parameter must be a whole segment"},
      {{"GET", "/a{", "", "f"}, "a parameter must be a whole segment"},
      {{"GET", "/a b", "", "f"}, "a literal may contain only"},
      {{"GET", "/a%20b", "", "f"}, "a literal may contain only"},
      {{"GET", "/a/../b", "", "f"}, "dot segments are not allowed"},
      {{"GET", "/" + std::string(2000, 'a'), "", "f"}, "longer than 1024 bytes"},
      {{"FETCH", "/a", "", "f"}, "method \"FETCH\": must be one of GET, HEAD, POST, PUT, PATCH"},
      {{"", "/a", "", "f"}, "method \"\""},
      {{"GET", "/a", "", "Bad_Name"}, "function name \"Bad_Name\" must match"},
      {{"GET", "/a", "", ""}, "function name \"\""},
      {{"GET", "/a", "example.com:8080", "f"},
       "host \"example.com:8080\": must be a host name "
       "without a port"},
      {{"GET", "/a", "exa mple", "f"}, "host \"exa mple\": may contain only"},
      {{"GET", "/a", "[zz]", "f"}, "bracketed IPv6"},
      {{"GET", "/a", ".", "f"}, "host \".\": has an empty label"},
      {{"GET", "/a", "a..b", "f"}, "has an empty label"},
  };
  std::string deep;
  for (int i = 0; i < 33; ++i) {
    deep += "/s";
  }
  cases.push_back({{"GET", deep, "", "f"}, "has 33 segments, more than 32"});
  for (const Case& c : cases) {
    EXPECT_THAT(InvalidMessage(c.route), HasSubstr(c.says)) << DescribeRoute(c.route);
    RouterBuilder b;
    EXPECT_EQ(b.Add(c.route).code(), StatusCode::kInvalidArgument) << DescribeRoute(c.route);
    EXPECT_EQ(b.Size(), 0u);
  }
}

TEST(Router, ValidationReportsAllProblemsAtOnce) {
  std::string msg = InvalidMessage({"FETCH", "nope", "a:1", "Bad"});
  EXPECT_THAT(msg, HasSubstr("method \"FETCH\""));
  EXPECT_THAT(msg, HasSubstr("path \"nope\""));
  EXPECT_THAT(msg, HasSubstr("host \"a:1\""));
  EXPECT_THAT(msg, HasSubstr("function name \"Bad\""));
}

TEST(Router, NormalizesMethodAndHost) {
  RouterBuilder b;
  ASSERT_TRUE(b.Add({"get", "/a", "API.Example.COM", "f"}).ok());
  auto r = std::move(b).Build();
  ASSERT_EQ(r->Routes().size(), 1u);
  EXPECT_EQ(r->Routes()[0].method, "GET");
  EXPECT_EQ(r->Routes()[0].host, "api.example.com");
  EXPECT_EQ(FunctionFor(*r, "GET", "/a", "api.example.com"), "f");
}

TEST(Router, SameShapeIsAConflictWhateverTheParamNames) {
  std::vector<RouteSpec> existing = {{"GET", "/users/{id}", "", "users"},
                                     {"ANY", "/files/{rest...}", "", "files"},
                                     {"GET", "/a/b", "h.example", "hosted"}};
  struct Case {
    RouteSpec route;
    const char* names;
  };
  for (const Case& c : {Case{{"GET", "/users/{uid}", "", "other"}, "GET /users/{id} -> users"},
                        Case{{"get", "/users/{id}", "", "other"}, "GET /users/{id} -> users"},
                        Case{{"ANY", "/files/{path...}", "", "other"}, "ANY /files/{rest...}"},
                        Case{{"GET", "/a/b", "H.example", "other"}, "GET h.example/a/b"}}) {
    Status s = AddError(existing, c.route);
    EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << DescribeRoute(c.route);
    EXPECT_THAT(s.message(), HasSubstr(c.names));
    EXPECT_THAT(s.message(), HasSubstr("conflicts with route"));
  }
  // Different method, host, literal, or kind of segment: no conflict.
  for (const RouteSpec& ok : std::vector<RouteSpec>{{"POST", "/users/{uid}", "", "other"},
                                                    {"ANY", "/users/{uid}", "", "other"},
                                                    {"GET", "/users/{id}", "h.example", "other"},
                                                    {"GET", "/users/me", "", "other"},
                                                    {"GET", "/users/{rest...}", "", "other"},
                                                    {"GET", "/users/{id}/x", "", "other"},
                                                    {"GET", "/a/b", "", "other"}}) {
    EXPECT_TRUE(AddError(existing, ok).ok()) << DescribeRoute(ok);
  }
}

TEST(Router, BuiltInPathsAreReserved) {
  for (const char* path :
       {"/function/x", "/function/{name}", "/function", "/healthz", "/readyz", "/metrics",
        "/metrics/{rest...}", "/async-function/x", "/invocations/{id}"}) {
    Status s = AddError({}, {"GET", path, "", "f"});
    EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << path;
    EXPECT_THAT(s.message(), HasSubstr("conflicts with the built-in route")) << path;
    EXPECT_THAT(s.message(), HasSubstr("is reserved by faasd")) << path;
  }
  EXPECT_THAT(AddError({}, {"GET", "/function/x", "", "f"}).message(),
              HasSubstr("ANY /function/{name}[/{rest}]"));
  // Paths that only look alike are fine.
  for (const char* path : {"/functions/x", "/{name}/x", "/Function/x", "/api/function/x"}) {
    EXPECT_TRUE(AddError({}, {"GET", path, "", "f"}).ok()) << path;
  }
}

TEST(Router, AFailedAddLeavesTheBuilderUnchanged) {
  RouterBuilder b;
  ASSERT_TRUE(b.Add({"GET", "/a/{x}", "", "one"}).ok());
  EXPECT_FALSE(b.Add({"GET", "/a/{y}", "", "two"}).ok());
  EXPECT_FALSE(b.Add({"GET", "bad", "", "two"}).ok());
  EXPECT_EQ(b.Size(), 1u);
  auto r = std::move(b).Build();
  EXPECT_EQ(FunctionFor(*r, "GET", "/a/1"), "one");
  EXPECT_EQ(r->Routes().size(), 1u);
}

TEST(Router, TenThousandRoutesStillMatchAndLookupsStayShallow) {
  RouterBuilder b;
  for (int i = 0; i < 10'000; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(b.Add({"GET", "/tenant" + n + "/items/{id}", "", "fn" + n}).ok()) << i;
  }
  ASSERT_TRUE(b.Add({"ANY", "/{rest...}", "", "catch-all"}).ok());
  auto r = std::move(b).Build();
  ASSERT_EQ(r->Routes().size(), 10'001u);
  // Shared prefixes: one root, one node per tenant literal, one per "items" and one per {id}.
  EXPECT_EQ(r->NodeCount(), 1u + 3u * 10'000u);

  for (int i : {0, 1, 4'999, 9'999}) {
    std::string n = std::to_string(i);
    std::size_t visited = 0;
    std::optional<RouteMatch> m = r->Match("GET", "", "/tenant" + n + "/items/abc", &visited);
    ASSERT_TRUE(m) << i;
    EXPECT_EQ(m->function, "fn" + n);
    EXPECT_THAT(m->params, ElementsAre(Pair("id", "abc")));
    // A trie walk: root, tenant, items, {id}; never a scan over the 10,000 routes.
    EXPECT_EQ(visited, 4u) << i;
  }
  std::size_t visited = 0;
  std::optional<RouteMatch> m = r->Match("GET", "", "/tenant10000/items/abc", &visited);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "catch-all");
  EXPECT_EQ(visited, 1u);
  m = r->Match("POST", "", "/tenant7/items/abc", &visited);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->function, "catch-all");  // no POST route below: backtracked to the root wildcard
  EXPECT_LE(visited, 4u);
}

TEST(Router, EmptyRouterMatchesNothing) {
  auto r = RouterBuilder().Build();
  EXPECT_FALSE(r->Match("GET", "", "/"));
  EXPECT_EQ(r->NodeCount(), 1u);
}

}  // namespace
}  // namespace faas::gateway
