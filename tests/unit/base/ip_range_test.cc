// faas/base/ip_range.h: addresses, CIDR parse/format/contains, and the one reserved table that
// both the callback policy (gateway) and the egress policy (sandbox) refuse: one test per row.
#include "faas/base/ip_range.h"

#include <netinet/in.h>

#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "unit/base/ip_literals.h"

namespace faas {
namespace {

using ::faas::testing::Ip;
using ::faas::testing::Range;

TEST(IpAddress, KeepsIpv4InTheMappedForm) {
  EXPECT_EQ(Ip("10.0.0.1"), Ip("::ffff:10.0.0.1"));
  EXPECT_TRUE(Ip("10.0.0.1").IsV4());
  EXPECT_FALSE(Ip("::1").IsV4());
  EXPECT_EQ(Ip("10.0.0.1").V4(), 0x0a000001u);
  EXPECT_EQ(IpAddress::FromV4(0x0a000201u), Ip("10.0.2.1"));
  EXPECT_EQ(Ip("::ffff:127.0.0.1").ToString(), "127.0.0.1");
  EXPECT_EQ(Ip("0:0:0:0:0:0:0:1").ToString(), "::1");
  for (const char* bad : {"", "localhost", "10.0.0", "0x7f000001", "10.0.0.0/8", "::g"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

TEST(IpAddress, FromSockaddrTakesBothFamiliesOnly) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(0x7f000001);
  EXPECT_EQ(IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in)), Ip("127.0.0.1"));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr.s6_addr[15] = 1;
  EXPECT_EQ(IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6)), Ip("::1"));
  sockaddr other{};
  other.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::FromSockaddr(&other).has_value());
  EXPECT_FALSE(IpAddress::FromSockaddr(nullptr).has_value());
}

