// End-to-end: faasd with its registry on PostgreSQL (--store postgres://..., issue #16). A
// function deployed through one faasd is served by a second one with another data dir, which
// fetches the library from the database into its own verified cache.
#include <string>

#include <gtest/gtest.h>

#include "e2e/faasd_test.h"
#include "faasd_process.h"
#include "http_client.h"
#include "postgres_process.h"

namespace faas::testing {
namespace {

TEST(StoreE2E, TwoFaasdsShareOneRegistryOnPostgres) {
  PostgresProcess pg;
  FAAS_START_POSTGRES_OR_SKIP(pg, "faas");
  std::string error;
  const std::string store = pg.Url("faas");

  FaasdProcess first;
  ASSERT_TRUE(first.Start({"--store", store})) << first.Logs();
  CommandResult deployed = first.Ctl({"deploy", "hello", FunctionLib("hello")});
  ASSERT_EQ(deployed.exit_code, 0) << deployed.out << deployed.err << first.Logs();
  EXPECT_EQ(HttpRequest(first.http_port(), "GET", "/function/hello").status, 200) << first.Logs();
  std::string rows;
  ASSERT_TRUE(pg.Sql("faas",
                     "SELECT f.name || ':' || f.latest_version || ':' || "
                     "(SELECT count(*) FROM artifacts) FROM functions f",
                     &rows, &error))
      << error;
  EXPECT_EQ(rows, "hello:1:1\n");  // the registry is in PostgreSQL, not in first's data dir
  EXPECT_EQ(first.Stop(), 0) << first.Logs();

  FaasdProcess second;  // another data dir: nothing local but what it fetches
  ASSERT_TRUE(second.Start({"--store", store})) << second.Logs();
  HttpResult r = HttpRequest(second.http_port(), "GET", "/function/hello");
  EXPECT_EQ(r.status, 200) << r.body << second.Logs();
  CommandResult list = second.Ctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("hello"), std::string::npos) << list.out;
  EXPECT_EQ(second.Stop(), 0) << second.Logs();
}

TEST(StoreE2E, AnUnreachableStoreStopsFaasdWithAClearError) {
  TempDir nowhere;
  FaasdProcess d;
  EXPECT_FALSE(d.Start({"--store", "postgresql:///faas?host=" + nowhere.path()}));
  EXPECT_NE(d.Logs().find("faasd.store_failed"), std::string::npos) << d.Logs();
  EXPECT_NE(d.Logs().find("postgresql connect"), std::string::npos) << d.Logs();
}

}  // namespace
}  // namespace faas::testing
