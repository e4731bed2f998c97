// End-to-end: trust between machines (issue #16 item 12; docs/design/0028-cluster-tls.md). A
// node given the cluster's certificates serves NodeService only to clients presenting a
// certificate signed by the cluster's CA: knowing the nodes' secret (it travels with every call,
// and whoever reads the store has it) is not enough. Gateways dial nodes over mutual TLS, a
// gateway with another CA's certificate gets nothing from them, and faasctl --tls-ca talks to a
// control API that serves TLS off loopback.
#include <unistd.h>

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/store/nodes.h"
#include "faas/v1/node.grpc.pb.h"

#include "cluster_certs.h"
#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

// What a caller got from one Invoke of hello@1 on a node.
struct Attempt {
  bool answered = false;  // a reply head came back: the function ran
  grpc::Status status;
};

Attempt InvokeHello(const std::shared_ptr<grpc::Channel>& channel, const std::string& secret) {
  auto stub = v1::NodeService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("authorization", "Bearer " + secret);
  auto stream = stub->Invoke(&ctx);
  v1::NodeInvokeFrame frame;
  frame.mutable_head()->set_function("hello");
  frame.mutable_head()->set_version(1);
  frame.mutable_head()->set_invocation_id("forged-call");
  frame.mutable_head()->set_tenant("someone-else");
  stream->Write(frame);
  stream->WritesDone();
  Attempt a;
  v1::NodeInvokeReply reply;
  while (stream->Read(&reply)) {
    a.answered = a.answered || reply.has_head();
  }
  a.status = stream->Finish();
  return a;
}

class ClusterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = ClusterCerts::Unavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    std::string error;
    store_ = pg_.Url("faas");
    // Nodes are dialled at 127.0.0.1: their certificates carry it as an IP SAN.
    ASSERT_TRUE(certs_.Make({"gw:127.0.0.1", "n1:127.0.0.1"}, &error)) << error;
    // Another cluster's CA, with a certificate for a name and address this cluster also uses.
    ASSERT_TRUE(other_.Make({"gw:127.0.0.1"}, &error)) << error;
    ASSERT_TRUE(StartNode()) << n1_.Logs();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- node ----\n%s\n---- gateway ----\n%s\n", n1_.Logs().c_str(),
                   gw_.Logs().c_str());
    }
  }

  bool StartNode() {
    std::vector<std::string> args = {"--role", "node", "--store", store_, "--node-id", "n1"};
    for (const std::string& f : certs_.Flags("n1")) {
      args.push_back(f);
    }
    return n1_.Start(args);
  }

  // A gateway routing to n1 with `tls` flags.
  bool StartGateway(FaasdProcess& gw, const std::vector<std::string>& tls) {
    std::vector<std::string> args = {"--role", "gateway", "--store",
                                     store_,   "--nodes", n1_.NodesEntry("n1")};
    args.insert(args.end(), tls.begin(), tls.end());
    return gw.Start(args);
  }

  std::string NodeSecret() {
    auto nodes = store::OpenNodeRegistry(store_);
    EXPECT_TRUE(nodes.ok()) << nodes.status().message();
    if (!nodes.ok()) {
      return "";
    }
    auto secret = (*nodes)->NodeSecret();
    EXPECT_TRUE(secret.ok()) << secret.status().message();
    return secret.ok() ? *secret : "";
  }

  // A TLS channel to n1 trusting `ca`, presenting `cert`/`key` when given.
  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& ca, const std::string& cert,
                                            const std::string& key) {
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = ReadFileOrEmpty(ca);
    if (!cert.empty()) {
      opts.pem_cert_chain = ReadFileOrEmpty(cert);
      opts.pem_private_key = ReadFileOrEmpty(key);
    }
    return grpc::CreateChannel(n1_.grpc_addr(), grpc::SslCredentials(opts));
  }

  PostgresProcess pg_;
  std::string store_;
  ClusterCerts certs_, other_;
  FaasdProcess n1_, gw_;
};

