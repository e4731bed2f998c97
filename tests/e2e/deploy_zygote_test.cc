// The cold start right after a deploy (docs/design/0014-cold-start-after-deploy.md): the deploy's
// probe is the version's zygote start, so the deploy answers once the version can fork, and the
// first call forks an instance instead of spawning a worker that loads the library and runs
// faas_init again. What tells the two apart from outside: a forked instance's ledger row has no
// load or init time (it starts initialised), a spawned one carries its dlopen and faas_init (here
// >= 30 ms), and each spawned worker adds an "init" row beside the zygote's one.
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "faas/store/ledger.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {
namespace {

class DeployZygote : public FaasdTest {
 protected:
  void Start(std::vector<std::string> flags = {}) {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "faasd needs root for its sandbox";
    }
    ASSERT_TRUE(d_.Start(flags)) << d_.Logs();
  }
  // faas_instances{state="zygote"} of `name` now, without waiting (-1: no sample).
  double Zygotes(const std::string& name) {
    return Sample(HttpRequest(d_.http_port(), "GET", "/metrics").body,
                  "faas_instances{function=\"" + name + "\",state=\"zygote\"}");
  }
  std::string Call(const std::string& name) {
    HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/" + name);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-faas-cold-start"), "true");
    return r.Header("x-invocation-id");
  }
  // Stops faasd and reads the ledger rows of `name` by kind.
  std::map<std::string, std::vector<store::InvocationRecord>> StopAndRead(const std::string& name) {
    EXPECT_EQ(d_.Stop(), 0);
    std::map<std::string, std::vector<store::InvocationRecord>> out;
    auto ledger = store::Ledger::Open(d_.data_dir());
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    if (ledger.ok()) {
      auto list = (*ledger)->List(name, 1000);
      EXPECT_TRUE(list.ok());
      for (auto& r : *list) {
        out[r.kind].push_back(r);
      }
    }
    return out;
  }
};

// Deploy, call at once; deploy a changed version, call at once. Both first calls fork. Before
// this, the zygote started later on the reaper thread (a 30 ms faas_init here), so both calls
// spawned a worker that ran faas_init a third and fourth time.
TEST_F(DeployZygote, TheFirstCallAfterEachDeployIsForkedFromTheVersionsZygote) {
  Start();
  Ctl0({"deploy", "fn", TestdataLib("initburn"), "--public"});
  // The deploy answered once the version could fork: its zygote is there already.
  EXPECT_EQ(Zygotes("fn"), 1);
  const std::string first = Call("fn");
  Ctl0({"deploy", "fn", TestdataLib("initburn"), "--public", "--env", "INITBURN_MS=31"});
  EXPECT_EQ(Zygotes("fn"), 1);
  const std::string second = Call("fn");

  auto rows = StopAndRead("fn");
  std::map<std::string, store::InvocationRecord> by_id;
  for (const auto& r : rows["invocation"]) {
    by_id[r.invocation_id] = r;
  }
  ASSERT_EQ(by_id.count(first), 1u);
  ASSERT_EQ(by_id.count(second), 1u);
  for (const auto& [id, version] : {std::pair{first, 1u}, std::pair{second, 2u}}) {
    const store::InvocationRecord& r = by_id[id];
    EXPECT_TRUE(r.cold_start) << id;
    EXPECT_EQ(r.version, version) << id;
    // A spawned worker's row carries its dlopen and its 30 ms faas_init.
    EXPECT_EQ(r.load_ns, 0u) << id << " was spawned, not forked";
    EXPECT_EQ(r.init_ns, 0u) << id << " was spawned, not forked";
  }
  // One init row per version: its zygote's (the probe that became it is billed once, on
  // adoption; no worker was spawned).
  ASSERT_EQ(rows["init"].size(), 2u);
  for (const auto& r : rows["init"]) {
    EXPECT_GE(r.cpu_ns, 29'000'000u);
  }
}

