#include "worker_response.h"

#include <limits>

namespace faas::scheduler {
namespace {

bool Parse(std::string_view payload, v1::WorkerResponse* msg) {
  return payload.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()) &&
         msg->ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

}  // namespace

bool ParseWorkerResult(std::string_view payload, v1::WorkerResponse* msg) {
  return Parse(payload, msg) && msg->has_result() &&
         msg->result().headers_size() <= static_cast<int>(kMaxResponseHeaders) &&
         msg->result().status() >= 100 && msg->result().status() <= 599;
}

bool ParseWorkerReady(std::string_view payload, v1::WorkerResponse* msg) {
  return Parse(payload, msg) && msg->has_ready();
}

}  // namespace faas::scheduler