// The attack: a caller who learned the nodes' secret (from the store, or from the wire before
// calls were encrypted) invokes a function on the node directly, as any tenant it likes. Without
// a certificate of the cluster's CA the handshake fails before a request is read; with the
// gateway's certificate the same call runs (so the refusals are the certificates' doing).
TEST_F(ClusterTlsTest, ANodeServesOnlyClientsWithACertificateOfTheClusterCa) {
  ASSERT_TRUE(StartGateway(gw_, certs_.Flags("gw"))) << gw_.Logs();
  CommandResult deploy = gw_.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.out << deploy.err;
  const std::string secret = NodeSecret();
  ASSERT_FALSE(secret.empty());

  struct Caller {
    const char* what;
    std::shared_ptr<grpc::Channel> channel;
  };
  const std::vector<Caller> hostile = {
      {"plaintext", grpc::CreateChannel(n1_.grpc_addr(), grpc::InsecureChannelCredentials())},
      {"TLS without a client certificate", TlsChannel(certs_.Ca(), "", "")},
      {"a client certificate of another CA",
       TlsChannel(certs_.Ca(), other_.Cert("gw"), other_.Key("gw"))},
  };
  for (const Caller& c : hostile) {
    Attempt a = InvokeHello(c.channel, secret);
    EXPECT_FALSE(a.answered) << c.what;
    EXPECT_EQ(a.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << c.what << ": " << a.status.error_message();
  }
  EXPECT_EQ(n1_.Logs().find("forged-call"), std::string::npos) << n1_.Logs();

  Attempt gateway =
      InvokeHello(TlsChannel(certs_.Ca(), certs_.Cert("gw"), certs_.Key("gw")), secret);
  EXPECT_TRUE(gateway.answered) << gateway.status.error_message();
  EXPECT_TRUE(gateway.status.ok()) << gateway.status.error_message();

  // And the gateway itself invokes through the node over mutual TLS.
  HttpResult r = HttpRequest(gw_.http_port(), "GET", "/function/hello");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-faas-node"), "n1");
}

// A gateway whose certificate another CA signed is not one of this cluster's: the node refuses
// its handshake, and its callers get a JSON error, not an answer.
TEST_F(ClusterTlsTest, AGatewayWithAnotherCasCertificateGetsNothingFromTheNode) {
  ASSERT_TRUE(StartGateway(gw_, certs_.Flags("gw"))) << gw_.Logs();
  CommandResult deploy = gw_.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.out << deploy.err;

  // Trusts both CAs (so it accepts the node, and its own certificate verifies at start), but
  // presents the other CA's certificate.
  TempDir dir;
  const std::string both = dir.path() + "/both-cas.pem";
  WriteFileOrDie(both, ReadFileOrEmpty(certs_.Ca()) + ReadFileOrEmpty(other_.Ca()));
  FaasdProcess stranger;
  ASSERT_TRUE(StartGateway(
      stranger, {"--tls-ca", both, "--tls-cert", other_.Cert("gw"), "--tls-key", other_.Key("gw")}))
      << stranger.Logs();
  HttpResult r = HttpRequest(stranger.http_port(), "GET", "/function/hello");
  ExpectError(r, 503, "no_capacity");
  EXPECT_EQ(r.Header("x-faas-node"), "") << r.body;
  // The cluster's own gateway is served as before.
  EXPECT_EQ(HttpRequest(gw_.http_port(), "GET", "/function/hello").status, 200);
}

// A gateway checks the node's certificate too: the chain must end at the cluster's CA (the
// node's address is 127.0.0.1, an IP SAN of its certificate) and, with --tls-node-name, the
// certificate must carry that name; a node that does not is not talked to.
TEST_F(ClusterTlsTest, AGatewayChecksTheNodesName) {
  ASSERT_TRUE(StartGateway(gw_, certs_.Flags("gw"))) << gw_.Logs();
  CommandResult deploy = gw_.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.out << deploy.err;

  std::vector<std::string> named = certs_.Flags("gw");
  named.insert(named.end(), {"--tls-node-name", "n1"});  // n1's certificate has DNS:n1
  FaasdProcess by_name;
  ASSERT_TRUE(StartGateway(by_name, named)) << by_name.Logs();
  HttpResult r = HttpRequest(by_name.http_port(), "GET", "/function/hello");
  EXPECT_EQ(r.status, 200) << r.body << by_name.Logs();

  std::vector<std::string> wrong = certs_.Flags("gw");
  wrong.insert(wrong.end(), {"--tls-node-name", "gw"});  // a certificate of the CA, not n1's
  FaasdProcess misnamed;
  ASSERT_TRUE(StartGateway(misnamed, wrong)) << misnamed.Logs();
  ExpectError(HttpRequest(misnamed.http_port(), "GET", "/function/hello"), 503, "no_capacity");
}

// Mistakes in the files are found at start (exit 2, naming the flag), not at the first
// handshake on some other machine: a key that is not the certificate's, a certificate the CA
// did not sign.
TEST_F(ClusterTlsTest, CertificatesThatCannotWorkAreRefusedAtStart) {
  struct Case {
    std::vector<std::string> tls;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--tls-ca", certs_.Ca(), "--tls-cert", certs_.Cert("n1"), "--tls-key", certs_.Key("gw")},
       "--tls-key is not the key of --tls-cert"},
      {{"--tls-ca", certs_.Ca(), "--tls-cert", other_.Cert("gw"), "--tls-key", other_.Key("gw")},
       "--tls-cert does not verify against --tls-ca"},
      {{"--tls-ca", certs_.Ca(), "--tls-cert", certs_.Key("n1"), "--tls-key", certs_.Key("n1")},
       "--tls-cert holds no certificate"},
  };
  for (const Case& c : cases) {
    FaasdProcess bad;
    std::vector<std::string> args = {"--role", "node", "--store", store_, "--node-id", "n9"};
    args.insert(args.end(), c.tls.begin(), c.tls.end());
    EXPECT_FALSE(bad.Start(args)) << c.says;
    EXPECT_TRUE(PollUntil([&] { return !bad.Running(); }, std::chrono::seconds(30)));
    EXPECT_EQ(bad.exit_code(), 2) << bad.Logs();
    EXPECT_NE(bad.Logs().find(c.says), std::string::npos) << bad.Logs();
  }
}