// A rollback prepares the version's zygote the same way before it answers: its first call forks.
// Before, the rolled-back version's zygote was started afterwards on the reaper thread, and a call
// arriving within its 30 ms faas_init spawned a worker that ran faas_init again.
TEST_F(DeployZygote, TheFirstCallAfterARollbackIsForked) {
  Start();
  Ctl0({"deploy", "fn", TestdataLib("initburn"), "--public"});
  Ctl0({"deploy", "fn", TestdataLib("initburn"), "--public", "--env", "INITBURN_MS=31"});
  Ctl0({"rollback", "fn", "1"});
  EXPECT_EQ(Zygotes("fn"), 1);
  const std::string first = Call("fn");

  auto rows = StopAndRead("fn");
  ASSERT_EQ(rows["invocation"].size(), 1u);
  const store::InvocationRecord& r = rows["invocation"][0];
  EXPECT_EQ(r.invocation_id, first);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.load_ns, 0u) << "the first call after the rollback was spawned, not forked";
  EXPECT_EQ(r.init_ns, 0u) << "the first call after the rollback was spawned, not forked";
  // Three zygotes, each billed once: version 1's, version 2's, and version 1's again.
  EXPECT_EQ(rows["init"].size(), 3u);
}

// With --zygotes=false the deploy probes as before and every instance is spawned.
TEST_F(DeployZygote, WithoutZygotesTheFirstCallSpawnsAndTheDeployLeavesNothingRunning) {
  Start({"--zygotes", "false"});
  Ctl0({"deploy", "fn", TestdataLib("initburn"), "--public"});
  EXPECT_NE(Zygotes("fn"), 1);
  const std::string first = Call("fn");
  auto rows = StopAndRead("fn");
  ASSERT_EQ(rows["invocation"].size(), 1u);
  EXPECT_EQ(rows["invocation"][0].invocation_id, first);
  EXPECT_GE(rows["invocation"][0].init_ns, 29'000'000u) << "spawned: it ran faas_init";
  ASSERT_EQ(rows["init"].size(), 1u) << "the probe is not billed, the spawned worker is";
}

// A version whose faas_init leaves a thread running cannot have a zygote: the deploy still
// succeeds (its probe is today's) and the first call spawns.
TEST_F(DeployZygote, AVersionThatCannotHaveAZygoteStillDeploys) {
  Start();
  Ctl0({"deploy", "t", TestdataLib("initthread"), "--public"});
  HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/t");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(Zygotes("t"), 1);
}

// Each zygote parks instances ahead of need (docs/design/0010-cold-start-after-idle.md,
// "Parked"; two for this `isolation: fresh` function, faasd --parked-fresh). Each is a fork of its
// own version, made before the call it will serve: after a deploy
// the first call must get the new version, never the old version's parked instance; and every
// instance starts from what faas_init left, nothing an earlier call did. The hostile library
// keeps HOSTILE_MARK (per version) in a global and a file in faas_init, counts calls, and marks
// /tmp on each call.
TEST_F(DeployZygote, AParkedInstanceNeverServesAnotherVersionOrCarriesStateBetweenCalls) {
  Start();
  auto parked = [&] {
    return Sample(HttpRequest(d_.http_port(), "GET", "/metrics").body,
                  "faas_instances{function=\"st\",state=\"parked\"}");
  };
  auto state = [&] {
    HttpResult r = HttpRequest(d_.http_port(), "GET", "/function/st?do=state");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-faas-cold-start"), "true");
    return r.body;
  };
  const std::vector<std::string> deploy = {
      "deploy", "st", TestdataLib("hostile"), "--public", "--isolation", "fresh", "--env"};
  auto with = [&](const std::string& env) {
    std::vector<std::string> args = deploy;
    args.push_back(env);
    return args;
  };
  Ctl0(with("HOSTILE_MARK=v1"));
  ASSERT_TRUE(PollUntil([&] { return parked() == 2; })) << d_.Logs();
  EXPECT_EQ(state(), "mark=v1 calls=0 init-file=0 prev-call=0");
  ASSERT_TRUE(PollUntil([&] { return parked() == 2; }));  // the next one, parked after that call
  EXPECT_EQ(state(), "mark=v1 calls=0 init-file=0 prev-call=0");
  ASSERT_TRUE(PollUntil([&] { return parked() == 2; }));
  // Version 1 has two instances parked; version 2 is deployed and called at once.
  Ctl0(with("HOSTILE_MARK=v2"));
  EXPECT_EQ(state(), "mark=v2 calls=0 init-file=0 prev-call=0");
  ASSERT_TRUE(PollUntil([&] { return parked() == 2; }));
  EXPECT_EQ(state(), "mark=v2 calls=0 init-file=0 prev-call=0");
}

}  // namespace
}  // namespace faas::testing
