// The list replies as JSON (`faasctl list -o json` and the like): one key, an array of the
// element renderers' output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/cli/render.h"

namespace faas::cli {
namespace {

TEST(ListRepliesToJson, WrapEachElementUnderOneKey) {
  faas::v1::ListFunctionsReply functions;
  functions.add_functions()->set_name("hello");
  functions.add_functions()->set_name("resize");
  nlohmann::json j = ListFunctionsReplyToJson(functions);
  ASSERT_EQ(j["functions"].size(), 2u);
  EXPECT_EQ(j["functions"][0], FunctionInfoToJson(functions.functions(0)));
  EXPECT_EQ(j["functions"][1]["name"], "resize");

  faas::v1::ListRoutesReply routes;
  routes.add_routes()->set_path("/users/{id}");
  EXPECT_EQ(ListRoutesReplyToJson(routes),
            (nlohmann::json{{"routes", {RouteToJson(routes.routes(0))}}}));
}

TEST(ListRepliesToJson, EmptyListIsAnEmptyArray) {
  EXPECT_EQ(ListKeysReplyToJson({}).dump(), R"({"keys":[]})");
  EXPECT_EQ(ListTriggersReplyToJson({}).dump(), R"({"triggers":[]})");
  EXPECT_EQ(ListVersionsReplyToJson({}).dump(), R"({"versions":[]})");
  EXPECT_EQ(ListInvocationsReplyToJson({}).dump(), R"({"invocations":[]})");
}

}  // namespace
}  // namespace faas::cli
