// End-to-end: `faasctl node list|drain` against a single-machine faasd (SQLite): there is no
// node registry, so faasd says so (FAILED_PRECONDITION, exit 1) instead of listing nothing.
// The registry itself is tested against PostgreSQL in tests/integration/registry/nodes_test.cc
// and tests/integration/membership_test.cc.
#include <string>

#include <gtest/gtest.h>

#include "e2e/faasd_test.h"
#include "faasd_process.h"

namespace faas::testing {
namespace {

class NodesE2E : public FaasdTest {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Logs(); }
};

TEST_F(NodesE2E, WithoutPostgresqlNodeCommandsSayTheStoreHasNoNodes) {
  for (const auto& args :
       {std::vector<std::string>{"nodes"}, std::vector<std::string>{"node", "list", "-o", "json"},
        std::vector<std::string>{"node", "drain", "n1"}}) {
    CommandResult r = d_.Ctl(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("--store postgresql"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace faas::testing
