// The daemon's checks on a frame payload a worker sent (docs/architecture.md: a worker frame is
// never trusted; anything these refuse is a protocol violation and the worker is killed).
//
//   v1::WorkerResponse msg;
//   std::string violation = ParseWorkerResult(payload, invocation_id, &msg);
//   if (!violation.empty()) { /* kill the worker, report `violation` */ }
//   const v1::WorkerResult& result = msg.result();  // status 200..599, <= 100 clean headers
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "faas/v1/worker.pb.h"

namespace faas::scheduler {

// The most headers a worker's result may carry (faas-worker refuses to add more).
inline constexpr std::size_t kMaxResponseHeaders = 100;
// Name + value of one response header, as the SDK bounds them.
inline constexpr std::size_t kMaxResponseHeaderBytes = 8u << 10;

// Parses the answer to invocation `invocation_id` into *msg and checks everything the SDK
// guarantees, since a function can write its own frames on fd 3: a WorkerResult for exactly this
// invocation, an HTTP status in 200..599, at most kMaxResponseHeaders headers, each a token name
// and a value without CR, LF or NUL. Header names are lower-cased in place (the SDK sends them
// so; a forged frame may not), so later filters see one spelling. Returns "" when the answer is
// well-formed, else the violation for the error message. Pure function.
std::string ParseWorkerResult(std::string_view payload, std::string_view invocation_id,
                              v1::WorkerResponse* msg);

// Parses a worker's first frame into *msg: a faas.v1.WorkerResponse carrying a WorkerReady.
// False for anything else. Pure function.
bool ParseWorkerReady(std::string_view payload, v1::WorkerResponse* msg);

}  // namespace faas::scheduler
