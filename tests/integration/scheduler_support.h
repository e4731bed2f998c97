// Shared by the scheduler integration tests: specs of the example functions, options with the
// process's one CgroupRoot, requests, and polling with a deadline.
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "faas/sandbox/cgroup.h"
#include "faas/scheduler/scheduler.h"

namespace faas::scheduler::testing {

inline FunctionSpec Spec(const std::string& fn, uint32_t version = 1) {
  FunctionSpec s;
  s.name = fn;
  s.version = version;
  s.library_path = std::string(FAAS_TEST_FUNCTIONS_DIR) + "/lib" + fn + ".so";
  return s;
}

// One per process (inline: every test file shares it); nullptr without cgroups.
inline sandbox::CgroupRoot* Cgroups() {
  static auto root = sandbox::CgroupRoot::Create({});
  return root.ok() ? root->get() : nullptr;
}

inline SchedulerOptions Options() {
  SchedulerOptions o;
  o.cgroups = Cgroups();
  o.worker_path = std::string(FAAS_TEST_BIN_DIR) + "/faas-worker";
  o.reap_interval = std::chrono::milliseconds(20);
  return o;
}

inline InvokeRequest Req(const std::string& query = "", std::string body = "") {
  InvokeRequest r;
  r.invocation_id = "test";
  r.method = body.empty() ? "GET" : "POST";
  r.query = query;
  r.body = std::move(body);
  return r;
}

// Polls `cond` until it holds or 10 s pass.
template <typename F>
bool Eventually(F cond) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::yield();
  }
  return cond();
}

}  // namespace faas::scheduler::testing
