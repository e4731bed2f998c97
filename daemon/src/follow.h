// Keeping what gateways and nodes cache from the shared PostgreSQL store current
// (docs/design/0022-change-notification.md, docs/operations.md "What follows what"):
//
//   gateway:  RegistryFollower re-reads functions, routes, API keys and trigger definitions when
//             the store announces a change (NOTIFY faas_registry), the node list on NOTIFY
//             faas_nodes, all of them after every (re)connection of its listener, and all of
//             them every `resync_every` (--registry-resync) as a backstop.
//   node:     DeployPrefetcher fetches a newly deployed version's library into the node's
//             artifact cache (sha256 verified, temp file, fsync, rename) as soon as the deploy
//             is announced, so that the first call there does not wait for the fetch.
//
//   RegistryFollower follower({.store = url, .functions = [&] { return remote.LoadFunctions(); },
//                              .routes = ..., .keys = ..., .nodes = ...});
//   FAAS_RETURN_IF_ERROR(follower.Start());
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "faas/base/status.h"
#include "faas/store/change_listener.h"
#include "faas/store/registry.h"

namespace faas::daemon {

struct RegistryFollowerOptions {
  std::string store;  // the postgres:// URI
  // The backstop: everything is re-read this often even without a notice (0: never).
  std::chrono::milliseconds resync_every{30'000};
  // Each re-reads one kind of cached data from the store and installs it; a failure is logged
  // and the cache stays as it was until the next notice or resync. Null ones are skipped.
  std::function<Status()> functions;
  std::function<Status()> routes;
  std::function<Status()> keys;
  std::function<Status()> nodes;
  std::function<Status()> triggers;  // "trigger:<name>" (faas/store/settings.h)
};

// Thread-safe. Refreshes run one at a time (on the listener's or the backstop's thread), so a
// refresh that read older data never installs it over a newer one's.
class RegistryFollower {
 public:
  explicit RegistryFollower(RegistryFollowerOptions options);
  ~RegistryFollower();  // Stop()s
  RegistryFollower(const RegistryFollower&) = delete;
  RegistryFollower& operator=(const RegistryFollower&) = delete;

  // Starts the listener (which resyncs everything once it listens) and the backstop thread.
  Status Start();
  void Stop();

 private:
  void OnChange(const store::Change& change);
  void RefreshAll(std::string_view why);
  void Refresh(std::string_view what, const std::function<Status()>& read);

  const RegistryFollowerOptions options_;
  std::mutex refresh_mu_;  // one refresh at a time
  std::unique_ptr<store::ChangeListener> listener_;
  std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_
  std::condition_variable wake_;
  std::thread backstop_;
};

// A node's prefetch of deployed libraries. `registry` (the node's, whose FetchArtifact fills its
// cache) must outlive it.
class DeployPrefetcher {
 public:
  DeployPrefetcher(std::string store, store::Registry* registry);
  ~DeployPrefetcher();  // Stop()s
  DeployPrefetcher(const DeployPrefetcher&) = delete;
  DeployPrefetcher& operator=(const DeployPrefetcher&) = delete;

  Status Start();
  void Stop();
  // Fetches the library of `function`'s latest version into the cache (nothing to do when it is
  // there). NotFound when the function is gone (a delete's notice); a corrupt artifact is
  // refused by FetchArtifact and never cached.
  Status Prefetch(const std::string& function);

 private:
  store::Registry* const registry_;
  store::ChangeListener listener_;
};

}  // namespace faas::daemon
