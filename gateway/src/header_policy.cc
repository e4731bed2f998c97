#include "header_policy.h"

namespace faas::gateway {
namespace {

constexpr std::string_view kParamHeaderPrefix = "x-faas-param-";

// ASCII case-insensitive: does `name` start with the lower-case `prefix`?
bool StartsWithIgnoreCase(std::string_view name, std::string_view prefix) {
  if (name.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != prefix[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsReservedResponseHeader(std::string_view name) {
  static constexpr std::string_view kExact[] = {
      "content-length", "transfer-encoding", "connection",      "keep-alive", "upgrade", "te",
      "trailer",        "server-timing",     "x-invocation-id",
  };
  for (std::string_view reserved : kExact) {
    if (name.size() == reserved.size() && StartsWithIgnoreCase(name, reserved)) {
      return true;
    }
  }
  return StartsWithIgnoreCase(name, "x-faas-") || StartsWithIgnoreCase(name, "proxy-");
}

HeaderList FunctionHeaders(HttpRequest& req, HeaderList&& params, bool strip_authorization,
                           std::string traceparent) {
  HeaderList out;
  out.reserve(req.headers.size() + params.size() + 1);
  for (auto& [k, v] : req.headers) {
    if (k.starts_with("x-faas-") || k == "traceparent" ||
        (strip_authorization && k == "authorization")) {
      continue;  // platform headers are set by the platform only
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  for (auto& [k, v] : params) {  // after the stripping above: clients cannot spoof these
    out.emplace_back(std::string(kParamHeaderPrefix) + k, std::move(v));
  }
  out.emplace_back("traceparent", std::move(traceparent));
  return out;
}

}  // namespace faas::gateway
