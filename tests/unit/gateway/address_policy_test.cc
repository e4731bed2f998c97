// AddressPolicy: the ranges async callbacks may not reach (SSRF, issue #13): every row of the
// reserved table (one test per row in tests/unit/base/ip_range_test.cc), the spellings
// getaddrinfo accepts, --callback-allow and the host's own addresses (a fake lister: no
// dependence on this machine's interfaces).
#include "faas/gateway/address_policy.h"

#include <netinet/in.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "unit/base/ip_literals.h"

namespace faas::gateway {
namespace {

using ::faas::testing::Ip;
using ::faas::testing::Range;

// A policy that knows no host addresses unless given some.
AddressPolicy Policy(std::vector<Cidr> allowed = {}, std::vector<IpAddress> own = {}) {
  return AddressPolicy(std::move(allowed), [own] { return Result<std::vector<IpAddress>>(own); });
}

// Every row of the one reserved table (its own tests: tests/unit/base/ip_range_test.cc) is
// refused, with the row's name and how to allow it.
TEST(AddressPolicy, BlocksEveryReservedRange) {
  AddressPolicy policy = Policy();
  for (const ReservedRange& row : ReservedRanges()) {
    IpAddress inside = row.range.base;  // not the base itself: :: is in ::/128 before ::/96
    if (row.range.prefix < 127) {
      inside.bytes[15] |= 2;
    }
    Status s = policy.Check(inside);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << row.ToString();
    EXPECT_NE(s.message().find(" is in a blocked range: " + row.ToString()), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("; faasd --callback-allow CIDR admits a range"), std::string::npos)
        << s.message();
  }
  // Other spellings of a blocked address are blocked too.
  for (const char* other : {"::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1"}) {
    EXPECT_EQ(policy.Check(Ip(other)).code(), StatusCode::kPermissionDenied) << other;
  }
  for (const char* pub : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111"}) {
    EXPECT_TRUE(policy.Check(Ip(pub)).ok()) << pub;
  }
}

TEST(AddressPolicy, BlocksTheHostsOwnAddresses) {
  AddressPolicy policy = Policy({}, {Ip("203.0.113.7"), Ip("2001:db8::7")});
  Status s = policy.Check(Ip("203.0.113.7"));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("an address of this host"), std::string::npos) << s.message();
  EXPECT_FALSE(policy.Check(Ip("::ffff:203.0.113.7")).ok());
  EXPECT_FALSE(policy.Check(Ip("2001:db8::7")).ok());
  EXPECT_TRUE(policy.Check(Ip("203.0.113.8")).ok());
}

TEST(AddressPolicy, FailsClosedWhenTheHostsAddressesCannotBeListed) {
  AddressPolicy policy({}, [] { return Result<std::vector<IpAddress>>(UnavailableError("no")); });
  EXPECT_FALSE(policy.Check(Ip("8.8.8.8")).ok());
}

TEST(AddressPolicy, AnAllowedRangePassesAndNothingElse) {
  AddressPolicy policy = Policy({Range("127.0.0.0/8"), Range("fd00:1::/32")}, {Ip("127.0.0.1")});
  EXPECT_TRUE(policy.Check(Ip("127.0.0.1")).ok());  // allowed beats "own address" too
  EXPECT_TRUE(policy.Check(Ip("::ffff:127.0.0.1")).ok());
  EXPECT_TRUE(policy.Check(Ip("fd00:1::5")).ok());
  EXPECT_FALSE(policy.Check(Ip("::1")).ok());
  EXPECT_FALSE(policy.Check(Ip("fd00:2::5")).ok());
  EXPECT_FALSE(policy.Check(Ip("169.254.169.254")).ok());
  EXPECT_FALSE(policy.Check(Ip("10.0.0.1")).ok());
}

// Every spelling of loopback getaddrinfo(3) accepts resolves to an address that is checked.
TEST(AddressPolicy, ResolveRefusesEverySpellingOfLoopback) {
  AddressPolicy policy = Policy();
  for (const char* host :
       {"127.0.0.1", "localhost", "0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.0.0.1",
        "017700000001", "::ffff:127.0.0.1", "::ffff:7f00:1", "::1", "0:0:0:0:0:0:0:1", "0",
        "0.0.0.0", "::", "169.254.169.254", "0xa9fea9fe", "2852039166"}) {
    Result<std::vector<SocketAddress>> r = policy.Resolve(host, 80);
    ASSERT_FALSE(r.ok()) << host;
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied)
        << host << ": " << r.status().ToString();
  }
}

TEST(AddressPolicy, ResolveReturnsTheCheckedAddressWithThePort) {
  AddressPolicy policy = Policy({Range("127.0.0.0/8")});
  Result<std::vector<SocketAddress>> r = policy.Resolve("0x7f000002", 8080);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const auto* in = reinterpret_cast<const sockaddr_in*>(r->front().Get());
  ASSERT_EQ(in->sin_family, AF_INET);
  EXPECT_EQ(ntohs(in->sin_port), 8080);
  EXPECT_EQ(IpAddress::FromSockaddr(r->front().Get())->ToString(), "127.0.0.2");
  EXPECT_EQ(r->front().len, sizeof(sockaddr_in));
}

TEST(AddressPolicy, ResolveSaysWhenANameDoesNotExist) {
  Result<std::vector<SocketAddress>> r =
      Policy().Resolve("no-such-host.invalid", 80);  // RFC 2606: never resolves
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kNotFound ||
              r.status().code() == StatusCode::kUnavailable)
      << r.status().ToString();
}

}  // namespace
}  // namespace faas::gateway
