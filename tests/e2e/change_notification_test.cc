// End-to-end: gateways and nodes follow the shared store's changes through PostgreSQL
// LISTEN/NOTIFY (docs/design/0022-change-notification.md). Two gateways and one node share one
// PostgreSQL; the gateways' periodic full resync is set to an hour, so whatever a gateway learns
// within these tests' deadlines it learnt from a notice.
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/store/registry.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"
#include "subprocess.h"

namespace faas::testing {
namespace {

// Far longer than any deadline below: only NOTIFY can make a change visible in time.
constexpr const char* kNoResync = "1h";
constexpr std::chrono::seconds kFollowWithin{5};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t Count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class ChangeNotificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FAAS_START_POSTGRES_OR_SKIP(pg_, "faas");
    store_ = pg_.Url("faas");
    ASSERT_TRUE(node_.Start({"--role", "node", "--store", store_, "--node-id", "n1"}))
        << node_.Logs();
    // No --nodes: the gateways find the node in the node registry (and follow faas_nodes).
    for (FaasdProcess* gw : {&a_, &b_}) {
      ASSERT_TRUE(
          gw->Start({"--role", "gateway", "--store", store_, "--registry-resync", kNoResync}))
          << gw->Logs();
    }
    // Both gateways route to the node once their health checks admit it.
    ASSERT_TRUE(PollUntil([&] {
      return b_.Logs().find("node.up node=n1") != std::string::npos &&
             a_.Logs().find("node.up node=n1") != std::string::npos;
    })) << AllLogs();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "%s\n", AllLogs().c_str());
    }
  }

  std::string AllLogs() const {
    return "---- gateway A ----\n" + a_.Logs() + "---- gateway B ----\n" + b_.Logs() +
           "---- node ----\n" + node_.Logs();
  }

  // Polls `gw` with `method path` until the answer's status is `status` (and its body holds
  // `body_has`), for up to kFollowWithin.
  HttpResult PollFor(FaasdProcess& gw, const std::string& method, const std::string& path,
                     int status, const std::string& body_has = "",
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpResult r;
    PollUntil(
        [&] {
          r = HttpRequest(gw.http_port(), method, path, "ping-body", headers);
          return r.status == status && r.body.find(body_has) != std::string::npos;
        },
        kFollowWithin);
    return r;
  }

  PostgresProcess pg_;
  std::string store_;
  FaasdProcess node_, a_, b_;
};

