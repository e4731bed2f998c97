// Registry routes: stored, listed, deleted, and kept across a reopen and a function delete; on
// both backends (backend_fixture.h).
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/store/registry.h"

#include "integration/registry/backend_fixture.h"

namespace faas::store {
namespace {

using ::testing::HasSubstr;

class RoutesTest : public testing::RegistryBackendTest {
 protected:
  std::vector<Route> List() {
    Result<std::vector<Route>> routes = reg_->ListRoutes();
    EXPECT_TRUE(routes.ok()) << routes.status().ToString();
    return routes.ok() ? *routes : std::vector<Route>{};
  }
};

TEST_P(RoutesTest, AddListDeleteAndSurviveAReopen) {
  EXPECT_TRUE(List().empty());
  Result<Route> a = reg_->AddRoute({"GET", "/users/{id}", "", "users", 0});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_GT(a->created_unix_ms, 0);
  ASSERT_TRUE(reg_->AddRoute({"ANY", "/files/{rest...}", "", "files", 0}).ok());
  ASSERT_TRUE(reg_->AddRoute({"GET", "/users/{id}", "api.example.com", "api", 0}).ok());
  ASSERT_TRUE(reg_->AddRoute({"POST", "/users/{id}", "", "users", 0}).ok());

  Reopen();
  std::vector<Route> routes = List();
  ASSERT_EQ(routes.size(), 4u);
  // Sorted by path, method, host.
  EXPECT_EQ(routes[0].path, "/files/{rest...}");
  EXPECT_EQ(routes[1].method, "GET");
  EXPECT_EQ(routes[1].host, "");
  EXPECT_EQ(routes[1].function, "users");
  EXPECT_EQ(routes[2].host, "api.example.com");
  EXPECT_EQ(routes[2].function, "api");
  EXPECT_EQ(routes[3].method, "POST");

  ASSERT_TRUE(reg_->DeleteRoute("GET", "/users/{id}", "api.example.com").ok());
  Status again = reg_->DeleteRoute("GET", "/users/{id}", "api.example.com");
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  EXPECT_THAT(again.message(), HasSubstr("no route GET \"/users/{id}\" for host"));
  EXPECT_EQ(reg_->DeleteRoute("GET", "/users/{other}", "").code(), StatusCode::kNotFound);
  EXPECT_EQ(List().size(), 3u);
}

TEST_P(RoutesTest, SameKeyIsAlreadyExistsAndBadInputIsInvalid) {
  ASSERT_TRUE(reg_->AddRoute({"GET", "/a", "", "one", 0}).ok());
  Result<Route> dup = reg_->AddRoute({"GET", "/a", "", "two", 0});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.status().message(), HasSubstr("\"one\""));
  Result<Route> bad = reg_->AddRoute({"", "", "", "Bad", 0});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("method must not be empty"));
  EXPECT_THAT(bad.status().message(), HasSubstr("path must not be empty"));
  EXPECT_THAT(bad.status().message(), HasSubstr("\"Bad\""));
  EXPECT_EQ(List().size(), 1u);
}

TEST_P(RoutesTest, DeletingAFunctionKeepsItsRoutes) {
  std::string sha;
  {
    Result<std::string> put = reg_->PutArtifact("not really a library");
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    sha = *put;
  }
  ASSERT_TRUE(reg_->CreateVersion("users", sha, FunctionConfig{}).ok());
  ASSERT_TRUE(reg_->AddRoute({"GET", "/users/{id}", "", "users", 0}).ok());
  ASSERT_TRUE(reg_->Delete("users").ok());
  std::vector<Route> routes = List();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].function, "users");
}

FAAS_REGISTRY_BACKENDS(RoutesTest);

}  // namespace
}  // namespace faas::store
