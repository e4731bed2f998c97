// Test helpers for faas/base/ip_range.h: an address or range from its text, with a test failure
// (and a zero value) when the text does not parse. Shared by the base and gateway unit tests.
#pragma once

#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "faas/base/ip_range.h"

namespace faas::testing {

inline IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> a = IpAddress::Parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

inline Cidr Range(const std::string& text) {
  Result<Cidr> c = ParseCidr(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().ToString();
  return c.ok() ? *c : Cidr{};
}

}  // namespace faas::testing
