#include "worker_response.h"

#include <limits>

#include "faas/base/text.h"

namespace faas::scheduler {
namespace {

bool Parse(std::string_view payload, v1::WorkerResponse* msg) {
  return payload.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()) &&
         msg->ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

bool IsTokenChar(char c) {  // RFC 9110 §5.6.2
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::string ParseWorkerResult(std::string_view payload, std::string_view invocation_id,
                              v1::WorkerResponse* msg) {
  if (!Parse(payload, msg) || !msg->has_result()) {
    return "protocol violation: malformed response frame";
  }
  v1::WorkerResult* r = msg->mutable_result();
  if (r->invocation_id() != invocation_id) {
    return "protocol violation: the answer is for invocation " +
           QuoteForMessage(r->invocation_id(), 64) + ", not " + std::string(invocation_id) +
           " (a frame left over from an earlier call, or forged)";
  }
  if (r->status() < 200 || r->status() > 599) {
    return "protocol violation: status " + std::to_string(r->status()) +
           " (a final HTTP status is 200..599)";
  }
  if (r->headers_size() > static_cast<int>(kMaxResponseHeaders)) {
    return "protocol violation: " + std::to_string(r->headers_size()) + " headers (at most " +
           std::to_string(kMaxResponseHeaders) + ")";
  }
  for (v1::Header& h : *r->mutable_headers()) {
    std::string& name = *h.mutable_name();
    const std::string& value = h.value();
    bool token = !name.empty();
    for (char& c : name) {
      token = token && IsTokenChar(c);
      if (c >= 'A' && c <= 'Z') {
        c = static_cast<char>(c - 'A' + 'a');
      }
    }
    if (!token || value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos ||
        name.size() + value.size() > kMaxResponseHeaderBytes) {
      return "protocol violation: malformed response header " + QuoteForMessage(name, 64);
    }
  }
  return {};
}

bool ParseWorkerReady(std::string_view payload, v1::WorkerResponse* msg) {
  return Parse(payload, msg) && msg->has_ready();
}

}  // namespace faas::scheduler
