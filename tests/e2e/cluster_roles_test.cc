// End-to-end: faasd's cluster roles (issue #16 item 1; docs/design/0018-node-protocol.md). One
// gateway and two nodes on loopback share a registry in a real PostgreSQL; functions are deployed
// through the gateway's control API and invoked over its HTTP, which streams each call to a node
// over gRPC. A node killed with SIGKILL loses only the call it was running (502 node_lost); later
// calls go to the other node.
#include <signal.h>
#include <sys/stat.h>

#include <future>
#include <set>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/store/config.h"
#include "faas/store/hash.h"
#include "faas/store/nodes.h"
#include "faas/store/registry.h"
#include "faas/v1/node.grpc.pb.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

class ClusterRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    store_ = pg_.Url("faas");
    ASSERT_TRUE(n1_.Start({"--role", "node", "--store", store_, "--node-id", "n1"})) << n1_.Logs();
    ASSERT_TRUE(n2_.Start({"--role", "node", "--store", store_, "--node-id", "n2"})) << n2_.Logs();
    ASSERT_TRUE(gw_.Start({"--role", "gateway", "--store", store_, "--nodes",
                           n1_.NodesEntry("n1") + "," + n2_.NodesEntry("n2")}))
        << gw_.Logs();
  }

  void Deploy(const std::string& name, const std::string& lib) {
    CommandResult r = gw_.Ctl({"deploy", name, lib});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << gw_.Logs() << n1_.Logs() << n2_.Logs();
  }

  std::string AllLogs() { return gw_.Logs() + n1_.Logs() + n2_.Logs(); }

  PostgresProcess pg_;
  std::string store_;
  FaasdProcess n1_, n2_, gw_;
};

TEST_F(ClusterRolesTest, GatewayServesFunctionsDeployedAfterTheNodesStarted) {
  Deploy("hello", FunctionLib("hello"));
  // The deploy's probe ran as Prepare on the node the balancer picks for hello@1, which adopted
  // that zygote when the version was created; the first call lands there.
  const std::string gw_logs = gw_.Logs();
  const bool on_n1 = gw_logs.find("node.prepared fn=hello version=1 node=n1") != std::string::npos;
  const bool on_n2 = gw_logs.find("node.prepared fn=hello version=1 node=n2") != std::string::npos;
  ASSERT_NE(on_n1, on_n2) << AllLogs();
  HttpResult first = HttpRequest(gw_.http_port(), "GET", "/function/hello");
  ASSERT_EQ(first.status, 200) << first.body << AllLogs();
  EXPECT_EQ(first.Header("x-faas-node"), on_n1 ? "n1" : "n2");
  std::set<std::string> nodes;
  for (int i = 0; i < 4; ++i) {
    HttpResult r = HttpRequest(gw_.http_port(), "GET", "/function/hello");
    ASSERT_EQ(r.status, 200) << r.body << AllLogs();
    EXPECT_FALSE(r.Header("x-invocation-id").empty());
    nodes.insert(r.Header("x-faas-node"));
  }
  for (const std::string& n : nodes) {
    EXPECT_TRUE(n == "n1" || n == "n2") << n;
  }
  // The node answers health with its load, and serves no function routes itself.
  EXPECT_GE(ReadyLoad(n1_.http_port()), 0.0);
  ExpectError(HttpRequest(n1_.http_port(), "GET", "/function/hello"), 404, "route_not_found");
}

// A deploy through a gateway reaches every node that is up, not only the one that probed it
// (docs/design/0030, "Rollout"): the gateway pushes the new version to the others, each of
// which fetches and verifies the library, loads the version and starts its zygote, so no node's
// first call fetches or loads anything. Observed without any call: a node's NOTIFY prefetch
// only fetches the library, so "version_loaded" and a zygote on both nodes come from the push.
// The library travels with each node's Prepare (docs/design/0033): every node caches the bytes
// it was sent ("artifact.received") and none reads them back from the store ("artifact.fetched").
TEST_F(ClusterRolesTest, ADeployIsPreparedOnEveryNodeBeforeAnyCall) {
  // Both nodes are up from the start (static --nodes: up until a call to one fails).
  Deploy("hello", FunctionLib("hello"));
  const std::string sha = store::Sha256Hex(ReadFileOrEmpty(FunctionLib("hello")));
  for (FaasdProcess* n : {&n1_, &n2_}) {
    EXPECT_TRUE(PollUntil([&] {
      const std::string logs = n->Logs();
      return logs.find("node.version_loaded fn=hello version=1") != std::string::npos &&
             logs.find("zygote.started fn=hello version=1") != std::string::npos;
    })) << AllLogs();
    const std::string logs = n->Logs();
    EXPECT_NE(logs.find("artifact.received sha256=" + sha), std::string::npos) << logs;
    EXPECT_EQ(logs.find("artifact.fetched sha256=" + sha), std::string::npos) << logs;
  }
  EXPECT_TRUE(PollUntil([&] {
    return gw_.Logs().find("node.pushed fn=hello version=1") != std::string::npos;
  })) << gw_.Logs();
}