// A control API bound off loopback with the cluster's certificate serves TLS: faasctl verifies
// it with --tls-ca (or FAAS_TLS_CA), and fails without it or with another CA.
TEST_F(ClusterTlsTest, FaasctlVerifiesATlsControlApi) {
  gw_.set_bind_host("0.0.0.0");
  ASSERT_TRUE(StartGateway(gw_, certs_.Flags("gw"))) << gw_.Logs();
  const std::string port = gw_.grpc_addr().substr(gw_.grpc_addr().rfind(':') + 1);
  const std::vector<std::string> ctl = {
      BinDir() + "/faasctl", "--server", "127.0.0.1:" + port, "--token", gw_.AdminToken(), "list"};
  auto with = [&ctl](std::vector<std::string> extra) {
    std::vector<std::string> argv = ctl;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, "", std::chrono::seconds(30));
  };
  CommandResult ok = with({"--tls-ca", certs_.Ca()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  CommandResult env = RunCommand(ctl, "", std::chrono::seconds(30), {"FAAS_TLS_CA=" + certs_.Ca()});
  EXPECT_EQ(env.exit_code, 0) << env.out << env.err;
  CommandResult plain = with({"--rpc-timeout", "3s"});
  EXPECT_NE(plain.exit_code, 0) << plain.out << plain.err;
  CommandResult wrong_ca = with({"--tls-ca", other_.Ca(), "--rpc-timeout", "3s"});
  EXPECT_NE(wrong_ca.exit_code, 0) << wrong_ca.out << wrong_ca.err;
  CommandResult missing = with({"--tls-ca", certs_.Ca() + ".missing"});
  EXPECT_EQ(missing.exit_code, 2) << missing.out << missing.err;
}

// Nodes accept invocations only from gateways: off loopback without certificates a node does
// not start (usage error, exit 2, saying how to fix it) unless --insecure-cluster says the
// network is trusted.
TEST(ClusterTlsFlags, ANodeOffLoopbackNeedsCertificatesOrInsecureCluster) {
  const std::vector<std::string> base = {BinDir() + "/faasd",
                                         "--role",
                                         "node",
                                         "--store",
                                         "postgres://127.0.0.1:1/none",
                                         "--grpc",
                                         "0.0.0.0:0",
                                         "--http",
                                         "127.0.0.1:0"};
  CommandResult r = RunCommand(base, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--tls-ca"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure-cluster"), std::string::npos) << r.err;

  std::vector<std::string> partial = base;
  partial.insert(partial.end(), {"--tls-ca", "/nonexistent/ca.pem"});
  r = RunCommand(partial, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("all three or none"), std::string::npos) << r.err;

  std::vector<std::string> insecure_with_certs = base;
  insecure_with_certs.insert(insecure_with_certs.end(),
                             {"--insecure-cluster", "--tls-ca", "/nonexistent/ca.pem", "--tls-cert",
                              "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"});
  r = RunCommand(insecure_with_certs, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("contradict"), std::string::npos) << r.err;
}

