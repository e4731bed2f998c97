#include "edge_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "faas/gateway/errors.h"

namespace faas::gateway {
namespace {

std::string FormatRate(double rate) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%g/s", rate);
  return buf;
}

}  // namespace

EdgeChecks::EdgeChecks(metering::Metrics* metrics, Limiter* limiter)
    : metrics_(metrics), limiter_(limiter != nullptr ? limiter : &local_limiter_) {
  SetKeys(nullptr);
}

void EdgeChecks::SetKeys(std::shared_ptr<const KeyTable> keys) {
  keys_.store(keys != nullptr ? std::move(keys) : KeyTable::Build({}));
}

void EdgeChecks::Reject(const std::string& reason) {
  if (metrics_ != nullptr) {
    metrics_->RecordRejection(reason);
  }
}

std::optional<Principal> EdgeChecks::Authenticate(const HttpRequest& req, std::string_view function,
                                                  const std::string& inv_id, HttpResponse& res,
                                                  std::string_view hint) {
  Result<Principal> p = keys_.load()->Authenticate(req.Header("authorization"), function);
  if (p.ok()) {
    return std::move(*p);
  }
  Reject("unauthorized");
  res = MakeErrorResponse(401, "unauthorized", p.status().message() + std::string(hint), inv_id);
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return std::nullopt;
}

bool EdgeChecks::WithinKeyRate(const Principal& p, const std::string& inv_id, HttpResponse& res) {
  if (p.rate_per_sec <= 0) {
    return true;
  }
  std::chrono::nanoseconds wait = limiter_->Take("k:" + p.key_id, p.rate_per_sec, p.burst);
  if (wait.count() <= 0) {
    return true;
  }
  RateLimited(res, inv_id, wait, "this API key is over its rate of " + FormatRate(p.rate_per_sec));
  return false;
}

bool EdgeChecks::Admit(const std::string& name, const scheduler::FunctionSpec* spec,
                       const HttpRequest& req, const std::string& inv_id, std::string* tenant,
                       HttpResponse& res) {
  if (spec == nullptr || !spec->config.is_public) {
    std::optional<Principal> p = Authenticate(req, name, inv_id, res);
    if (!p) {
      return false;
    }
    *tenant = p->tenant;
    if (!WithinKeyRate(*p, inv_id, res)) {
      return false;
    }
  }
  if (spec == nullptr) {
    Reject("function_not_found");
    res = MakeErrorResponse(404, "function_not_found", "function \"" + name + "\" does not exist",
                            inv_id);
    return false;
  }
  if (spec->config.rate_per_sec > 0) {
    std::chrono::nanoseconds wait =
        limiter_->Take("f:" + name, spec->config.rate_per_sec, store::EffectiveBurst(spec->config));
    if (wait.count() > 0) {
      RateLimited(
          res, inv_id, wait,
          "function \"" + name + "\" is over its rate of " + FormatRate(spec->config.rate_per_sec));
      return false;
    }
  }
  return true;
}

void EdgeChecks::RateLimited(HttpResponse& res, const std::string& inv_id,
                             std::chrono::nanoseconds wait, const std::string& message) {
  Reject("rate_limited");
  double seconds = static_cast<double>(wait.count()) / 1e9;
  int retry_after = std::max(1, static_cast<int>(std::ceil(seconds)));
  res = MakeErrorResponse(429, "rate_limited",
                          message + "; retry after " + std::to_string(retry_after) + "s", inv_id,
                          retry_after);
}

}  // namespace faas::gateway
