// End-to-end: faasd on --store postgres://… ships its ledger to the central ledger and answers
// `faasctl bill`, `invocations` and `logs` from it (issue #16 item 7,
// docs/design/0020-central-ledger.md), and rows recorded while PostgreSQL was down reach it
// exactly once after faasd is SIGKILLed and restarted.
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

using Json = nlohmann::json;

// The invocation ids of `fn`'s kind=invocation rows, as `faasctl invocations` lists them.
std::set<std::string> ListedIds(FaasdProcess& d, const std::string& fn) {
  CommandResult inv = d.Ctl({"invocations", fn, "--last", "1000", "-o", "json"});
  EXPECT_EQ(inv.exit_code, 0) << inv.err;
  std::set<std::string> ids;
  if (inv.exit_code == 0) {
    const Json all = Json::parse(inv.out);  // kept: a range-for over a temporary's member dangles
    for (const Json& row : all["invocations"]) {
      if (row["kind"] == "invocation") {
        ids.insert(row["invocation_id"].get<std::string>());
      }
    }
  }
  return ids;
}

int64_t BilledInvocations(FaasdProcess& d, const std::string& fn) {
  CommandResult bill = d.Ctl({"bill", "--function", fn, "-o", "json"});
  EXPECT_EQ(bill.exit_code, 0) << bill.out << bill.err;
  return bill.exit_code == 0 ? Json::parse(bill.out)["total"]["invocations"].get<int64_t>() : -1;
}

// faas_ledger_unshipped_rows from /metrics; -1 when absent.
int64_t Unshipped(FaasdProcess& d) {
  const std::string body = HttpRequest(d.http_port(), "GET", "/metrics").body;
  const std::string name = "\nfaas_ledger_unshipped_rows ";
  const std::size_t at = body.find(name);
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size()));
}

// Polls `done` until it holds or the deadline passes.
template <typename F>
bool Eventually(F done, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a poll step
  }
  return done();
}

TEST(LedgerPgE2E, BillInvocationsAndLogsReadTheCentralLedgerAndSurviveARestart) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  std::string error;
  const std::vector<std::string> args = {"--store", pg.Url("faas")};
  auto central_count = [&](const std::string& fn) {
    std::string out;
    EXPECT_TRUE(pg.Sql("faas",
                       "SELECT count(*) || '|' || count(DISTINCT invocation_id) FROM "
                       "ledger_invocations WHERE kind = 'invocation' AND function = '" +
                           fn + "'",
                       &out, &error))
        << error;
    return out;
  };

  FaasdProcess d;
  ASSERT_TRUE(d.Start(args)) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "hello", FunctionLib("hello")}).exit_code, 0) << d.Logs();
  ASSERT_EQ(d.Ctl({"deploy", "fail", FunctionLib("fail")}).exit_code, 0) << d.Logs();
  std::set<std::string> made;
  for (int i = 0; i < 25; ++i) {
    HttpResult r = HttpRequest(d.http_port(), "GET", "/function/hello");
    ASSERT_EQ(r.status, 200) << r.body;
    made.insert(r.Header("x-invocation-id"));
  }
  HttpResult failed = HttpRequest(d.http_port(), "GET", "/function/fail");
  ASSERT_EQ(failed.status, 500) << failed.body;
  const std::string fail_id = failed.Header("x-invocation-id");

  EXPECT_EQ(BilledInvocations(d, "hello"), 25);
  EXPECT_EQ(ListedIds(d, "hello"), made);
  EXPECT_EQ(central_count("hello"), "25|25\n");  // read from PostgreSQL, not only local
  CommandResult logs = d.Ctl({"logs", "fail"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find(fail_id), std::string::npos) << logs.out;
  // The control API reads the central ledger: a row removed there is gone from the bill.
  ASSERT_TRUE(pg.Sql("faas",
                     "DELETE FROM ledger_invocations WHERE invocation_id = '" + *made.begin() + "'",
                     nullptr, &error))
      << error;
  EXPECT_EQ(BilledInvocations(d, "hello"), 24);
  EXPECT_TRUE(Eventually([&] { return Unshipped(d) == 0; })) << Unshipped(d);

  // PostgreSQL goes away: invocations still answer, their rows wait on the node.
  pg.Stop();
  std::set<std::string> while_down;
  for (int i = 0; i < 10; ++i) {
    HttpResult r = HttpRequest(d.http_port(), "GET", "/function/hello");
    ASSERT_EQ(r.status, 200) << r.body << d.Logs();
    while_down.insert(r.Header("x-invocation-id"));
  }
  EXPECT_TRUE(Eventually([&] { return Unshipped(d) >= 10; })) << Unshipped(d);
  CommandResult unavailable = d.Ctl({"bill"});
  EXPECT_EQ(unavailable.exit_code, 1);  // faasd answered: the ledger is what is unavailable
  EXPECT_NE(unavailable.err.find("ledger_unavailable"), std::string::npos) << unavailable.err;
  EXPECT_NE(d.Logs().find("ledger.ship_failed"), std::string::npos);
  d.Kill9();  // no final flush: the rows are only in the node's ledger

  ASSERT_TRUE(pg.Start(&error)) << error;
  ASSERT_TRUE(d.Start(args)) << d.Logs();
  EXPECT_TRUE(Eventually([&] { return central_count("hello") == "34|34\n"; }))
      << central_count("hello") << d.Logs();
  std::set<std::string> listed = ListedIds(d, "hello");
  for (const std::string& id : while_down) {
    EXPECT_TRUE(listed.contains(id)) << id;
  }
  EXPECT_EQ(BilledInvocations(d, "hello"), 34);  // 25 - 1 deleted + 10, none twice
  EXPECT_EQ(d.Stop(), 0) << d.Logs();
}

}  // namespace
}  // namespace faas::testing
