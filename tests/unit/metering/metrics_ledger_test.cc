// faas_ledger_unshipped_rows: exported only where a ledger shipper feeds it (a PostgreSQL store).
#include <cstdint>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/metering/metrics.h"

namespace faas::metering {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsLedger, UnshippedRowsIsAGaugeReadAtEachScrape) {
  Metrics m;
  EXPECT_THAT(m.Render(), Not(HasSubstr("faas_ledger_unshipped_rows")));
  uint64_t unshipped = 7;
  m.SetLedgerSource([&unshipped] { return unshipped; });
  EXPECT_THAT(m.Render(), HasSubstr("# TYPE faas_ledger_unshipped_rows gauge\n"
                                    "faas_ledger_unshipped_rows 7\n"));
  unshipped = 0;
  EXPECT_THAT(m.Render(), HasSubstr("\nfaas_ledger_unshipped_rows 0\n"));
}

}  // namespace
}  // namespace faas::metering