// A node checks the library a Prepare carries against the digest it names: bytes that do not
// match are refused before anything is written or loaded, and bytes that match start the
// zygote although the store has never held them (so nothing was fetched). Sent to n1 directly,
// as a gateway would (with the nodes' secret).
TEST_F(ClusterRolesTest, ANodePreparesFromTheBytesSentAndRefusesBytesThatDoNotMatch) {
  auto nodes = store::OpenNodeRegistry(store_);
  ASSERT_TRUE(nodes.ok()) << nodes.status().message();
  auto secret = (*nodes)->NodeSecret();
  ASSERT_TRUE(secret.ok()) << secret.status().message();
  TempDir reg_dir;
  auto reg = store::OpenRegistry(store_, reg_dir.path());
  ASSERT_TRUE(reg.ok()) << reg.status().message();
  auto uid = (*reg)->ReserveUid("sent");
  ASSERT_TRUE(uid.ok()) << uid.status().message();

  // hello with bytes appended (the loader ignores them): a digest no store or cache holds.
  const std::string lib = ReadFileOrEmpty(FunctionLib("hello")) + "never stored";
  const std::string sha = store::Sha256Hex(lib);
  auto stub = v1::NodeService::NewStub(
      grpc::CreateChannel(n1_.grpc_addr(), grpc::InsecureChannelCredentials()));
  auto prepare = [&](const std::string& bytes) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + *secret);
    v1::NodePrepareRequest req;
    req.mutable_version()->set_function("sent");
    req.mutable_version()->set_version(1);
    req.mutable_version()->set_artifact_sha256(sha);
    req.mutable_version()->set_config_json(store::ConfigToJson(store::FunctionConfig{}));
    req.mutable_version()->set_uid(*uid);
    req.set_library(bytes);
    v1::NodePrepareReply reply;
    grpc::Status st = stub->Prepare(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return reply;
  };
  std::string flipped = lib;
  flipped[flipped.size() / 2] ^= 0x01;
  v1::NodePrepareReply refused = prepare(flipped);
  EXPECT_EQ(refused.code(), static_cast<int32_t>(StatusCode::kInternal)) << refused.message();
  EXPECT_NE(refused.message().find("artifact " + sha + " is corrupt: the bytes given hash to " +
                                   store::Sha256Hex(flipped)),
            std::string::npos)
      << refused.message();
  EXPECT_EQ(refused.took_ns(), 0);  // no zygote was started
  struct stat st {};
  const std::string cached = n1_.data_dir() + "/artifact-cache/" + sha + ".so";
  EXPECT_NE(::stat(cached.c_str(), &st), 0) << cached << " exists";

  v1::NodePrepareReply prepared = prepare(lib);
  EXPECT_EQ(prepared.code(), 0) << prepared.message() << n1_.Logs();
  EXPECT_EQ(ReadFileOrEmpty(cached), lib);
  const std::string logs = n1_.Logs();
  EXPECT_GT(prepared.took_ns(), 0);  // the zygote's start
  EXPECT_NE(logs.find("artifact.received sha256=" + sha), std::string::npos) << logs;
  EXPECT_EQ(logs.find("artifact.fetched sha256=" + sha), std::string::npos) << logs;

  grpc::ClientContext drop_ctx;
  drop_ctx.AddMetadata("authorization", "Bearer " + *secret);
  v1::NodeFunctionName name;
  name.set_name("sent");
  v1::NodeEmpty empty;
  EXPECT_TRUE(stub->DropPrepared(&drop_ctx, name, &empty).ok());
}

