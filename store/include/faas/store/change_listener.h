// Following changes to the shared PostgreSQL store (docs/design/0022-change-notification.md):
// one dedicated connection LISTENs on a few channels and hands each notification to a callback.
// NOTIFY has no replay: what is sent while the connection is down is lost. So after every
// (re)connection, the first one included, the listener calls `on_resync`, and the caller re-reads
// everything it caches.
//
//   ChangeListener listener({.url = store,
//                            .channels = {std::string(kRegistryChannel)},
//                            .on_notify = [&](const Change& c) { Refresh(c.payload); },
//                            .on_resync = [&] { RefreshAll(); }});
//   FAAS_RETURN_IF_ERROR(listener.Start());
//   ...
//   listener.Stop();  // also in the destructor
//
// The channels and their payloads:
//   faas_registry  "function:<name>" (deploy, rollback, delete), "route:<method> <path>",
//                  "key:<id>"; sent by the PostgreSQL registry in the changing transaction
//   faas_nodes     "up:<id>", "draining:<id>", "dead:<id>[,<id>...]" (faas/store/nodes.h)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::store {

inline constexpr std::string_view kRegistryChannel = "faas_registry";

// One notification.
struct Change {
  std::string channel;
  std::string payload;
};

struct ChangeListenerOptions {
  std::string url;                    // a libpq URI ("postgresql://...")
  std::vector<std::string> channels;  // identifiers: [a-z_][a-z0-9_]*
  // Both run on the listener's own thread, one at a time; while one runs, notifications wait
  // in the connection (none is lost), so keep them short or hand work off.
  std::function<void(const Change&)> on_notify;
  std::function<void()> on_resync;
  // Reconnection backoff: doubles from min to max, back to min after a connection that worked.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // A connection silent this long is checked with a query; no answer within
  // kStatementTimeout + 1 s counts as lost (a hung server, a blackholed network).
  std::chrono::milliseconds ping_after{10'000};
};

// Thread-safe. Waits with poll(2) on the connection's socket and an eventfd, never spins.
class ChangeListener {
 public:
  explicit ChangeListener(ChangeListenerOptions options);
  ~ChangeListener();  // Stop()s
  ChangeListener(const ChangeListener&) = delete;
  ChangeListener& operator=(const ChangeListener&) = delete;

  // Starts the thread, which connects (retrying with backoff while the server is down).
  // InvalidArgument for a bad channel name; an ErrnoError when the eventfd cannot be made.
  faas::Status Start();
  // Wakes the thread and joins it; prompt even while it waits for the server. Idempotent.
  void Stop();

  // How many times on_resync has run (once per successful LISTEN).
  uint64_t resyncs() const;
  // True while the connection LISTENs.
  bool listening() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace faas::store
