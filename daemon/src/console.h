// The web console's server side (docs/design/0026-console.md, docs/http-api.md "Console"):
// sign-in with the admin token, sessions, the embedded pages (console/web) and a JSON API under
// /console/api/. The API is the control API itself: each call goes through an in-process
// channel to the same ControlService faasctl talks to, with the admin token, and its reply is
// printed as JSON. So the console shows exactly what `faasctl` shows, from the same code.
//
//   Console console({.admin_token = token, .control = grpc_server->InProcessChannel({}),
//                    .session_store = std::move(pg_sessions)});  // or null: in memory
//   gw.SetConsole(console.Handler());
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "faas/gateway/gateway.h"
#include "faas/store/sessions.h"

#include "console_sessions.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace faas::daemon {

struct ConsoleOptions {
  std::string admin_token;                 // what sign-in accepts (never logged or echoed)
  std::shared_ptr<grpc::Channel> control;  // to the ControlService (an in-process channel)
  bool secure_cookie = false;              // add Secure to the cookie (faasd behind TLS)
  std::chrono::seconds session_ttl{12 * 3600};
  // Where sessions live: null keeps them in this process's memory (a single faasd); a cluster's
  // gateways pass the shared store's, so that each honours the sessions the others made.
  std::unique_ptr<store::SessionStore> session_store;
};

// Thread-safe: each request is handled on its own (the gateway's blocking threads).
class Console {
 public:
  explicit Console(ConsoleOptions options);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Answers one request for /console or /console/...
  void Handle(gateway::HttpRequest& req, const std::string& invocation_id,
              gateway::HttpResponse& res);
  // For Gateway::SetConsole; the Console must outlive the gateway's use of it.
  std::shared_ptr<const gateway::ConsoleHandler> Handler();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::daemon