// A library that fails to start fails its deploy as before, although the other nodes began to
// prepare it beside the probe; what they prepared is dropped, and a good deploy of the name is
// version 1 and reaches both nodes.
TEST_F(ClusterRolesTest, AFailedDeployLeavesNoVersionAndTheNextIsPushedEverywhere) {
  CommandResult failed = gw_.Ctl({"deploy", "late", TestdataLib("initfail")});
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE((failed.out + failed.err).find("faas_init returned 7"), std::string::npos)
      << failed.out << failed.err;
  Deploy("late", FunctionLib("hello"));
  for (FaasdProcess* n : {&n1_, &n2_}) {
    EXPECT_TRUE(PollUntil([&] {
      return n->Logs().find("node.version_loaded fn=late version=1") != std::string::npos;
    })) << AllLogs();
  }
  HttpResult r = HttpRequest(gw_.http_port(), "GET", "/function/late");
  EXPECT_EQ(r.status, 200) << r.body << AllLogs();
}

// A node's gRPC port serves only its cluster's gateways: a caller without the nodes' secret
// (kept in the shared store) can neither invoke a function, naming any tenant it likes, nor
// remove or prepare one.
TEST_F(ClusterRolesTest, ANodeRefusesCallersWithoutTheNodesSecret) {
  Deploy("hello", FunctionLib("hello"));
  auto channel = grpc::CreateChannel(n1_.grpc_addr(), grpc::InsecureChannelCredentials());
  auto stub = v1::NodeService::NewStub(channel);
  for (const std::string& bearer : {std::string(), std::string("Bearer not-the-secret")}) {
    grpc::ClientContext ctx;
    if (!bearer.empty()) {
      ctx.AddMetadata("authorization", bearer);
    }
    auto stream = stub->Invoke(&ctx);
    v1::NodeInvokeFrame frame;
    frame.mutable_head()->set_function("hello");
    frame.mutable_head()->set_version(1);
    frame.mutable_head()->set_invocation_id("forged-call");
    frame.mutable_head()->set_tenant("someone-else");
    stream->Write(frame);
    stream->WritesDone();
    v1::NodeInvokeReply reply;
    EXPECT_FALSE(stream->Read(&reply)) << reply.DebugString();
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();

    grpc::ClientContext remove_ctx;
    if (!bearer.empty()) {
      remove_ctx.AddMetadata("authorization", bearer);
    }
    v1::NodeFunctionName name;
    name.set_name("hello");
    v1::NodeEmpty empty;
    st = stub->Remove(&remove_ctx, name, &empty);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();

    grpc::ClientContext prepare_ctx;
    if (!bearer.empty()) {
      prepare_ctx.AddMetadata("authorization", bearer);
    }
    v1::NodePrepareRequest prepare;
    v1::NodePrepareReply prepared;
    st = stub->Prepare(&prepare_ctx, prepare, &prepared);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  }
  // Nothing ran, nothing was removed: the node's ledger has no forged call, and the gateway's
  // calls are served as before.
  EXPECT_EQ(n1_.Logs().find("forged-call"), std::string::npos) << n1_.Logs();
  for (int i = 0; i < 4; ++i) {
    HttpResult r = HttpRequest(gw_.http_port(), "GET", "/function/hello");
    ASSERT_EQ(r.status, 200) << r.body << AllLogs();
  }
}

TEST_F(ClusterRolesTest, LargeBodiesRoundTripThroughTheStream) {
  Deploy("echo", FunctionLib("echo"));
  std::string body(5u << 20, 'a');
  body.replace(body.size() - 16, 16, "END-MARKER-12345");
  HttpResult r = HttpRequest(gw_.http_port(), "POST", "/function/echo", body);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300) << AllLogs();
  EXPECT_GT(r.body.size(), body.size());
  EXPECT_NE(r.body.find("aaaaEND-MARKER-12345"), std::string::npos);
  EXPECT_FALSE(r.Header("x-faas-node").empty());
}

// A request body of one chunk goes whole in InvokeSmall; one byte more goes as a stream
// (design/0018). Both come back whole, with their last bytes where they were sent.
TEST_F(ClusterRolesTest, BodiesAtTheChunkSizeAndOneByteOverBothRoundTrip) {
  Deploy("echo", FunctionLib("echo"));
  for (std::size_t size : {std::size_t{64} << 10, (std::size_t{64} << 10) + 1}) {
    std::string body(size, 'b');
    body.replace(body.size() - 16, 16, "END-MARKER-67890");
    HttpResult r = HttpRequest(gw_.http_port(), "POST", "/function/echo", body);
    ASSERT_EQ(r.status, 200) << size << ": " << r.body.substr(0, 300) << AllLogs();
    EXPECT_NE(r.body.find(body), std::string::npos) << size;
  }
}

