// The node registry in PostgreSQL (faas/store/nodes.h), on the libpq layer of pg.h.
// docs/design/0019-membership-and-health.md explains fencing and the janitor.
#include <sys/random.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "faas/base/log.h"
#include "faas/store/nodes.h"

#include "pg.h"

namespace faas::store {
namespace {

using pg::Exec;
using pg::Rows;

// Columns 0..9 of every node query, read by ReadNode. Times as Unix milliseconds.
constexpr const char* kSelectNodes =
    "SELECT id, address, http_address, capacity, state, epoch, load, "
    "(EXTRACT(EPOCH FROM heartbeat_at) * 1000)::bigint, "
    "(EXTRACT(EPOCH FROM now() - heartbeat_at) * 1000)::bigint, "
    "(EXTRACT(EPOCH FROM registered_at) * 1000)::bigint FROM nodes ";

double ToDouble(const std::string& text) {
  double v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// Doubles travel as text, cast by the SQL ($n::float8): pg.h binds integers and text only.
std::string FromDouble(double v) {
  return fmt::format("{}", v);
}

NodeState StateFromName(std::string_view s) {
  if (s == "draining") {
    return NodeState::kDraining;
  }
  return s == "dead" ? NodeState::kDead : NodeState::kUp;
}

NodeRecord ReadNode(const Rows& r, int row) {
  NodeRecord n;
  n.id = r.Text(row, 0);
  n.address = r.Text(row, 1);
  n.http_address = r.Text(row, 2);
  n.capacity = ToDouble(r.Text(row, 3));
  n.state = StateFromName(r.Text(row, 4));
  n.epoch = static_cast<uint64_t>(r.Int(row, 5));
  n.load = ToDouble(r.Text(row, 6));
  n.heartbeat_unix_ms = r.Int(row, 7);
  n.heartbeat_age_ms = r.Int(row, 8);
  n.registered_unix_ms = r.Int(row, 9);
  return n;
}

// A single statement is never rolled back for a serialization failure at READ COMMITTED, but
// a deadlock (40P01, Aborted) could in principle abort one: keep kAborted for fencing alone.
faas::Status NotAborted(faas::Status s) {
  if (s.code() == faas::StatusCode::kAborted) {
    return faas::UnavailableError(s.message());
  }
  return s;
}

void Notify(PGconn* c, std::string_view payload) {
  faas::Result<Rows> r = Exec(c, "SELECT pg_notify('faas_nodes', $1)", {payload});
  if (!r.ok()) {  // listeners also resync periodically: a lost notice only delays them
    pg::Log().warn(faas::log::Format("node.notify_failed", {{"error", r.status().message()}}));
  }
}

class PgNodes final : public NodeRegistry {
 public:
  explicit PgNodes(std::string url) : url_(std::move(url)) {}
  ~PgNodes() override {
    if (conn_ != nullptr) {
      PQfinish(conn_);  // ends the session: the janitor lock goes with it
    }
  }
  PgNodes(const PgNodes&) = delete;
  PgNodes& operator=(const PgNodes&) = delete;

  faas::Status Open() {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    return pg::Migrate(conn_);
  }

  faas::Result<uint64_t> Register(const NodeRecord& node) override {
    if (node.id.empty() || node.address.empty() || !(node.capacity > 0) ||
        !std::isfinite(node.capacity)) {
      return faas::InvalidArgumentError(fmt::format(
          "node registration needs an id, an address and a capacity > 0 (id \"{}\", address "
          "\"{}\", capacity {})",
          node.id, node.address, node.capacity));
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    const std::string capacity = FromDouble(node.capacity);
    faas::Result<Rows> r =
        Exec(conn_,
             "INSERT INTO nodes (id, address, http_address, capacity, state, heartbeat_at, epoch, "
             "load, registered_at) VALUES ($1, $2, $3, $4::float8, 'up', now(), 1, 0, now()) "
             "ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, "
             "http_address = EXCLUDED.http_address, capacity = EXCLUDED.capacity, state = 'up', "
             "heartbeat_at = now(), epoch = nodes.epoch + 1, load = 0, registered_at = now() "
             "RETURNING epoch",
             {node.id, node.address, node.http_address, capacity});
    if (!r.ok()) {
      return NotAborted(r.status());
    }
    const auto epoch = static_cast<uint64_t>(r->Int(0, 0));
    Notify(conn_, "up:" + node.id);
    FAAS_LOG(&pg::Log(), info, "node.registered", {"node", node.id}, {"epoch", epoch},
             {"address", node.address});
    return epoch;
  }

  faas::Result<NodeState> Heartbeat(std::string_view id, uint64_t epoch, double load) override {
    if (!std::isfinite(load)) {
      load = -1;  // unknown; never store NaN
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    const std::string load_text = FromDouble(load);
    faas::Result<Rows> r = Exec(conn_,
                                "UPDATE nodes SET heartbeat_at = now(), load = $3::float8 "
                                "WHERE id = $1 AND epoch = $2 AND state <> 'dead' RETURNING state",
                                {id, static_cast<int64_t>(epoch), load_text});
    if (!r.ok()) {
      return NotAborted(r.status());
    }
    if (r->Count() == 0) {
      return faas::AbortedError(fmt::format(
          "node \"{}\" is fenced: epoch {} is no longer current or the node was declared dead; "
          "register again",
          id, epoch));
    }
    return StateFromName(r->Text(0, 0));
  }

  faas::Result<std::vector<NodeRecord>> List() override {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    faas::Result<Rows> r = Exec(conn_, (std::string(kSelectNodes) + "ORDER BY id").c_str());
    if (!r.ok()) {
      return NotAborted(r.status());
    }
    std::vector<NodeRecord> out;
    out.reserve(r->Size());
    for (int i = 0; i < r->Count(); ++i) {
      out.push_back(ReadNode(*r, i));
    }
    return out;
  }

  faas::Status SetState(std::string_view id, NodeState state) override {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    // A dead row stays dead until its node registers again: reviving it here would let the old
    // epoch's heartbeats through, undoing the fence.
    faas::Result<Rows> r =
        Exec(conn_,
             "UPDATE nodes SET state = $2 WHERE id = $1 AND (state <> 'dead' OR $2 = 'dead') "
             "RETURNING id",
             {id, NodeStateName(state)});
    if (!r.ok()) {
      return NotAborted(r.status());
    }
    if (r->Count() == 0) {
      faas::Result<Rows> exists = Exec(conn_, "SELECT 1 FROM nodes WHERE id = $1", {id});
      if (!exists.ok()) {
        return NotAborted(exists.status());
      }
      if (exists->Count() == 0) {
        return faas::NotFoundError(fmt::format("no node \"{}\"", id));
      }
      return faas::FailedPreconditionError(
          fmt::format("node \"{}\" is dead; it becomes up when it registers again", id));
    }
    Notify(conn_, std::string(NodeStateName(state)) + ":" + std::string(id));
    FAAS_LOG(&pg::Log(), info, "node.state_set", {"node", std::string(id)},
             {"state", std::string(NodeStateName(state))});
    return faas::OkStatus();
  }

  faas::Result<std::string> NodeSecret() override {
    unsigned char raw[32];
    if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
      return faas::ErrnoError(errno, "getrandom", "node secret");
    }
    std::string fresh;
    for (unsigned char b : raw) {
      fresh += fmt::format("{:02x}", b);
    }
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    // The first insert wins; everyone reads the winner's.
    FAAS_RETURN_IF_ERROR(
        NotAborted(Exec(conn_,
                        "INSERT INTO cluster_secrets (name, value) VALUES ('node', $1) "
                        "ON CONFLICT (name) DO NOTHING",
                        {std::string_view(fresh)})
                       .status()));
    faas::Result<Rows> r = Exec(conn_, "SELECT value FROM cluster_secrets WHERE name = 'node'");
    if (!r.ok()) {
      return NotAborted(r.status());
    }
    if (r->Count() != 1) {
      return faas::InternalError("the node secret is missing after it was created");
    }
    return r->Text(0, 0);
  }

  faas::Result<JanitorReport> JanitorStep(std::chrono::milliseconds dead_after) override {
    std::lock_guard lock(mu_);
    FAAS_RETURN_IF_ERROR(ConnectLocked());
    JanitorReport report;
    if (!janitor_) {
      // Session-level: held until this connection ends, so one gateway stays the janitor.
      faas::Result<Rows> got =
          Exec(conn_, "SELECT pg_try_advisory_lock($1::bigint)", {pg::kNodeJanitorLockKey});
      if (!got.ok()) {
        return NotAborted(got.status());
      }
      janitor_ = got->Text(0, 0) == "t";
      if (janitor_) {
        FAAS_LOG(&pg::Log(), info, "node.janitor_elected");
      }
    }
    report.janitor = janitor_;
    if (!janitor_) {
      return report;
    }
    faas::Result<Rows> dead = Exec(conn_,
                                   "UPDATE nodes SET state = 'dead' WHERE state <> 'dead' AND "
                                   "heartbeat_at < now() - $1::bigint * interval '1 millisecond' "
                                   "RETURNING id, (EXTRACT(EPOCH FROM now() - heartbeat_at) * "
                                   "1000)::bigint",
                                   {static_cast<int64_t>(dead_after.count())});
    if (!dead.ok()) {
      return NotAborted(dead.status());
    }
    std::string payload = "dead:";
    for (int i = 0; i < dead->Count(); ++i) {
      report.marked_dead.push_back(dead->Text(i, 0));
      payload += (i > 0 ? "," : "") + dead->Text(i, 0);
      FAAS_LOG(&pg::Log(), warn, "node.dead", {"node", dead->Text(i, 0)},
               {"silent_ms", dead->Int(i, 1)});
    }
    if (!report.marked_dead.empty()) {
      // NOTIFY payloads must stay under 8000 bytes; listeners re-read the table anyway.
      Notify(conn_, payload.size() < 7000 ? std::string_view(payload) : "dead:");
    }
    return report;
  }

 private:
  // Connects, or reconnects after the server went away (the janitor lock died with the old
  // session). Unavailable when it cannot.
  faas::Status ConnectLocked() {
    if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) {
      janitor_ = false;
    }
    return pg::Connect(conn_, url_);
  }

  const std::string url_;
  std::mutex mu_;
  PGconn* conn_ = nullptr;  // guarded by mu_; owned
  bool janitor_ = false;    // guarded by mu_: this session holds kNodeJanitorLockKey
};

}  // namespace

std::string_view NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "up";
    case NodeState::kDraining:
      return "draining";
    case NodeState::kDead:
      return "dead";
  }
  return "up";
}

bool IsFenced(const faas::Status& s) {
  return s.code() == faas::StatusCode::kAborted;
}

faas::Result<std::unique_ptr<NodeRegistry>> OpenNodeRegistry(std::string_view store) {
  if (!store.starts_with("postgres://") && !store.starts_with("postgresql://")) {
    return faas::FailedPreconditionError(
        "the node registry needs PostgreSQL: start faasd with --store postgresql://… (this "
        "store, \"" +
        std::string(store.substr(0, store.find(':'))) + "\", has no cluster membership)");
  }
  auto nodes = std::make_unique<PgNodes>(std::string(store));
  FAAS_RETURN_IF_ERROR(nodes->Open());
  return std::unique_ptr<NodeRegistry>(std::move(nodes));
}

}  // namespace faas::store
