// The egress policy of outbound functions (sandbox/src/egress.cc): what the namespace refuses.
// The reserved table itself is tested row by row in tests/unit/base/ip_range_test.cc.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "faas/sandbox/network.h"

namespace faas::sandbox {
namespace {

Cidr C(const char* text) {
  return *ParseEgressNetwork(text);
}
IpAddress A(const char* text) {
  return *IpAddress::Parse(text);
}

std::vector<std::string> Strings(const std::vector<Cidr>& v) {
  std::vector<std::string> out;
  for (const Cidr& c : v) {
    out.push_back(c.ToString());
  }
  return out;
}

bool Has(const std::vector<Cidr>& v, const char* text) {
  return std::find(v.begin(), v.end(), C(text)) != v.end();
}

TEST(ParseEgressNetwork, AcceptsIpv4NetworksAndAddresses) {
  EXPECT_EQ(C("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(C("192.0.2.7").ToString(), "192.0.2.7/32");
  EXPECT_EQ(C("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_EQ(C(kSlirpGateway).ToString(), "10.0.2.2/32");
  EXPECT_EQ(C(kSlirpNetwork).PrefixLength(), 24);
}

TEST(ParseEgressNetwork, RefusesWhatIsNotAnIpv4Network) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.1.2.3/8", "fc00::/7",
                          "::1", "example.com", "10.0.0/8"}) {
    Result<Cidr> c = ParseEgressNetwork(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_EQ(ParseEgressNetwork("fc00::/7").status().message(),
            "\"fc00::/7\" is not an IPv4 network (IPv6 is off for functions)");
}

TEST(DeniedNetworks, EveryIpv4ReservedRangeAndEveryHostAddress) {
  auto denied =
      DeniedNetworks({A("192.0.2.2"), A("127.0.0.1"), A("203.0.113.9"), A("2001:db8::7")}, {});
  std::size_t v4_rows = 0;
  for (const ReservedRange& r : ReservedRanges()) {
    if (r.range.IsV4()) {
      ++v4_rows;
      EXPECT_NE(std::find(denied.begin(), denied.end(), r.range), denied.end()) << r.ToString();
    }
  }
  for (const char* n : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                        "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15",
                        "224.0.0.0/4", "240.0.0.0/4", "192.0.2.2/32", "203.0.113.9/32"}) {
    EXPECT_TRUE(Has(denied, n)) << n << " in " << ::testing::PrintToString(Strings(denied));
  }
  // Only IPv4 (IPv6 is off in the namespace); 127.0.0.1 is inside the loopback row already.
  EXPECT_EQ(denied.size(), v4_rows + 3) << ::testing::PrintToString(Strings(denied));
  for (const Cidr& c : denied) {
    EXPECT_TRUE(c.IsV4()) << c.ToString();
  }
}

TEST(DeniedNetworks, AnAllowRemovesWhatItCoversOnly) {
  auto denied =
      DeniedNetworks({A("192.0.2.2"), A("10.1.0.5")}, {C("192.0.2.2/32"), C("10.0.0.0/8")});
  EXPECT_FALSE(Has(denied, "192.0.2.2/32"));
  EXPECT_FALSE(Has(denied, "10.0.0.0/8"));
  EXPECT_FALSE(Has(denied, "10.1.0.5/32"));  // the operator allowed that network
  EXPECT_TRUE(Has(denied, "169.254.0.0/16"));
  EXPECT_TRUE(Has(denied, "172.16.0.0/12"));
  // A narrower allow leaves the broader prohibit; its own route (via the gateway) wins.
  auto narrow = DeniedNetworks({}, {C("10.20.0.0/16")});
  EXPECT_TRUE(Has(narrow, "10.0.0.0/8"));
}

// slirp's gateway 10.0.2.2 lies in the denied 10.0.0.0/8; the worker routes it as a /32 of its
// own (network.cc), which is more specific than any denied network.
TEST(DeniedNetworks, NothingDeniedIsNarrowerThanTheSlirpGatewayRoute) {
  for (const Cidr& c : DeniedNetworks({}, {})) {
    EXPECT_LT(c.PrefixLength(), 32) << c.ToString();
  }
}

TEST(EgressWorkerArgs, CarriesDeniesThenAllows) {
  EgressPolicy p;
  p.slirp_path = "/usr/bin/slirp4netns";
  p.allow = {C("10.20.0.0/16")};
  auto args = EgressWorkerArgs(p, {A("192.0.2.2")});
  ASSERT_GE(args.size(), 4u);
  EXPECT_EQ(args[0], "--egress-deny");
  EXPECT_EQ(args[args.size() - 2], "--egress-allow");
  EXPECT_EQ(args.back(), "10.20.0.0/16");
  EXPECT_NE(std::find(args.begin(), args.end(), "192.0.2.2/32"), args.end());
  // Every value the worker gets back parses as it will parse it.
  for (std::size_t i = 1; i < args.size(); i += 2) {
    EXPECT_TRUE(ParseEgressNetwork(args[i]).ok()) << args[i];
  }
}

}  // namespace
}  // namespace faas::sandbox
