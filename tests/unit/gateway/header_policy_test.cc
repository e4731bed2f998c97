// The header policy at the edge (header_policy.h) and W3C trace context (trace_context.h).
#include "header_policy.h"

#include <gtest/gtest.h>

#include "faas/gateway/trace_context.h"

namespace faas::gateway {
namespace {

TEST(HeaderPolicy, FunctionsCannotSetFramingOrPlatformHeaders) {
  for (const char* name : {"Content-Length", "transfer-encoding", "CONNECTION", "Keep-Alive",
                           "upgrade", "te", "Trailer", "Server-Timing", "X-Invocation-Id",
                           "x-faas-cold-start", "X-FAAS-anything", "Proxy-Authenticate"}) {
    EXPECT_TRUE(IsReservedResponseHeader(name)) << name;
  }
  for (const char* name : {"content-type", "x-custom", "tee", "set-cookie", "x-faa"}) {
    EXPECT_FALSE(IsReservedResponseHeader(name)) << name;
  }
}

TEST(HeaderPolicy, ClientsCannotSpoofPlatformHeaders) {
  HttpRequest req;
  req.headers = {{"x-faas-param-id", "spoofed"},
                 {"traceparent", "spoofed"},
                 {"authorization", "Bearer k"},
                 {"accept", "*/*"}};
  HeaderList out = FunctionHeaders(req, {{"id", "42"}}, /*strip_authorization=*/true, "tp");
  EXPECT_EQ(out, (HeaderList{{"accept", "*/*"}, {"x-faas-param-id", "42"}, {"traceparent", "tp"}}));
}

TEST(HeaderPolicy, PublicFunctionsSeeTheAuthorizationHeader) {
  HttpRequest req;
  req.headers = {{"authorization", "Basic abc"}};
  HeaderList out = FunctionHeaders(req, {}, /*strip_authorization=*/false, "tp");
  EXPECT_EQ(out, (HeaderList{{"authorization", "Basic abc"}, {"traceparent", "tp"}}));
}

TEST(TraceContext, ContinuesAValidTraceWithANewParent) {
  const std::string in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string trace_id;
  std::string out = ContinueTrace(&in, &trace_id);
  EXPECT_EQ(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_EQ(out.size(), 55u);
  EXPECT_EQ(out.substr(0, 36), in.substr(0, 36));
  EXPECT_NE(out.substr(36, 16), in.substr(36, 16));
  EXPECT_EQ(out.substr(52), "-01");
}

TEST(TraceContext, StartsANewTraceForInvalidInput) {
  for (std::string in : {std::string("garbage"),
                         std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                         std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
                         std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                         std::string("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}) {
    std::string trace_id;
    std::string out = ContinueTrace(&in, &trace_id);
    ASSERT_EQ(out.size(), 55u) << in;
    EXPECT_EQ(out.substr(0, 3), "00-");
    EXPECT_EQ(out.substr(52), "-00") << "a new trace is not sampled";
    EXPECT_EQ(out.substr(3, 32), trace_id);
    EXPECT_EQ(in.find(trace_id), std::string::npos) << in;
    std::string continued;  // well-formed: lower-case hex that a next hop continues
    ContinueTrace(&out, &continued);
    EXPECT_EQ(continued, trace_id) << out;
  }
  std::string a;
  std::string b;
  ContinueTrace(nullptr, &a);
  ContinueTrace(nullptr, &b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace faas::gateway
