// A SQLite Registry on a fresh temp dir, reopened on demand, for the tests of its files on disk
// (the behaviours both backends share: tests/integration/registry/).
#pragma once

#include <memory>
#include <utility>

#include <gtest/gtest.h>

#include "faas/store/registry.h"

#include "unit/store/temp_dir.h"

namespace faas::store::testing {

class RegistryFixture : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the registry (if open) and opens the same directory again.
  void Reopen() {
    reg_.reset();
    Result<std::unique_ptr<Registry>> r = Registry::Open(dir_.Path());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reg_ = std::move(r).value();
  }

  TempDir dir_;
  std::unique_ptr<Registry> reg_;
};

}  // namespace faas::store::testing
