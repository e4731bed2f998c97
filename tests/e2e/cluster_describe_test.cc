// End-to-end: `faasctl describe` through a cluster gateway shows the instances that run on its
// nodes (summed over the nodes that are up, NodeService.Stats), and a node answers Stats only to
// callers with the nodes' secret. One gateway, two nodes, real PostgreSQL.
#include <functional>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/v1/node.grpc.pb.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

TEST(ClusterDescribe, AGatewayShowsTheNodesInstancesAndNodesRefuseStrangers) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  const std::string store = pg.Url("faas");
  FaasdProcess n1, n2, gw;
  ASSERT_TRUE(n1.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1.Logs();
  ASSERT_TRUE(n2.Start({"--role", "node", "--store", store, "--node-id", "n2"})) << n2.Logs();
  ASSERT_TRUE(gw.Start({"--role", "gateway", "--store", store, "--nodes",
                        n1.NodesEntry("n1") + "," + n2.NodesEntry("n2")}))
      << gw.Logs();
  auto logs = [&] { return gw.Logs() + n1.Logs() + n2.Logs(); };
  CommandResult r = gw.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << logs();
  for (int i = 0; i < 3; ++i) {
    HttpResult h = HttpRequest(gw.http_port(), "GET", "/function/hello");
    ASSERT_EQ(h.status, 200) << h.body << logs();
  }
  // The warm instance that served them stays idle on its node; the gateway counts it, and the
  // three calls.
  CommandResult described = gw.Ctl({"describe", "hello", "-o", "json"});
  ASSERT_EQ(described.exit_code, 0) << described.out << described.err;
  auto j = nlohmann::json::parse(described.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << described.out;
  const std::string text = j.dump();
  auto find_number = [&](const std::string& key) -> int64_t {
    // describe's JSON nests the function's info; look the key up wherever it is.
    int64_t value = -1;
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& node) {
      if (node.is_object()) {
        for (const auto& [k, v] : node.items()) {
          if (k == key && v.is_number()) {
            value = v.get<int64_t>();
          }
          walk(v);
        }
      } else if (node.is_array()) {
        for (const auto& v : node) {
          walk(v);
        }
      }
    };
    walk(j);
    return value;
  };
  EXPECT_GE(find_number("instances_idle"), 1) << text;
  EXPECT_EQ(find_number("instances_busy"), 0) << text;
  EXPECT_GE(find_number("invocations"), 3) << text;

  // Straight to a node, without the secret or with a wrong one: refused before anything is read.
  auto stub = v1::NodeService::NewStub(
      grpc::CreateChannel(n1.grpc_addr(), grpc::InsecureChannelCredentials()));
  for (const std::string& bearer : {std::string(), std::string("Bearer not-the-secret")}) {
    grpc::ClientContext ctx;
    if (!bearer.empty()) {
      ctx.AddMetadata("authorization", bearer);
    }
    v1::NodeFunctionName req;
    v1::NodeStatsReply reply;
    grpc::Status st = stub->Stats(&ctx, req, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
    EXPECT_EQ(reply.functions_size(), 0);
  }
}

}  // namespace
}  // namespace faas::testing
