// The common ground of the e2e suites: a real faasd per test whose log is printed when the test
// fails, faasctl that must succeed, and the check of docs/http-api.md's error shape.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faasd_process.h"
#include "http_client.h"

namespace faas::testing {

// The docs/http-api.md error JSON with `status` and `code`, a message, and the invocation id of the
// X-Invocation-Id header.
inline void ExpectError(const HttpResult& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  EXPECT_EQ(j["error"]["code"], code) << r.body;
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << r.body;
  EXPECT_EQ(j["error"]["invocation_id"], r.Header("x-invocation-id")) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
}

// Polls `pred` every 20 ms until it holds or `timeout` passes; returns whether it held.
template <typename Pred>
bool PollUntil(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout;
       std::chrono::steady_clock::now() < deadline;) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// The value of the sample `series` (name and labels exactly as /metrics exposes them) in a
// /metrics body, or `absent` when it is not there.
inline double Sample(const std::string& metrics, const std::string& series, double absent = -1) {
  std::size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) {
    return absent;
  }
  return std::strtod(metrics.c_str() + at + series.size() + 2, nullptr);
}

// A cluster node's /readyz "load" (< 0 when it does not answer one).
inline double ReadyLoad(int http_port) {
  HttpResult r = HttpRequest(http_port, "GET", "/readyz", "", {}, std::chrono::seconds(2));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || j.is_discarded() || !j.contains("load")) {
    return -1;
  }
  return j["load"].get<double>();
}

// Subclasses start d_ in SetUp (with the flags they need).
class FaasdTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- faasd log ----\n%s\n", d_.Logs().c_str());
    }
  }
  // faasctl against d_ that must exit 0.
  void Ctl0(const std::vector<std::string>& args) {
    CommandResult r = d_.Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  // `faasctl ARGS -o json` against d_, which must exit 0; its output parsed ({} if not JSON).
  nlohmann::json CtlJson(std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    CommandResult r = d_.Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
  }

  FaasdProcess d_;
};

}  // namespace faas::testing
