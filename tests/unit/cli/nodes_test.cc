// faasctl node list|drain and `nodes`: parsing, the table and the JSON.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/cli/command.h"
#include "faas/cli/render.h"

#include "parse_fixture.h"

namespace faas::cli {
namespace {

class NodesParseTest : public ParseFixture {};

TEST_F(NodesParseTest, NodeListNodesAndDrain) {
  ParseAs<NodeListCommand>({"node", "list"});
  ParseAs<NodeListCommand>({"nodes", "-o", "json"});
  EXPECT_EQ(last_global_.output, OutputFormat::kJson);
  EXPECT_EQ(ParseAs<NodeDrainCommand>({"node", "drain", "node-2"}).id, "node-2");
}

TEST_F(NodesParseTest, DrainNeedsAnId) {
  EXPECT_NE(ErrorOf({"node", "drain"}), "");
  EXPECT_NE(ErrorOf({"node", "drain", ""}), "");
  EXPECT_NE(ErrorOf({"node"}), "");
}

faas::v1::ClusterNode Node(const std::string& id, const std::string& state, double load) {
  faas::v1::ClusterNode n;
  n.set_id(id);
  n.set_address("10.0.0.2:9100");
  n.set_http_address("10.0.0.2:8080");
  n.set_capacity(4);
  n.set_state(state);
  n.set_epoch(3);
  n.set_load(load);
  n.set_heartbeat_age_ms(420);
  n.set_registered_unix_ms(1714564800000);
  return n;
}

TEST(RenderNodes, TableShowsStateEpochLoadAndHeartbeatAge) {
  faas::v1::ListNodesReply reply;
  *reply.add_nodes() = Node("n1", "up", 0.25);
  *reply.add_nodes() = Node("n2", "draining", -1);
  EXPECT_EQ(RenderNodesTable(reply),
            "ID  STATE     EPOCH  LOAD  CAPACITY  HEARTBEAT  INSTANCES  WARM  ADDRESS        HTTP\n"
            "n1  up        3      0.25  4         0.4s ago   -          -     10.0.0.2:9100  "
            "10.0.0.2:8080\n"
            "n2  draining  3      -     4         0.4s ago   -          -     10.0.0.2:9100  "
            "10.0.0.2:8080\n");
}

TEST(RenderNodes, TableAndJsonShowWhatTheNodeSaidItRuns) {
  faas::v1::ListNodesReply reply;
  faas::v1::ClusterNode& n = *reply.add_nodes() = Node("n1", "up", 0.5);
  n.set_stats_known(true);
  n.set_instances_idle(3);
  n.set_instances_busy(1);
  faas::v1::ClusterNodeFunction* f = n.add_functions();
  f->set_function("hello");
  f->set_idle(2);
  f = n.add_functions();
  f->set_function("echo");
  f->set_idle(1);
  f->set_busy(1);
  *reply.add_nodes() = Node("n2", "up", 0);
  reply.mutable_nodes(1)->set_stats_known(true);  // answered: nothing runs there
  EXPECT_EQ(RenderNodesTable(reply),
            "ID  STATE  EPOCH  LOAD  CAPACITY  HEARTBEAT  INSTANCES       WARM        ADDRESS    "
            "    HTTP\n"
            "n1  up     3      0.50  4         0.4s ago   3 idle, 1 busy  hello,echo  "
            "10.0.0.2:9100  10.0.0.2:8080\n"
            "n2  up     3      0.00  4         0.4s ago   0 idle, 0 busy  -           "
            "10.0.0.2:9100  10.0.0.2:8080\n");
  nlohmann::json j = ListNodesReplyToJson(reply);
  EXPECT_EQ(j["nodes"][0]["instances"], nlohmann::json({{"idle", 3}, {"busy", 1}}));
  EXPECT_EQ(j["nodes"][0]["functions"],
            nlohmann::json::parse(R"([{"function":"hello","idle":2,"busy":0},)"
                                  R"({"function":"echo","idle":1,"busy":1}])"));
  EXPECT_EQ(j["nodes"][1]["functions"], nlohmann::json::array());
}

TEST(RenderNodes, JsonHasEveryFieldAndNullForAnUnknownLoad) {
  faas::v1::ListNodesReply reply;
  *reply.add_nodes() = Node("n1", "up", 0.25);
  *reply.add_nodes() = Node("n2", "dead", -1);
  nlohmann::json j = ListNodesReplyToJson(reply);
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0], nlohmann::json({{"id", "n1"},
                                           {"address", "10.0.0.2:9100"},
                                           {"http_address", "10.0.0.2:8080"},
                                           {"capacity", 4.0},
                                           {"state", "up"},
                                           {"epoch", 3},
                                           {"load", 0.25},
                                           {"heartbeat_age_ms", 420},
                                           {"registered_unix_ms", 1714564800000},
                                           {"instances", nullptr},
                                           {"functions", nullptr}}));
  EXPECT_TRUE(j["nodes"][1]["load"].is_null());
  EXPECT_EQ(ListNodesReplyToJson({}).dump(), R"({"nodes":[]})");
}

}  // namespace
}  // namespace faas::cli
