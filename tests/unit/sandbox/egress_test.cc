// The egress policy of outbound functions (sandbox/src/egress.cc): what the namespace refuses.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "faas/sandbox/network.h"

namespace faas::sandbox {
namespace {

Cidr C(const char* text) { return *ParseCidr(text); }

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

TEST(ParseCidr, AcceptsNetworksAndAddresses) {
  EXPECT_EQ(C("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(C("192.0.2.7").ToString(), "192.0.2.7/32");
  EXPECT_EQ(C("0.0.0.0/0").ToString(), "0.0.0.0/0");
}

TEST(ParseCidr, RefusesWhatIsNotAnIpv4Network) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.1.2.3/8", "fc00::/7",
                          "example.com", "10.0.0/8"}) {
    EXPECT_FALSE(ParseCidr(bad).ok()) << bad;
  }
}

TEST(Cidr, Contains) {
  EXPECT_TRUE(C("10.0.0.0/8").Contains(C("10.0.2.3")));
  EXPECT_TRUE(C("10.0.0.0/8").Contains(C("10.0.0.0/8")));
  EXPECT_FALSE(C("10.0.0.0/16").Contains(C("10.0.0.0/8")));
  EXPECT_FALSE(C("10.0.0.0/8").Contains(C("11.0.0.1")));
  EXPECT_TRUE(C("0.0.0.0/0").Contains(C("203.0.113.1")));
}

TEST(DeniedNetworks, FixedRangesAndEveryHostAddress) {
  auto denied = DeniedNetworks({C("192.0.2.2"), C("127.0.0.1"), C("203.0.113.9")}, {});
  for (const char* n : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
                        "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4",
                        "240.0.0.0/4", "192.0.2.2/32", "203.0.113.9/32"}) {
    EXPECT_TRUE(Has(denied, n)) << n << " in " << ::testing::PrintToString(Strings(denied));
  }
}

TEST(DeniedNetworks, AnAllowRemovesWhatItCoversOnly) {
  auto denied = DeniedNetworks({C("192.0.2.2"), C("10.1.0.5")},
                               {C("192.0.2.2/32"), C("10.0.0.0/8")});
  EXPECT_FALSE(Has(denied, "192.0.2.2/32"));
  EXPECT_FALSE(Has(denied, "10.0.0.0/8"));
  EXPECT_FALSE(Has(denied, "10.1.0.5/32"));  // the operator allowed that network
  EXPECT_TRUE(Has(denied, "169.254.0.0/16"));
  EXPECT_TRUE(Has(denied, "172.16.0.0/12"));
  // A narrower allow leaves the broader prohibit; its own route (via the gateway) wins.
  auto narrow = DeniedNetworks({}, {C("10.20.0.0/16")});
  EXPECT_TRUE(Has(narrow, "10.0.0.0/8"));
}

TEST(EgressWorkerArgs, CarriesDeniesThenAllows) {
  EgressPolicy p;
  p.slirp_path = "/usr/bin/slirp4netns";
  p.allow = {C("10.20.0.0/16")};
  auto args = EgressWorkerArgs(p, {C("192.0.2.2")});
  ASSERT_GE(args.size(), 4u);
  EXPECT_EQ(args[0], "--egress-deny");
  EXPECT_EQ(args[args.size() - 2], "--egress-allow");
  EXPECT_EQ(args.back(), "10.20.0.0/16");
  EXPECT_NE(std::find(args.begin(), args.end(), "192.0.2.2/32"), args.end());
}

}  // namespace
}  // namespace faas::sandbox