TEST_F(ClusterRolesTest, AKilledNodeLosesOnlyItsCallAndTheOtherServes) {
  Deploy("sleep", FunctionLib("sleep"));
  Deploy("hello", FunctionLib("hello"));
  auto slow = std::async(std::launch::async, [this] {
    return HttpRequest(gw_.http_port(), "GET", "/function/sleep?ms=20000", "", {},
                       std::chrono::seconds(60));
  });
  // Which node runs it: the one whose /readyz load rises.
  FaasdProcess* busy = nullptr;
  std::string busy_id;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (busy == nullptr && std::chrono::steady_clock::now() < deadline) {
    if (ReadyLoad(n1_.http_port()) > 0) {
      busy = &n1_;
      busy_id = "n1";
    } else if (ReadyLoad(n2_.http_port()) > 0) {
      busy = &n2_;
      busy_id = "n2";
    }
  }
  ASSERT_NE(busy, nullptr) << AllLogs();
  busy->Kill9();
  HttpResult lost = slow.get();
  ExpectError(lost, 502, "node_lost");
  auto j = nlohmann::json::parse(lost.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << lost.body;
  EXPECT_EQ(j["error"]["node"], busy_id) << lost.body;
  EXPECT_EQ(lost.Header("x-faas-node"), busy_id);
  // The lost node could not record the call; the gateway did: node_lost, nothing billed.
  CommandResult rows = gw_.Ctl({"invocations", "sleep", "-o", "json"});
  ASSERT_EQ(rows.exit_code, 0) << rows.err;
  EXPECT_NE(rows.out.find("node_lost"), std::string::npos) << rows.out;
  EXPECT_NE(rows.out.find(lost.Header("x-invocation-id")), std::string::npos) << rows.out;
  // And counted it in its /metrics, where the FaasPlatformErrors alert and the dashboard's
  // outcome panel look (infra/observability): the lost node's own count died with it.
  HttpResult metrics = HttpRequest(gw_.http_port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.body;
  EXPECT_NE(
      metrics.body.find("faas_invocations_total{function=\"sleep\",outcome=\"node_lost\"} 1\n"),
      std::string::npos)
      << metrics.body;

  const std::string other = busy_id == "n1" ? "n2" : "n1";
  for (int i = 0; i < 4; ++i) {
    HttpResult r = HttpRequest(gw_.http_port(), "GET", "/function/hello");
    EXPECT_EQ(r.status, 200) << r.body << gw_.Logs();
    EXPECT_EQ(r.Header("x-faas-node"), other);
  }
}

TEST_F(ClusterRolesTest, ACallNotDeliveredGoesToTheNextNode) {
  Deploy("sleep", FunctionLib("sleep"));
  Deploy("hello", FunctionLib("hello"));
  // A second gateway (it reads the functions at start) whose first node refuses connections.
  FaasdProcess gw2;
  ASSERT_TRUE(gw2.Start({"--role", "gateway", "--store", store_, "--nodes",
                         "dead=127.0.0.1:1@127.0.0.1:1," + n1_.NodesEntry("n1")}))
      << gw2.Logs();
  // While n1 has a call in flight, a picker that spreads load prefers the idle "dead" node;
  // one of the two calls meets the refusal, and both must be served by n1.
  auto slow = std::async(std::launch::async, [&gw2] {
    return HttpRequest(gw2.http_port(), "GET", "/function/sleep?ms=1500");
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ReadyLoad(n1_.http_port()) <= 0 && std::chrono::steady_clock::now() < deadline) {
  }
  HttpResult fast = HttpRequest(gw2.http_port(), "GET", "/function/hello");
  EXPECT_EQ(fast.status, 200) << fast.body << gw2.Logs();
  EXPECT_EQ(fast.Header("x-faas-node"), "n1");
  HttpResult slow_r = slow.get();
  EXPECT_EQ(slow_r.status, 200) << slow_r.body << gw2.Logs();
  EXPECT_EQ(slow_r.Header("x-faas-node"), "n1");
  EXPECT_NE(gw2.Logs().find("node.down node=dead"), std::string::npos) << gw2.Logs();
}

TEST_F(ClusterRolesTest, ADeployThroughOneGatewayIsServedByAnother) {
  FaasdProcess gw2;
  ASSERT_TRUE(gw2.Start({"--role", "gateway", "--store", store_, "--nodes",
                         n1_.NodesEntry("n1") + "," + n2_.NodesEntry("n2")}))
      << gw2.Logs();
  Deploy("hello", FunctionLib("hello"));  // through gw_; gw2 follows its NOTIFY
  HttpResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (r.status != 200 && std::chrono::steady_clock::now() < deadline) {
    r = HttpRequest(gw2.http_port(), "GET", "/function/hello");
  }
  EXPECT_EQ(r.status, 200) << r.body << gw2.Logs();
  // Once gw2 has dropped the function, nothing is public: a caller without a key gets 401, so
  // ask with a key (made through gw_; gw2 hears of it too).
  const std::string key = gw_.CreateKey("acme");
  ASSERT_FALSE(key.empty());
  CommandResult deleted = gw_.Ctl({"delete", "hello"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (r.status != 404 && std::chrono::steady_clock::now() < deadline) {
    r = HttpRequest(gw2.http_port(), "GET", "/function/hello", "",
                    {{"Authorization", "Bearer " + key}});
  }
  ExpectError(r, 404, "function_not_found");
}

TEST_F(ClusterRolesTest, ANodeStoppedWithSigtermFinishesItsCallThenExits) {
  Deploy("sleep", FunctionLib("sleep"));
  auto slow = std::async(std::launch::async, [this] {
    return HttpRequest(gw_.http_port(), "GET", "/function/sleep?ms=1500");
  });
  FaasdProcess* busy = nullptr;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (busy == nullptr && std::chrono::steady_clock::now() < deadline) {
    busy =
        ReadyLoad(n1_.http_port()) > 0 ? &n1_ : (ReadyLoad(n2_.http_port()) > 0 ? &n2_ : nullptr);
  }
  ASSERT_NE(busy, nullptr) << AllLogs();
  EXPECT_EQ(busy->Stop(), 0) << busy->Logs();  // SIGTERM: drains within --shutdown-grace
  HttpResult r = slow.get();
  EXPECT_EQ(r.status, 200) << r.body << AllLogs();
  EXPECT_EQ(gw_.Stop(), 0) << gw_.Logs();
}

// Membership (docs/design/0019-membership-and-health.md): a gateway started without --nodes finds
// the nodes in the store's node registry and admits them once its health checks pass; `faasctl
// node drain` drains a node, which stops taking work and exits, and the other serves on.
TEST(ClusterMembership, AGatewayFindsRegisteredNodesAndADrainedNodeLeaves) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  const std::string store = pg.Url("faas");
  FaasdProcess n1, n2, gw;
  ASSERT_TRUE(n1.Start({"--role", "node", "--store", store, "--node-id", "n1"})) << n1.Logs();
  ASSERT_TRUE(n2.Start({"--role", "node", "--store", store, "--node-id", "n2"})) << n2.Logs();
  ASSERT_TRUE(gw.Start({"--role", "gateway", "--store", store})) << gw.Logs();
  auto logs = [&] { return gw.Logs() + n1.Logs() + n2.Logs(); };
  // Both nodes are admitted within a few health-check rounds; until then a deploy may find none.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  CommandResult list;
  while (std::chrono::steady_clock::now() < deadline) {
    list = gw.Ctl({"node", "list", "-o", "json"});
    if (list.exit_code == 0 && list.out.find("\"n1\"") != std::string::npos &&
        list.out.find("\"n2\"") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(list.out.find("\"n2\""), std::string::npos) << list.out << list.err << logs();
  CommandResult deployed;
  while (std::chrono::steady_clock::now() < deadline) {
    deployed = gw.Ctl({"deploy", "hello", FunctionLib("hello")});
    if (deployed.exit_code == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err << logs();
  HttpResult r = HttpRequest(gw.http_port(), "GET", "/function/hello");
  ASSERT_EQ(r.status, 200) << r.body << logs();
  // Drain n1 through the control API: its heartbeat hears it, it drains and exits 0.
  CommandResult drain = gw.Ctl({"node", "drain", "n1"});
  ASSERT_EQ(drain.exit_code, 0) << drain.out << drain.err;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (n1.Running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(n1.Running()) << logs();
  EXPECT_EQ(n1.exit_code(), 0) << n1.Logs();
  // Every later call is served, by n2.
  for (int i = 0; i < 10; ++i) {
    HttpResult after = HttpRequest(gw.http_port(), "GET", "/function/hello");
    ASSERT_EQ(after.status, 200) << after.body << logs();
    EXPECT_EQ(after.Header("x-faas-node"), "n2");
  }
  EXPECT_EQ(gw.Stop(), 0) << gw.Logs();
  EXPECT_EQ(n2.Stop(), 0) << n2.Logs();
}

// faas_cluster_nodes{state} on a gateway (docs/metering.md): the registered nodes as it sees
// them. A SIGTERMed node with a drain delay is draining (and no longer up) for the whole delay; a
// second signal ends it and it leaves the registry as dead.
TEST(ClusterMembership, AGatewaysMetricsCountTheNodesByState) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  const std::string store = pg.Url("faas");
  FaasdProcess n1, n2, gw;
  ASSERT_TRUE(
      n1.Start({"--role", "node", "--store", store, "--node-id", "n1", "--drain-delay", "60s"}))
      << n1.Logs();
  ASSERT_TRUE(n2.Start({"--role", "node", "--store", store, "--node-id", "n2"})) << n2.Logs();
  ASSERT_TRUE(gw.Start({"--role", "gateway", "--store", store})) << gw.Logs();
  auto logs = [&] { return gw.Logs() + n1.Logs() + n2.Logs(); };
  std::string m;
  auto nodes = [&](const std::string& state) {
    return Sample(m, "faas_cluster_nodes{state=\"" + state + "\"}");
  };
  auto poll = [&](auto pred) {
    return PollUntil([&] {
      m = HttpRequest(gw.http_port(), "GET", "/metrics").body;
      return pred();
    });
  };
  ASSERT_TRUE(poll([&] { return nodes("up") == 2 && nodes("draining") == 0; })) << m << logs();
  ASSERT_EQ(::kill(n1.pid(), SIGTERM), 0);
  EXPECT_TRUE(poll([&] { return nodes("up") == 1 && nodes("draining") == 1; })) << m << logs();
  ASSERT_EQ(::kill(n1.pid(), SIGTERM), 0);  // ends the delay: it leaves
  EXPECT_TRUE(poll([&] {
    return nodes("up") == 1 && nodes("draining") == 0 && nodes("dead") == 1;
  })) << m
      << logs();
  EXPECT_EQ(gw.Stop(), 0) << gw.Logs();
  EXPECT_EQ(n2.Stop(), 0) << n2.Logs();
}

TEST(ClusterRolesFlags, WrongRoleCombinationsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--role", "gateway", "--nodes", "n1=127.0.0.1:1@127.0.0.1:2"},
       "--role gateway needs --store postgres://"},
      {{"--role", "node"}, "--role node needs --store postgres://"},
      {{"--role", "gateway", "--store", "postgresql:///x", "--balancer", "magic"},
       "--balancer: unknown balancer \"magic\""},
      {{"--nodes", "n1=127.0.0.1:1@127.0.0.1:2"}, "--nodes is for --role gateway"},
      {{"--role", "node", "--store", "postgresql:///x", "--balancer", "p2c"},
       "--balancer is for --role gateway"},
      {{"--role", "gateway", "--store", "postgresql:///x", "--nodes", "n1=nohostport"},
       "--nodes entry \"n1=nohostport\""},
      {{"--redis", "redis://127.0.0.1:6379"}, "--redis is for --role gateway"},
      {{"--role", "gateway", "--store", "postgresql:///x", "--redis", "redis://nohost"},
       "--redis \"redis://nohost\" needs a port"},
      {{"--role", "cluster"}, "--role"},
  };
  for (const Case& c : cases) {
    FaasdProcess d;
    EXPECT_FALSE(d.Start(c.args));
    EXPECT_EQ(d.exit_code(), 2) << d.Logs();
    EXPECT_NE(d.Logs().find(c.message), std::string::npos) << c.message << "\n" << d.Logs();
  }
}

TEST(ClusterRolesFlags, RoleAllNamesItsOwnNode) {
  FaasdProcess d;
  ASSERT_TRUE(d.Start({"--node-id", "solo"})) << d.Logs();
  CommandResult r = d.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  HttpResult h = HttpRequest(d.http_port(), "GET", "/function/hello");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.Header("x-faas-node"), "solo");
}

TEST(ClusterRolesFlags, ADeployWithNoNodeUpFailsClearly) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  // Port 1 on loopback: nothing listens, connections are refused.
  FaasdProcess gw;
  ASSERT_TRUE(gw.Start(
      {"--role", "gateway", "--store", pg.Url("faas"), "--nodes", "n1=127.0.0.1:1@127.0.0.1:1"}))
      << gw.Logs();
  CommandResult r = gw.Ctl({"deploy", "hello", FunctionLib("hello")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("no node is up"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace faas::testing
