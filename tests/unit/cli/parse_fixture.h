// Shared fixture for faasctl parsing tests: parses argv into an Invocation and unwraps the
// expected command, or returns the usage error's message.
#pragma once

#include <stdlib.h>

#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "faas/cli/command.h"

namespace faas::cli {

class ParseFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("FAAS_SERVER");
    unsetenv("FAAS_TOKEN");
  }
  void TearDown() override {
    unsetenv("FAAS_SERVER");
    unsetenv("FAAS_TOKEN");
  }

  // Parses `args`, expects success and a command of type T; returns it (T{} on failure).
  template <typename T>
  T ParseAs(const std::vector<std::string>& args) {
    Result<Invocation> inv = Parse(args);
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    if (!inv.ok()) {
      return T{};
    }
    last_global_ = inv->global;
    const T* cmd = std::get_if<T>(&inv->command);
    EXPECT_NE(cmd, nullptr);
    return cmd == nullptr ? T{} : *cmd;
  }

  // Parses `args`, expects a usage error (InvalidArgument) and returns its message.
  std::string ErrorOf(const std::vector<std::string>& args) {
    Result<Invocation> inv = Parse(args);
    EXPECT_FALSE(inv.ok());
    if (inv.ok()) {
      return "";
    }
    EXPECT_EQ(inv.status().code(), StatusCode::kInvalidArgument);
    return inv.status().message();
  }

  GlobalOptions last_global_;
};

}  // namespace faas::cli
