// Keeps gRPC's callback-API threads from napping (docs/design/0037-grpc-callback-naps.md).
//
// gRPC 1.51 (Debian 12) runs every callback-API completion in a process (the node's Invoke
// streams, the gateway's, the Stats asks) on two "nexting" threads, which are also what polls the
// process's sockets. Each waits at most 1 s for an event; on a timeout it sleeps 100 ms before it
// waits again. When both time out together, nothing reads the process's sockets for up to 100 ms:
// a deploy's Prepare or the first call after a quiet second waits that long. A small call every
// kPeriod gives one of them an event before its second is up, so one always polls.
#pragma once

#include <memory>

namespace faas::daemon {

class GrpcAwake;

// Holds the process's ticker while any holder lives; the first holder starts it and the last one
// stops it (joining its thread and its last call). Thread-safe.
std::shared_ptr<GrpcAwake> KeepGrpcCallbackThreadsAwake();

}  // namespace faas::daemon
