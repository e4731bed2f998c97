// AddressPolicy: the ranges async callbacks may not reach (SSRF, issue #13), one test per row of
// the blocked table, the spellings getaddrinfo accepts, --callback-allow and the host's own
// addresses (a fake lister: no dependence on this machine's interfaces).
#include "faas/gateway/address_policy.h"

#include <netinet/in.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace faas::gateway {
namespace {

IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> a = IpAddress::Parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

Cidr Range(const std::string& text) {
  Result<Cidr> c = ParseCidr(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().ToString();
  return c.ok() ? *c : Cidr{};
}

// A policy that knows no host addresses unless given some.
AddressPolicy Policy(std::vector<Cidr> allowed = {}, std::vector<IpAddress> own = {}) {
  return AddressPolicy(std::move(allowed), [own] { return Result<std::vector<IpAddress>>(own); });
}

TEST(Cidr, ParsesIpv4AndIpv6RangesAndSingleAddresses) {
  EXPECT_EQ(Range("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(Range("127.0.0.1").ToString(), "127.0.0.1/32");
  EXPECT_EQ(Range("fd00::/8").ToString(), "fd00::/8");
  EXPECT_EQ(Range("::1").ToString(), "::1/128");
  EXPECT_EQ(Range("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_TRUE(Range("10.0.0.0/8").Contains(Ip("10.255.1.2")));
  EXPECT_FALSE(Range("10.0.0.0/8").Contains(Ip("11.0.0.0")));
  EXPECT_TRUE(Range("172.16.0.0/12").Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(Range("172.16.0.0/12").Contains(Ip("172.32.0.0")));
  // An IPv4 range holds the IPv4-mapped IPv6 spelling of its addresses too.
  EXPECT_TRUE(Range("127.0.0.0/8").Contains(Ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(Range("::/0").Contains(Ip("1.2.3.4")));  // ::/0 allows everything
}

TEST(Cidr, RefusesWhatIsNotARange) {
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/8x",
        "host.example/8", "0x7f000001/32", "10.0.0.1/8", "fd00::1/8", "10.0.0.0/8/8"}) {
    Result<Cidr> c = ParseCidr(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_NE(ParseCidr("10.0.0.1/8").status().message().find("did you mean 10.0.0.0/8"),
            std::string::npos);
}

// One row of the blocked table: an address inside, what the refusal names, and addresses just
// outside that must pass.
struct Row {
  const char* inside;
  const char* names;
  std::vector<const char*> outside;
};

TEST(AddressPolicy, BlocksEveryRowOfTheTable) {
  const Row rows[] = {
      {"0.0.0.0", "0.0.0.0/8", {"1.0.0.0"}},
      {"0.255.255.255", "0.0.0.0/8", {}},
      {"10.1.2.3", "private 10.0.0.0/8", {"9.255.255.255", "11.0.0.0"}},
      {"100.64.0.1", "CGNAT", {"100.63.255.255", "100.128.0.0"}},
      {"127.0.0.1", "loopback 127.0.0.0/8", {"128.0.0.0", "126.255.255.255"}},
      {"127.255.255.254", "loopback", {}},
      {"169.254.169.254", "link-local (cloud metadata) 169.254.0.0/16", {"169.255.0.0"}},
      {"172.16.0.1", "private 172.16.0.0/12", {"172.15.255.255", "172.32.0.0"}},
      {"192.0.0.170", "192.0.0.0/24", {"192.0.1.0"}},
      {"192.168.1.1", "private 192.168.0.0/16", {"192.169.0.0"}},
      {"198.18.0.1", "benchmarking", {"198.20.0.0"}},
      {"224.0.0.1", "multicast 224.0.0.0/4", {"223.255.255.255"}},
      {"239.255.255.250", "multicast", {}},
      {"255.255.255.255", "broadcast 240.0.0.0/4", {}},
      {"240.0.0.1", "240.0.0.0/4", {}},
      {"::", "unspecified ::/128", {}},
      {"::1", "loopback ::1/128", {"::2:0:0"}},
      {"::127.0.0.1", "IPv4-compatible", {}},
      {"64:ff9b:1::1", "NAT64 local use", {}},
      {"fc00::1", "unique local (private) fc00::/7", {"fbff:ffff::"}},
      {"fd12:3456::1", "unique local", {"fe00::"}},
      {"fe80::1", "link-local fe80::/10", {"fe7f::"}},
      {"febf::1", "link-local", {}},
      {"fec0::1", "site-local", {}},
      {"ff02::1", "multicast ff00::/8", {}},
      // IPv4-mapped IPv6 forms are their IPv4 address.
      {"::ffff:127.0.0.1", "loopback 127.0.0.0/8", {"::ffff:8.8.8.8"}},
      {"::ffff:169.254.169.254", "cloud metadata", {}},
      {"::ffff:10.0.0.1", "private", {}},
      {"::ffff:0.0.0.0", "0.0.0.0/8", {}},
      // IPv4 embedded in NAT64 and 6to4 addresses: a translator or relay would reach it.
      {"64:ff9b::7f00:1",
       "loopback 127.0.0.0/8 (embedded as 64:ff9b::7f00:1)",
       {"64:ff9b::808:808"}},
      {"2002:a9fe:a9fe::1", "cloud metadata", {"2002:808:808::1"}},
  };
  AddressPolicy policy = Policy();
  for (const Row& row : rows) {
    Status s = policy.Check(Ip(row.inside));
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << row.inside;
    EXPECT_NE(s.message().find(row.names), std::string::npos) << row.inside << ": " << s.message();
    EXPECT_NE(s.message().find("--callback-allow"), std::string::npos) << s.message();
    for (const char* out : row.outside) {
      EXPECT_TRUE(policy.Check(Ip(out)).ok()) << out << " is outside " << row.names;
    }
  }
  for (const char* pub : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111"}) {
    EXPECT_TRUE(policy.Check(Ip(pub)).ok()) << pub;
    EXPECT_FALSE(BlockedRange(Ip(pub)).has_value()) << pub;
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
