// The daemon's checks on a frame payload a worker sent (DESIGN §4.5: a worker frame is never
// trusted; anything these refuse is a protocol violation and the worker is killed).
//
//   v1::WorkerResponse msg;
//   if (!ParseWorkerResult(payload, &msg)) { /* kill the worker */ }
//   const v1::WorkerResult& result = msg.result();  // status in 100..599, <= 100 headers
#pragma once

#include <cstddef>
#include <string_view>

#include "faas/v1/worker.pb.h"

namespace faas::scheduler {

// The most headers a worker's result may carry (faas-worker refuses to add more).
inline constexpr std::size_t kMaxResponseHeaders = 100;

// Parses the answer to an invocation into *msg: a faas.v1.WorkerResponse carrying a WorkerResult
// with an HTTP status in 100..599 and at most kMaxResponseHeaders headers. False for anything
// else. Pure function.
bool ParseWorkerResult(std::string_view payload, v1::WorkerResponse* msg);

// Parses a worker's first frame into *msg: a faas.v1.WorkerResponse carrying a WorkerReady.
// False for anything else. Pure function.
bool ParseWorkerReady(std::string_view payload, v1::WorkerResponse* msg);

}  // namespace faas::scheduler