TEST_F(ChangeNotificationTest, ADeployThroughOneGatewayIsServedByTheOtherAtOnce) {
  // B already read the (empty) registry: it must hear of the deploy.
  EXPECT_NE(HttpRequest(b_.http_port(), "POST", "/function/fn").status, 200);
  CommandResult v1 = a_.Ctl({"deploy", "fn", FunctionLib("hello")});
  ASSERT_EQ(v1.exit_code, 0) << v1.err;
  HttpResult r = PollFor(b_, "POST", "/function/fn", 200, "Hello from faas!");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-faas-node"), "n1");

  // A new version of the same function: B switches to it.
  CommandResult v2 = a_.Ctl({"deploy", "fn", FunctionLib("echo")});
  ASSERT_EQ(v2.exit_code, 0) << v2.err;
  r = PollFor(b_, "POST", "/function/fn", 200, "ping-body");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("ping-body"), std::string::npos) << "B still serves version 1: " << r.body;

  // A rollback, then a delete.
  CommandResult back = a_.Ctl({"rollback", "fn", "1"});
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  r = PollFor(b_, "POST", "/function/fn", 200, "Hello from faas!");
  EXPECT_NE(r.body.find("Hello from faas!"), std::string::npos) << r.body;
  // Without a key, a function that does not exist answers 401 (nothing is public): ask with one.
  const std::string key = a_.CreateKey("acme");
  ASSERT_FALSE(key.empty());
  CommandResult deleted = a_.Ctl({"delete", "fn"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  r = PollFor(b_, "POST", "/function/fn", 404, "", {{"Authorization", "Bearer " + key}});
  ExpectError(r, 404, "function_not_found");
}

// Attack: a key revoked through one gateway must stop working on every gateway, not only on the
// one that revoked it (before, each gateway read the keys once at start: a revoked key kept
// working on the others until they restarted).
TEST_F(ChangeNotificationTest, AKeyRevokedThroughOneGatewayIsRefusedByTheOther) {
  a_.set_public_deploys(false);
  CommandResult d = a_.Ctl({"deploy", "private", FunctionLib("hello")});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const std::string key = a_.CreateKey("acme");
  ASSERT_FALSE(key.empty());
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer " + key}};
  HttpResult ok = PollFor(b_, "POST", "/function/private", 200, "", auth);
  ASSERT_EQ(ok.status, 200) << "B never learnt of the key: " << ok.body;

  const std::string id = key.substr(5, 12);  // faas_<id>_<secret>
  CommandResult revoked = a_.Ctl({"key", "revoke", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.out << revoked.err;
  HttpResult refused = PollFor(b_, "POST", "/function/private", 401, "", auth);
  ExpectError(refused, 401, "unauthorized");
}

TEST_F(ChangeNotificationTest, ARouteAddedThroughOneGatewayIsServedByTheOther) {
  CommandResult d = a_.Ctl({"deploy", "echo", FunctionLib("echo")});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  CommandResult added = a_.Ctl({"route", "add", "POST", "/users/{id}", "echo"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  HttpResult r = PollFor(b_, "POST", "/users/42", 200, "ping-body");
  EXPECT_EQ(r.status, 200) << r.body;
  CommandResult removed = a_.Ctl({"route", "delete", "POST", "/users/{id}"});
  ASSERT_EQ(removed.exit_code, 0) << removed.out << removed.err;
  r = PollFor(b_, "POST", "/users/42", 404);
  EXPECT_EQ(r.status, 404) << r.body;
}

// A deploy's notice makes the node fetch the new library into its cache (verified, temp file,
// fsync, rename) before any call asks for it. The version is created straight in the store, as
// a gateway elsewhere would, so no deploy probe on this node has fetched it already.
TEST_F(ChangeNotificationTest, TheNodePrefetchesADeployedLibraryBeforeItsFirstCall) {
  TempDir elsewhere;
  auto reg = store::OpenRegistry(store_, elsewhere.path());
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  const std::string bytes = ReadAll(FunctionLib("hello"));
  ASSERT_FALSE(bytes.empty());
  auto sha = (*reg)->PutArtifact(bytes);
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  const std::string cached = node_.data_dir() + "/artifact-cache/" + *sha + ".so";
  struct stat st {};
  ASSERT_NE(::stat(cached.c_str(), &st), 0) << "cached before the deploy";
  store::FunctionConfig cfg;
  cfg.is_public = true;
  auto created = (*reg)->CreateVersion("pre", *sha, cfg);
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  ASSERT_TRUE(PollUntil([&] { return ::stat(cached.c_str(), &st) == 0; }, kFollowWithin))
      << "the node did not prefetch " << cached;
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), bytes.size());
  // The node logs the prefetch after the rename that made the file appear: wait for the line.
  EXPECT_TRUE(PollUntil(
      [&] {
        return node_.Logs().find("artifact.prefetched fn=pre version=1") != std::string::npos;
      },
      kFollowWithin))
      << node_.Logs();

  // The first call runs the cached copy: the node fetched the library once, at the notice.
  HttpResult r = PollFor(a_, "GET", "/function/pre", 200, "Hello from faas!");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Count(node_.Logs(), "artifact.fetched sha256=" + *sha), 1u);
}

// A library whose stored bytes no longer match their sha256 is refused by the prefetch exactly as
// by a first call: nothing reaches the cache, and the call fails rather than load it.
TEST_F(ChangeNotificationTest, ACorruptedLibraryIsNeitherPrefetchedNorLoaded) {
  TempDir elsewhere;
  auto reg = store::OpenRegistry(store_, elsewhere.path());
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  auto sha = (*reg)->PutArtifact(ReadAll(FunctionLib("hello")));
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  std::string error;
  ASSERT_TRUE(pg_.Sql(
      "faas", "UPDATE artifacts SET bytes = bytes || '\\x00'::bytea WHERE sha256 = '" + *sha + "'",
      nullptr, &error))
      << error;
  store::FunctionConfig cfg;
  cfg.is_public = true;
  ASSERT_TRUE((*reg)->CreateVersion("bad", *sha, cfg).ok());
  ASSERT_TRUE(PollUntil(
      [&] { return node_.Logs().find("artifact.prefetch_failed fn=bad") != std::string::npos; },
      kFollowWithin));
  EXPECT_NE(node_.Logs().find("is corrupt"), std::string::npos);
  const std::string cached = node_.data_dir() + "/artifact-cache/" + *sha + ".so";
  struct stat st {};
  EXPECT_NE(::stat(cached.c_str(), &st), 0) << "a corrupt library reached the cache";
  HttpResult r = PollFor(a_, "GET", "/function/bad", 500);
  EXPECT_NE(r.status, 200) << r.body;
  EXPECT_NE(::stat(cached.c_str(), &st), 0) << "a corrupt library reached the cache";
}

}  // namespace
}  // namespace faas::testing
