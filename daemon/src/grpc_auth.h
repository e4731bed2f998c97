// The bearer check shared by faasd's gRPC services: the control API's admin token
// (control_service.cc) and the secret gateways present to nodes (node_service.cc).
#pragma once

#include <string_view>

#include <grpcpp/server_context.h>

namespace faas::daemon {

// True when `ctx` carries "authorization: Bearer <want>", compared in constant time; false for
// an empty `want`.
bool HasBearer(const grpc::ServerContextBase& ctx, std::string_view want);

}  // namespace faas::daemon