// The attack: a control API off loopback without certificates takes the admin token with every
// faasctl call in plaintext, for anyone on the path to read. Neither --role all nor a gateway
// starts like that (usage error, exit 2, naming the fixes); on loopback nothing changes.
TEST(ClusterTlsFlags, AControlApiOffLoopbackNeedsCertificatesOrInsecureCluster) {
  TempDir dir;
  const std::vector<std::string> all = {BinDir() + "/faasd", "--role", "all",         "--grpc",
                                        "0.0.0.0:0",         "--http", "127.0.0.1:0", "--data-dir",
                                        dir.path() + "/all"};
  CommandResult r = RunCommand(all, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("plaintext"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--tls-ca"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure-cluster"), std::string::npos) << r.err;

  const std::vector<std::string> gateway = {BinDir() + "/faasd",
                                            "--role",
                                            "gateway",
                                            "--store",
                                            "postgres://127.0.0.1:1/none",
                                            "--grpc",
                                            "[::]:0",
                                            "--data-dir",
                                            dir.path() + "/gw"};
  r = RunCommand(gateway, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("plaintext"), std::string::npos) << r.err;

  // On loopback the gateway gets past its flags to the (refused) store: exit 1, not 2.
  const std::vector<std::string> loopback = {BinDir() + "/faasd",
                                             "--role",
                                             "gateway",
                                             "--store",
                                             "postgres://127.0.0.1:1/none",
                                             "--grpc",
                                             "127.0.0.1:0",
                                             "--data-dir",
                                             dir.path() + "/lo"};
  r = RunCommand(loopback, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
}

// --insecure-cluster is the operator's word that the network is trusted: the control API then
// serves plaintext off loopback (faasctl works without --tls-ca), and faasd says so in its log.
TEST(ClusterTlsFlags, InsecureClusterServesAPlaintextControlApiAndSaysSo) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "faasd --role all needs root for its sandbox";
  }
  FaasdProcess d;
  d.set_bind_host("0.0.0.0");
  ASSERT_TRUE(d.Start({"--insecure-cluster"})) << d.Logs();
  CommandResult list = d.Ctl({"list"});
  EXPECT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_NE(d.Logs().find("faasd.control_api_plaintext"), std::string::npos) << d.Logs();
  EXPECT_EQ(d.Stop(), 0) << d.Logs();
}

}  // namespace
}  // namespace faas::testing
