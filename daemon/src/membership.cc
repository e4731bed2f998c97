// Cluster membership for the node and gateway roles (membership.h).
#include "membership.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "faas/base/log.h"

namespace faas::daemon {
namespace {

auto& Log() {
  static auto log = faas::log::Get("cluster");
  return log;
}

// The janitor's threshold during its grace after an outage: longer than any real silence.
constexpr std::chrono::milliseconds kNeverDeadDuringGrace = std::chrono::hours(24);

}  // namespace

NodeMembership::NodeMembership(store::NodeRegistry* registry, NodeMembershipOptions options)
    : registry_(registry), options_(std::move(options)) {
  FAAS_CHECK(registry_ != nullptr);
}

NodeMembership::~NodeMembership() {
  Stop();
}

faas::Status NodeMembership::Start() {
  if (thread_.joinable()) {
    return faas::OkStatus();
  }
  faas::Status first = RegisterNow();
  thread_ = std::thread([this] { Loop(); });
  return first;
}

void NodeMembership::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

faas::Status NodeMembership::Drain() {
  draining_ = true;
  drain_called_ = true;  // the caller drains; the row's draining state is its own doing
  return registry_->SetState(options_.self.id, store::NodeState::kDraining);
}

faas::Status NodeMembership::Leave() {
  epoch_ = 0;
  return registry_->SetState(options_.self.id, store::NodeState::kDead);
}

faas::Status NodeMembership::RegisterNow() {
  faas::Result<uint64_t> epoch = registry_->Register(options_.self);
  if (!epoch.ok()) {
    return epoch.status();
  }
  if (draining_) {  // a node that drains stays draining across a re-registration
    FAAS_RETURN_IF_ERROR(registry_->SetState(options_.self.id, store::NodeState::kDraining));
  }
  epoch_ = *epoch;
  fenced_ = false;
  return faas::OkStatus();
}

void NodeMembership::Beat() {
  if (epoch_ == 0) {
    if (faas::Status s = RegisterNow(); !s.ok()) {
      FAAS_LOG(Log(), warn, "node.register_failed", {"node", options_.self.id},
               {"error", s.message()});
    }
    return;
  }
  const double load = options_.load ? options_.load() : -1;
  const uint64_t epoch = epoch_;
  faas::Result<store::NodeState> state = registry_->Heartbeat(options_.self.id, epoch, load);
  if (store::IsFenced(state.status())) {
    fenced_ = true;
    FAAS_LOG(Log(), warn, "node.fenced", {"node", options_.self.id}, {"epoch", epoch});
    if (options_.on_fenced) {
      options_.on_fenced(epoch);
    }
    epoch_ = 0;
    if (faas::Status s = RegisterNow(); !s.ok()) {  // else the next beat tries again
      FAAS_LOG(Log(), warn, "node.register_failed", {"node", options_.self.id},
               {"error", s.message()});
    }
    return;
  }
  if (!state.ok()) {
    // The store is down: keep serving with the epoch we have; gateways keep their last list.
    if (!store_down_) {
      FAAS_LOG(Log(), warn, "node.heartbeat_failed", {"node", options_.self.id},
               {"error", state.status().message()});
    }
    store_down_ = true;
    return;
  }
  if (store_down_) {
    FAAS_LOG(Log(), info, "node.heartbeat_resumed", {"node", options_.self.id});
    store_down_ = false;
  }
  if (*state == store::NodeState::kDraining && !drain_called_.exchange(true)) {
    FAAS_LOG(Log(), info, "node.drain_requested", {"node", options_.self.id});
    if (options_.on_drain) {
      options_.on_drain();
    }
  }
}

void NodeMembership::Loop() {
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, options_.heartbeat_interval, [this] { return stopping_; })) {
    lock.unlock();
    Beat();
    lock.lock();
  }
}

faas::Result<std::vector<cluster::NodeInfo>> ListUpNodes(store::NodeRegistry& registry) {
  FAAS_ASSIGN_OR_RETURN(std::vector<store::NodeRecord> rows, registry.List());
  std::vector<cluster::NodeInfo> up;
  for (store::NodeRecord& r : rows) {
    if (r.state != store::NodeState::kUp) {
      continue;
    }
    cluster::NodeInfo n;
    n.id = std::move(r.id);
    n.address = std::move(r.address);
    n.http_address = std::move(r.http_address);
    n.capacity = r.capacity;
    n.epoch = r.epoch;
    up.push_back(std::move(n));
  }
  return up;
}

faas::Result<store::NodeRecord> DrainNodeById(store::NodeRegistry& registry, std::string_view id) {
  FAAS_RETURN_IF_ERROR(registry.SetState(id, store::NodeState::kDraining));
  FAAS_ASSIGN_OR_RETURN(std::vector<store::NodeRecord> rows, registry.List());
  for (store::NodeRecord& r : rows) {
    if (r.id == id) {
      return std::move(r);
    }
  }
  return faas::NotFoundError("no node \"" + std::string(id) + "\"");  // deleted meanwhile
}

std::unique_ptr<cluster::NodeSource> MakeGatewayNodeSource(store::NodeRegistry* registry,
                                                           cluster::HealthOptions options) {
  auto checker = std::make_unique<cluster::HealthChecker>(
      [registry] { return ListUpNodes(*registry); }, std::move(options));
  checker->Start();
  return checker;
}

NodeJanitor::NodeJanitor(store::NodeRegistry* registry, std::chrono::milliseconds dead_after,
                         std::chrono::milliseconds interval)
    : registry_(registry), dead_after_(dead_after), interval_(interval) {
  FAAS_CHECK(registry_ != nullptr);
}

NodeJanitor::~NodeJanitor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void NodeJanitor::Start() {
  if (thread_.joinable()) {
    return;
  }
  thread_ = std::thread([this] {
    using Clock = std::chrono::steady_clock;
    // While PostgreSQL was out of reach, the nodes' heartbeats could not reach it either: when
    // it is back, every node looks silent for as long as the outage lasted. So after a failed
    // step, nothing is declared dead until the store has been reachable for dead_after again,
    // which gives every live node time to heartbeat (docs/design/0025-fault-tests.md: the
    // fault test PostgresqlStopped found healthy nodes declared dead and fenced at once).
    bool last_failed = false;
    Clock::time_point grace_until{};
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      const bool in_grace = last_failed || Clock::now() < grace_until;
      faas::Result<store::JanitorReport> r =
          registry_->JanitorStep(in_grace ? kNeverDeadDuringGrace : dead_after_);
      if (r.ok() && last_failed) {
        grace_until = Clock::now() + dead_after_;
        FAAS_LOG(Log(), info, "node.janitor_grace", {"ms", dead_after_.count()});
      }
      last_failed = !r.ok();
      if (!r.ok()) {
        FAAS_LOG(Log(), debug, "node.janitor_failed", {"error", r.status().message()});
      } else if (!r->marked_dead.empty() && on_dead_) {
        on_dead_(r->marked_dead);
      }
      lock.lock();
    }
  });
}

}  // namespace faas::daemon