TEST(Cidr, ParsesIpv4AndIpv6RangesAndSingleAddresses) {
  EXPECT_EQ(Range("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(Range("127.0.0.1").ToString(), "127.0.0.1/32");
  EXPECT_EQ(Range("192.0.2.7").ToString(), "192.0.2.7/32");
  EXPECT_EQ(Range("fd00::/8").ToString(), "fd00::/8");
  EXPECT_EQ(Range("::1").ToString(), "::1/128");
  EXPECT_EQ(Range("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_EQ(Range("::ffff:10.0.0.0/104"), Range("10.0.0.0/8"));
  EXPECT_TRUE(Range("10.0.0.0/8").IsV4());
  EXPECT_EQ(Range("10.0.0.0/8").PrefixLength(), 8);
  EXPECT_FALSE(Range("fc00::/7").IsV4());
  EXPECT_EQ(Range("fc00::/7").PrefixLength(), 7);
  EXPECT_FALSE(Range("::/0").IsV4());
}

TEST(Cidr, RefusesWhatIsNotARange) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1",
                          "10.0.0.0/8x", "host.example/8", "example.com", "0x7f000001/32",
                          "10.0.0/8", "10.0.0.1/8", "10.1.2.3/8", "fd00::1/8", "10.0.0.0/8/8"}) {
    Result<Cidr> c = ParseCidr(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << bad;
      EXPECT_NE(c.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
          << c.status().message();
    }
  }
  EXPECT_NE(ParseCidr("10.0.0.1/8").status().message().find("did you mean 10.0.0.0/8"),
            std::string::npos);
}

TEST(Cidr, ContainsAddresses) {
  EXPECT_TRUE(Range("10.0.0.0/8").Contains(Ip("10.255.1.2")));
  EXPECT_FALSE(Range("10.0.0.0/8").Contains(Ip("11.0.0.0")));
  EXPECT_TRUE(Range("172.16.0.0/12").Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(Range("172.16.0.0/12").Contains(Ip("172.32.0.0")));
  // An IPv4 range holds the IPv4-mapped IPv6 spelling of its addresses too.
  EXPECT_TRUE(Range("127.0.0.0/8").Contains(Ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(Range("::/0").Contains(Ip("1.2.3.4")));  // ::/0 holds everything
  EXPECT_TRUE(Range("0.0.0.0/0").Contains(Ip("203.0.113.1")));
  EXPECT_FALSE(Range("0.0.0.0/0").Contains(Ip("::1")));  // but 0.0.0.0/0 only IPv4
}

TEST(Cidr, ContainsRangesWhollyInside) {
  EXPECT_TRUE(Range("10.0.0.0/8").Contains(Range("10.0.2.3")));
  EXPECT_TRUE(Range("10.0.0.0/8").Contains(Range("10.0.0.0/8")));
  EXPECT_FALSE(Range("10.0.0.0/16").Contains(Range("10.0.0.0/8")));
  EXPECT_FALSE(Range("10.0.0.0/8").Contains(Range("11.0.0.1")));
  EXPECT_TRUE(Range("0.0.0.0/0").Contains(Range("203.0.113.1")));
}

TEST(HostAddresses, ListsThisHostsInterfaces) {
  Result<std::vector<IpAddress>> own = HostAddresses();
  ASSERT_TRUE(own.ok()) << own.status().ToString();
}

// One row of the reserved table: what ReservedRangeOf names for addresses inside it, and
// addresses just outside it (which may fall in a neighbouring row, never in this one).
struct RowCase {
  const char* names;
  std::vector<const char*> inside;
  std::vector<const char*> outside;
};

const std::vector<RowCase>& RowCases() {
  static const std::vector<RowCase> cases = {
      {"unspecified (\"this host\") 0.0.0.0/8", {"0.0.0.0", "0.255.255.255"}, {"1.0.0.0"}},
      {"private 10.0.0.0/8", {"10.1.2.3", "10.0.2.2"}, {"9.255.255.255", "11.0.0.0"}},
      {"shared address space (CGNAT) 100.64.0.0/10",
       {"100.64.0.1", "100.127.255.255"},
       {"100.63.255.255", "100.128.0.0"}},
      {"loopback 127.0.0.0/8", {"127.0.0.1", "127.255.255.254"}, {"126.255.255.255", "128.0.0.0"}},
      {"link-local (cloud metadata) 169.254.0.0/16",
       {"169.254.169.254"},
       {"169.253.255.255", "169.255.0.0"}},
      {"private 172.16.0.0/12", {"172.16.0.1", "172.31.255.255"}, {"172.15.255.255", "172.32.0.0"}},
      {"IETF protocol assignments 192.0.0.0/24", {"192.0.0.170"}, {"191.255.255.255", "192.0.1.0"}},
      {"private 192.168.0.0/16", {"192.168.1.1"}, {"192.167.255.255", "192.169.0.0"}},
      {"benchmarking 198.18.0.0/15",
       {"198.18.0.1", "198.19.255.255"},
       {"198.17.255.255", "198.20.0.0"}},
      {"multicast 224.0.0.0/4", {"224.0.0.1", "239.255.255.250"}, {"223.255.255.255"}},
      {"reserved and broadcast 240.0.0.0/4", {"240.0.0.1", "255.255.255.255"}, {"239.255.255.255"}},
      {"unspecified ::/128", {"::"}, {"::1"}},
      {"loopback ::1/128", {"::1"}, {"::2", "::2:0:0"}},
      {"IPv4-compatible (deprecated) ::/96", {"::127.0.0.1", "::2"}, {"::1:0:0", "::1"}},
      {"NAT64 local use 64:ff9b:1::/48", {"64:ff9b:1::1"}, {"64:ff9b:2::1"}},
      {"unique local (private) fc00::/7", {"fc00::1", "fd12:3456::1"}, {"fbff:ffff::", "fe00::"}},
      {"link-local fe80::/10", {"fe80::1", "febf::1"}, {"fe7f::", "fec0::1"}},
      {"site-local (deprecated) fec0::/10", {"fec0::1", "feff::1"}, {"febf::1", "ff00::1"}},
      {"multicast ff00::/8", {"ff02::1", "ffff::1"}, {"fe00::"}},
  };
  return cases;
}

void PrintTo(const RowCase& c, std::ostream* os) {
  *os << c.names;
}

class ReservedRow : public ::testing::TestWithParam<RowCase> {};

TEST_P(ReservedRow, NamesItsAddressesAndNoOthers) {
  const RowCase& c = GetParam();
  for (const char* in : c.inside) {
    EXPECT_EQ(ReservedRangeOf(Ip(in)), std::optional<std::string>(c.names)) << in;
  }
  for (const char* out : c.outside) {
    EXPECT_NE(ReservedRangeOf(Ip(out)), std::optional<std::string>(c.names)) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ReservedRow, ::testing::ValuesIn(RowCases()),
                         [](const ::testing::TestParamInfo<RowCase>& row) {
                           return "Row" + std::to_string(row.index);
                         });

TEST(ReservedRanges, EveryRowHasExactlyOneCase) {
  std::set<std::string> rows;
  for (const ReservedRange& r : ReservedRanges()) {
    EXPECT_TRUE(rows.insert(r.ToString()).second) << "two rows " << r.ToString();
  }
  std::set<std::string> cased;
  for (const RowCase& c : RowCases()) {
    EXPECT_TRUE(cased.insert(c.names).second) << "two cases for " << c.names;
  }
  EXPECT_EQ(rows, cased);
}

TEST(ReservedRanges, Ipv4RowsComeFirst) {
  bool seen_v6 = false;
  for (const ReservedRange& r : ReservedRanges()) {
    EXPECT_FALSE(seen_v6 && r.range.IsV4()) << r.ToString();
    seen_v6 = seen_v6 || !r.range.IsV4();
  }
}

TEST(ReservedRangeOf, MappedSpellingsAreTheirIpv4Address) {
  EXPECT_EQ(ReservedRangeOf(Ip("::ffff:127.0.0.1")), "loopback 127.0.0.0/8");
  EXPECT_EQ(ReservedRangeOf(Ip("::ffff:169.254.169.254")),
            "link-local (cloud metadata) 169.254.0.0/16");
  EXPECT_EQ(ReservedRangeOf(Ip("::ffff:10.0.0.1")), "private 10.0.0.0/8");
  EXPECT_EQ(ReservedRangeOf(Ip("::ffff:0.0.0.0")), "unspecified (\"this host\") 0.0.0.0/8");
  EXPECT_FALSE(ReservedRangeOf(Ip("::ffff:8.8.8.8")).has_value());
}

// IPv4 embedded in NAT64 and 6to4 addresses: a translator or relay would reach it.
TEST(ReservedRangeOf, Ipv4InsideNat64And6to4CountsAsThatAddress) {
  EXPECT_EQ(ReservedRangeOf(Ip("64:ff9b::7f00:1")),
            "loopback 127.0.0.0/8 (embedded as 64:ff9b::7f00:1)");
  EXPECT_EQ(ReservedRangeOf(Ip("2002:a9fe:a9fe::1")),
            "link-local (cloud metadata) 169.254.0.0/16 (embedded as 2002:a9fe:a9fe::1)");
  EXPECT_FALSE(ReservedRangeOf(Ip("64:ff9b::808:808")).has_value());
  EXPECT_FALSE(ReservedRangeOf(Ip("2002:808:808::1")).has_value());
}

TEST(ReservedRangeOf, PublicAddressesAreInNoRow) {
  for (const char* pub : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "192.0.2.2", "203.0.113.9",
                          "2606:4700::1111", "2001:db8::7"}) {
    EXPECT_FALSE(ReservedRangeOf(Ip(pub)).has_value()) << pub;
  }
}

}  // namespace
}  // namespace faas
