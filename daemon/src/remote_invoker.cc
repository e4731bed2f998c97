#include "remote_invoker.h"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "faas/base/event_loop.h"
#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/cluster/warm_tracker.h"
#include "faas/store/config.h"
#include "faas/v1/node.grpc.pb.h"

#include "grpc_cq.h"
#include "node_service.h"

namespace faas::daemon {
namespace {

// A status a node answers before it took a call (no initial metadata yet) that another node
// would not repeat: the node was stopping (its server cancels what it has not started:
// CANCELLED, or a handler torn down: UNKNOWN, INTERNAL, ABORTED). The function never started, so
// the call goes to the next node. The request's own faults (INVALID_ARGUMENT, RESOURCE_EXHAUSTED),
// a missing secret and the gateway's deadline would fail the same way anywhere: not retried.
bool RefusedByThisNodeOnly(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

using scheduler::InvokeResult;
using scheduler::Outcome;
using Stub = v1::NodeService::Stub;

// Beyond the function's own limits (queue wait, init, execution), how long a gateway waits for a
// node before it gives the call up as lost.
constexpr std::chrono::seconds kNodeSlack{15};
// Deploy probes and rollbacks: the node loads and initialises the library (init_timeout, 10 s by
// default) after fetching it.
constexpr std::chrono::seconds kPrepareDeadline{120};
constexpr std::chrono::seconds kControlDeadline{5};
// A deploy's push to the nodes that did not probe it (RemoteInvoker::Impl::PushVersion): how
// long the deploy waits for them before it answers, and how long a push may run on behind it.
// Both bound a best effort: a node that misses the push loads the version at its first call.
constexpr std::chrono::seconds kPushWait{5};
constexpr std::chrono::seconds kPushDeadline{30};
// Instance counts for describe: a node slower than this is left out rather than holding the
// control call.
constexpr std::chrono::milliseconds kStatsDeadline{500};

InvokeResult Failed(Outcome outcome, std::string message, std::string node = "") {
  InvokeResult r;
  r.outcome = outcome;
  r.error_message = std::move(message);
  r.node = std::move(node);
  return r;
}

std::shared_ptr<spdlog::logger> Log() {
  static auto log = log::Get("cluster");
  return log;
}

}  // namespace

struct RemoteInvoker::Impl : std::enable_shared_from_this<Impl> {
  cluster::NodeSource* nodes;
  store::Registry* registry;
  store::Ledger* ledger = nullptr;
  metering::Metrics* metrics = nullptr;
  std::string authorization;              // "Bearer <the nodes' secret>", sent with every call
  std::shared_ptr<const ClusterTls> tls;  // null: plaintext channels
  // Where every invocation's call to a node runs; its Runner's one thread reads and writes them
  // all (grpc_cq.h). It outlives this object: ~RemoteInvoker waits for the calls to end.
  grpc::CompletionQueue* queue = nullptr;

  std::mutex balancer_mu;
  std::unique_ptr<cluster::Balancer> balancer;  // guarded by balancer_mu (not thread-safe)

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<const scheduler::FunctionSpec>> functions;
  struct Channel {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::shared_ptr<Stub> stub;
  };
  std::map<std::string, Channel, std::less<>> channels;
  std::map<std::string, uint32_t, std::less<>> in_flight;  // by node id
  std::size_t in_flight_total = 0;
  std::map<std::string, std::string> prepared_on;       // function -> node that holds its zygote
  cluster::WarmTracker warm;                            // where each key was served lately
  std::condition_variable idle;                         // in_flight_total reached 0
  std::map<std::string, Clock::time_point> changed_at;  // last SetVersion/RemoveFunction
  std::mutex load_mu;  // one LoadFunctions at a time: a slower, older read never wins

  // The node to try next for `key`, skipping `tried`; nullopt when none is up. Counts the call
  // in flight on it.
  std::optional<cluster::NodeInfo> Pick(const std::string& key,
                                        const std::vector<std::string>& tried) {
    std::vector<cluster::NodeInfo> up = nodes->Up();
    std::erase_if(up, [&](const cluster::NodeInfo& n) {
      return std::find(tried.begin(), tried.end(), n.id) != tried.end();
    });
    if (up.empty()) {
      return std::nullopt;
    }
    std::vector<cluster::NodeLoad> loads;
    loads.reserve(up.size());
    {
      std::lock_guard lock(mu);
      for (const cluster::NodeInfo& n : up) {
        auto it = in_flight.find(n.id);
        loads.push_back({.id = n.id,
                         .capacity = n.capacity,
                         .in_flight = it == in_flight.end() ? 0 : it->second,
                         .reported_load = n.reported_load,
                         .others_load = n.others_load});
      }
      warm.Mark(key, loads, Clock::now());
    }
    std::size_t pick = 0;
    {
      std::lock_guard lock(balancer_mu);
      pick = std::min(balancer->Pick(key, loads), up.size() - 1);
    }
    return std::move(up[pick]);
  }

  std::shared_ptr<Stub> StubFor(const cluster::NodeInfo& node) {
    std::lock_guard lock(mu);
    Channel& c = channels[node.id];
    if (c.stub == nullptr || c.address != node.address) {
      grpc::ChannelArguments args;
      // A node that restarts is reachable again within a second, not after gRPC's default
      // reconnect backoff (up to 2 min).
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      args.SetMaxReceiveMessageSize(8 << 20);
      // Stay connected however long the node goes without a call: gRPC's default drops an idle
      // channel after 30 min, and the next call would pay the TCP and TLS handshakes.
      args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, std::numeric_limits<int>::max());
      c.address = node.address;
      std::shared_ptr<grpc::ChannelCredentials> creds = NodeChannelCredentials(tls.get(), &args);
      c.channel = grpc::CreateCustomChannel(node.address, creds, args);
      c.stub = v1::NodeService::NewStub(c.channel);
    }
    return c.stub;
  }

  // `node` came up: connect to it now (TCP, TLS, HTTP/2 settings), so that its first call or a
  // deploy's Prepare does not wait for the handshakes.
  void Connect(const cluster::NodeInfo& node) {
    StubFor(node);
    std::shared_ptr<grpc::Channel> channel;
    {
      std::lock_guard lock(mu);
      channel = channels[node.id].channel;
    }
    channel->GetState(/*try_to_connect=*/true);
  }

  void Begin(const std::string& node) {
    std::lock_guard lock(mu);
    ++in_flight[node];
    ++in_flight_total;
  }
  // `node` ran a call of `key`: an instance of it is there now (bounded-hash's warm hint).
  void Served(const std::string& key, const std::string& node) {
    std::lock_guard lock(mu);
    warm.Served(key, node, Clock::now());
  }
  void End(const std::string& node) {
    std::lock_guard lock(mu);
    if (auto it = in_flight.find(node); it != in_flight.end() && it->second > 0) {
      --it->second;
    }
    if (--in_flight_total == 0) {
      idle.notify_all();
    }
  }

  // One unary NodeService call to `node` with the nodes' secret, answered within `deadline`:
  // Unary(node, &Stub::Prepare, req, &reply, kPushDeadline).
  template <typename Request, typename Reply>
  grpc::Status Unary(const cluster::NodeInfo& node,
                     grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Reply*),
                     const Request& req, Reply* reply, std::chrono::milliseconds deadline) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", authorization);
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return (*StubFor(node).*method)(&ctx, req, reply);
  }

  // One node's Prepare begun beside a deploy's probe (PrepareOthers).
  struct EarlyPrepare {
    cluster::NodeInfo node;
    uint32_t version = 0;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;  // guarded by mu
    bool ok = false;    // guarded by mu
    bool Wait() {
      std::unique_lock lock(mu);
      cv.wait(lock, [this] { return done; });
      return ok;
    }
  };
  // function -> the Prepares begun with its deploy's probe; guarded by mu.
  std::map<std::string, std::vector<std::shared_ptr<EarlyPrepare>>> early;

  grpc::Status PrepareOn(const cluster::NodeInfo& node, const v1::NodePrepareRequest& req,
                         v1::NodePrepareReply* reply) {
    return Unary(node, &Stub::Prepare, req, reply, kPushDeadline);
  }

  // A deploy's probe runs on `probe`: every other node that is up prepares the same version at
  // the same time (each verifies the library sent with `req`, or fetches it when it was too
  // large to send, and starts the zygote), so that once the version is created PushVersion only
  // has to load it there. Not awaited here; a failed deploy drops these zygotes (DropEarly).
  void PrepareOthers(const std::shared_ptr<const v1::NodePrepareRequest>& req,
                     const std::string& probe) {
    std::vector<std::shared_ptr<EarlyPrepare>> started;
    for (const cluster::NodeInfo& node : nodes->Up()) {
      if (node.id == probe) {
        continue;
      }
      auto e = std::make_shared<EarlyPrepare>();
      e->node = node;
      e->version = req->version().version();
      started.push_back(e);
      Begin(node.id);
      std::thread([self = shared_from_this(), e, req] {
        v1::NodePrepareReply reply;
        grpc::Status s = self->PrepareOn(e->node, *req, &reply);
        if (!s.ok() || reply.code() != 0) {
          FAAS_LOG(Log(), warn, "node.push_failed", {"fn", req->version().function()},
                   {"version", e->version}, {"node", e->node.id},
                   {"error", "prepare: " + (s.ok() ? reply.message() : s.error_message())});
        }
        self->End(e->node.id);
        {
          std::lock_guard lock(e->mu);
          e->done = true;
          e->ok = s.ok() && reply.code() == 0;
        }
        e->cv.notify_all();
      }).detach();
    }
    std::lock_guard lock(mu);
    early[req->version().function()] = std::move(started);
  }

  std::vector<std::shared_ptr<EarlyPrepare>> TakeEarly(const std::string& function) {
    std::lock_guard lock(mu);
    auto it = early.find(function);
    if (it == early.end()) {
      return {};
    }
    auto out = std::move(it->second);
    early.erase(it);
    return out;
  }

  // The deploy failed: each node that prepared beside its probe stops that zygote once its
  // Prepare has ended (best effort, behind the deploy's answer).
  void DropEarly(const std::string& function) {
    for (std::shared_ptr<EarlyPrepare>& e : TakeEarly(function)) {
      Begin(e->node.id);
      std::thread([self = shared_from_this(), e, function] {
        if (e->Wait()) {
          self->DropOn(e->node, function);
        }
        self->End(e->node.id);
      }).detach();
    }
  }

  void DropOn(const cluster::NodeInfo& node, const std::string& function) {
    v1::NodeFunctionName req;
    req.set_name(function);
    v1::NodeEmpty reply;
    Unary(node, &Stub::DropPrepared, req, &reply, kControlDeadline).ok();  // best effort
  }

  // Makes `v` current on every node that is up, all at once: `probe` (the deploy's probe node)
  // and the nodes whose early Prepare of this version succeeded only load it (a Prewarm of 0,
  // adopting the zygote); any other node prepares it first. Returns when each has answered or
  // kPushWait has passed, whichever is first; a node still busy then goes on (counted in flight,
  // so the RemoteInvoker's destructor waits for it). A node fetches the library through its
  // registry and verifies its sha256 before it loads it, as for any call.
  void PushVersion(const store::Version& v, const std::string& probe) {
    struct Pending {
      std::mutex mu;
      std::condition_variable cv;
      std::size_t left = 0;
    };
    auto pending = std::make_shared<Pending>();
    std::map<std::string, std::shared_ptr<EarlyPrepare>> early_by_node;
    for (std::shared_ptr<EarlyPrepare>& e : TakeEarly(v.function)) {
      early_by_node[e->node.id] = std::move(e);
    }
    v1::NodePrepareRequest prepare;
    v1::NodeVersionRef* ref = prepare.mutable_version();
    ref->set_function(v.function);
    ref->set_version(v.version);
    ref->set_artifact_sha256(v.artifact_sha256);
    ref->set_config_json(store::ConfigToJson(v.config));
    ref->set_uid(v.uid);
    v1::NodePrewarmRequest load;
    load.set_function(v.function);
    load.set_version(v.version);
    load.set_count(0);
    const auto t0 = Clock::now();
    for (const cluster::NodeInfo& node : nodes->Up()) {
      std::shared_ptr<EarlyPrepare> e;
      if (auto it = early_by_node.find(node.id); it != early_by_node.end()) {
        e = it->second;
      }
      {
        std::lock_guard lock(pending->mu);
        ++pending->left;
      }
      Begin(node.id);
      std::thread([self = shared_from_this(), pending, node, prepare, load, e, t0,
                   probed = node.id == probe] {
        std::string error;
        bool needs_prepare = !probed;
        if (!probed && e != nullptr) {
          const bool ok = e->Wait();
          if (e->version != load.version()) {
            // The deploy found this content already latest (or another deploy took the number
            // meanwhile): the nodes run that version already; the early zygote is not it.
            if (ok) {
              self->DropOn(node, load.function());
            }
            needs_prepare = false;
          } else if (ok) {
            needs_prepare = false;
          }
        }
        if (needs_prepare) {
          v1::NodePrepareReply reply;
          grpc::Status s = self->PrepareOn(node, prepare, &reply);
          if (!s.ok() || reply.code() != 0) {
            error = "prepare: " + (s.ok() ? reply.message() : s.error_message());
          }
        }
        if (error.empty()) {
          v1::NodePrewarmReply reply;
          grpc::Status s = self->Unary(node, &Stub::Prewarm, load, &reply,
                                       probed ? kControlDeadline : kPushDeadline);
          if (!s.ok() || reply.code() != 0) {
            error = "load: " + (s.ok() ? reply.message() : s.error_message());
          }
        }
        if (!error.empty()) {
          FAAS_LOG(Log(), warn, probed ? "node.load_failed" : "node.push_failed",
                   {"fn", load.function()}, {"version", load.version()}, {"node", node.id},
                   {"error", error});
        } else if (!probed) {
          FAAS_LOG(Log(), info, "node.pushed", {"fn", load.function()}, {"version", load.version()},
                   {"node", node.id}, {"early", e != nullptr}, {"ms", ToMillis(Clock::now() - t0)});
        }
        self->End(node.id);
        std::lock_guard lock(pending->mu);
        --pending->left;
        pending->cv.notify_all();
      }).detach();
    }
    std::unique_lock lock(pending->mu);
    pending->cv.wait_for(lock, kPushWait, [&] { return pending->left == 0; });
  }

  std::shared_ptr<const scheduler::FunctionSpec> Current(const std::string& name) const {
    std::lock_guard lock(mu);
    auto it = functions.find(name);
    return it == functions.end() ? nullptr : it->second;
  }

  // One invocation across its attempts (one per node tried).
  struct Call {
    std::string name;
    std::string key;  // function@version: the balancer's affinity key
    uint32_t version = 0;
    scheduler::InvokeRequest request;  // kept whole: a call not delivered goes to the next node
    std::chrono::system_clock::time_point deadline;
    std::chrono::milliseconds budget{0};  // deadline - start of an attempt
    // A call lost with its node runs once more elsewhere: the function is deployed
    // --idempotent or the request carries Idempotency-Key (CLUSTER.md §5).
    bool retry_if_lost = false;
    int lost_attempts = 0;
    std::vector<std::string> tried;
    std::function<void(InvokeResult)> finish;
    int64_t start_unix_ms = UnixMillisNow();
    Clock::time_point t0 = Clock::now();
  };

  // The ledger row of a call lost with its node (CLUSTER.md §5: outcome node_lost, 0 ms billed),
  // under `id`: the invocation's own, or INV.N for attempt N when the call is run again (the
  // retry's row, written by the node that serves it, keeps INV).
  void RecordLost(const Call& call, const std::string& id) {
    if (metrics != nullptr) {
      metrics->RecordOutcome(call.name, "node_lost");
    }
    if (ledger == nullptr) {
      return;
    }
    store::InvocationRecord rec;
    rec.invocation_id = id;
    rec.function = call.name;
    rec.version = call.version;
    rec.trigger = call.request.trigger;
    rec.start_unix_ms = call.start_unix_ms;
    rec.wall_ns = static_cast<uint64_t>((Clock::now() - call.t0).count());
    rec.outcome = "node_lost";
    rec.error_code = "node_lost";
    rec.tenant = call.request.tenant;
    rec.queue = call.request.queue;
    rec.message_id = call.request.message_id;
    if (Status s = ledger->Append(rec); !s.ok()) {
      FAAS_LOG(Log(), err, "ledger.append_failed", {"inv", rec.invocation_id},
               {"error", s.message()});
    }
  }

  void Start(std::string name, scheduler::InvokeRequest request,
             std::function<void(InvokeResult)> finish) {
    auto spec = Current(name);
    if (spec == nullptr) {
      finish(Failed(Outcome::kNotFound, "function \"" + name + "\" does not exist"));
      return;
    }
    auto call = std::make_shared<Call>();
    call->version = spec->version;
    call->key = name + "@" + std::to_string(spec->version);
    call->name = std::move(name);
    call->request = std::move(request);
    call->budget = spec->config.timeout + store::EffectiveQueueTimeout(spec->config) + kNodeSlack;
    call->deadline = std::chrono::system_clock::now() + call->budget;
    call->retry_if_lost = spec->config.idempotent;
    for (const auto& [k, v] : call->request.headers) {
      call->retry_if_lost = call->retry_if_lost || k == "idempotency-key";
    }
    call->finish = std::move(finish);
    Attempt(std::move(call));
  }

  void Attempt(std::shared_ptr<Call> call);
};

namespace {

// How one attempt on `node` ended, for both kinds of attempt below. `delivered`: the node sent
// its initial metadata, so it took the call. `result`: the whole answer, when it arrived.
// `small`: an InvokeSmall attempt, which returns false when it should be made again as a
// stream (a node that predates InvokeSmall refused it before taking the call).
// The attempt counts as in flight until it has been concluded (and any next attempt begun), so
// that ~RemoteInvoker, which waits for none to be in flight, never stops the queue under it.
bool Conclude(const std::shared_ptr<RemoteInvoker::Impl>& impl,
              std::shared_ptr<RemoteInvoker::Impl::Call>& call, const cluster::NodeInfo& node,
              const grpc::Status& status, bool delivered, InvokeResult* result, bool small) {
  if (small && !delivered && status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return false;  // still in flight: the caller makes the same attempt as a stream
  }
  const bool broken = status.error_code() == grpc::StatusCode::UNAVAILABLE;
  if (status.ok() && result != nullptr) {
    result->node = node.id;
    // Only outcomes after which the instance lives on; a crash or time-out killed it.
    if (result->outcome == Outcome::kOk || result->outcome == Outcome::kFunctionError) {
      impl->Served(call->key, node.id);
    }
    call->finish(std::move(*result));
  } else if (!delivered && (broken || RefusedByThisNodeOnly(status.error_code()))) {
    // Refused or reset before the node took the call: the function never started there.
    impl->nodes->MarkDown(node.id, status.error_message());
    impl->Attempt(std::move(call));
  } else if (delivered || broken) {
    if (broken) {
      impl->nodes->MarkDown(node.id, status.error_message());
    }
    const bool retry = call->retry_if_lost && call->lost_attempts == 0;
    FAAS_LOG(Log(), warn, "node.lost_call", {"node", node.id}, {"fn", call->name},
             {"inv", call->request.invocation_id}, {"error", status.error_message()},
             {"retry", retry});
    const std::string& inv = call->request.invocation_id;
    if (retry) {
      // Once, on another node (Pick skips the tried ones), with a fresh time budget.
      ++call->lost_attempts;
      impl->RecordLost(*call, inv + "." + std::to_string(call->tried.size()));
      call->deadline = std::chrono::system_clock::now() + call->budget;
      impl->Attempt(std::move(call));
      impl->End(node.id);
      return true;
    }
    impl->RecordLost(*call, inv);
    call->finish(Failed(Outcome::kNodeLost,
                        "node \"" + node.id + "\" was lost while it ran the invocation (" +
                            status.error_message() + ")",
                        node.id));
  } else {
    call->finish(Failed(
        Outcome::kInternal,
        "node \"" + node.id + "\" refused the invocation: " + status.error_message(), node.id));
  }
  impl->End(node.id);
  return true;
}

void FillHead(const RemoteInvoker::Impl::Call& call, v1::NodeInvokeHead* head) {
  ToProto(call.request, head);
  head->set_function(call.name);
  head->set_version(call.version);
  head->set_deadline_unix_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline.time_since_epoch())
          .count());
}

// What an attempt of either kind below holds: the call, the node it tries, the call's context
// (deadline, the nodes' secret), and whether the node took the call.
template <typename Reactor>
class NodeAttempt : public Reactor {
 public:
  NodeAttempt(std::shared_ptr<RemoteInvoker::Impl> impl,
              std::shared_ptr<RemoteInvoker::Impl::Call> call, cluster::NodeInfo node)
      : impl_(std::move(impl)), call_(std::move(call)), node_(std::move(node)) {
    ctx_.set_deadline(call_->deadline);
    ctx_.AddMetadata("authorization", impl_->authorization);
  }

  void OnReadInitialMetadataDone(bool ok) override { delivered_ = ok; }

 protected:
  std::shared_ptr<RemoteInvoker::Impl> impl_;
  std::shared_ptr<RemoteInvoker::Impl::Call> call_;
  cluster::NodeInfo node_;
  grpc::ClientContext ctx_;
  bool delivered_ = false;  // the node sent its initial metadata: it took the call
};

// One attempt of one invocation on one node, as a stream: the request body goes in chunks
// after the head, the answer comes back the same way, on the gateway's queue thread. Deletes
// itself when the call is over.
class InvokeStream final
    : public NodeAttempt<cq::ClientBidi<v1::NodeInvokeFrame, v1::NodeInvokeReply>> {
 public:
  using NodeAttempt::NodeAttempt;

  void Start() {
    FillHead(*call_, out_.mutable_head());
    StartCall(&ctx_, impl_->StubFor(node_)->PrepareAsyncInvoke(&ctx_, impl_->queue), &out_, &in_);
  }

  void OnWriteDone(bool ok) override {
    const std::string& body = call_->request.body;
    if (!ok) {
      return;  // the stream broke; OnDone says how
    }
    if (sent_ < body.size()) {
      std::size_t n = std::min(kNodeChunkBytes, body.size() - sent_);
      out_.set_chunk(body.data() + sent_, n);
      sent_ += n;
      StartWrite(&out_);
    } else {
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      return;
    }
    if (in_.has_head()) {
      result_ = FromProto(in_.head());
      body_bytes_ = in_.head().body_bytes();
      result_.body.reserve(std::min<uint64_t>(body_bytes_, 8u << 20));
      have_head_ = true;
    } else if (have_head_) {
      result_.body += in_.chunk();
    }
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    const bool whole = have_head_ && result_.body.size() == body_bytes_;
    Conclude(impl_, call_, node_, status, delivered_, whole ? &result_ : nullptr, /*small=*/false);
    delete this;
  }

 private:
  v1::NodeInvokeFrame out_;
  v1::NodeInvokeReply in_;
  std::size_t sent_ = 0;
  bool have_head_ = false;
  uint64_t body_bytes_ = 0;
  InvokeResult result_;
};

// One attempt whose request body fits one chunk, as one unary call (InvokeSmall): the same
// protocol as InvokeStream in one message each way, a third of the completions (docs/design/
// 0037, "Per call"). Deletes itself when over.
class InvokeOnce final : public NodeAttempt<cq::ClientUnary<v1::NodeInvokeSmallReply>> {
 public:
  using NodeAttempt::NodeAttempt;

  void Start() {
    FillHead(*call_, req_.mutable_head());
    req_.set_body(call_->request.body);
    StartCall(impl_->StubFor(node_)->PrepareAsyncInvokeSmall(&ctx_, req_, impl_->queue), &reply_);
  }

  void OnDone(const grpc::Status& status) override {
    InvokeResult result;
    const bool whole =
        status.ok() && reply_.has_head() && reply_.body().size() == reply_.head().body_bytes();
    if (whole) {
      result = FromProto(reply_.head());
      result.body = std::move(*reply_.mutable_body());
    }
    if (!Conclude(impl_, call_, node_, status, delivered_, whole ? &result : nullptr,
                  /*small=*/true)) {
      // A node from before InvokeSmall: the same attempt as a stream, on the same node (still
      // counted in flight).
      (new InvokeStream(impl_, std::move(call_), node_))->Start();
    }
    delete this;
  }

 private:
  v1::NodeInvokeSmall req_;
  v1::NodeInvokeSmallReply reply_;
};

}  // namespace

void RemoteInvoker::Impl::Attempt(std::shared_ptr<Call> call) {
  std::optional<cluster::NodeInfo> node = Pick(call->key, call->tried);
  if (!node) {
    std::string tried;
    for (const std::string& id : call->tried) {
      tried += (tried.empty() ? " (tried " : ", ") + id;
    }
    call->finish(Failed(Outcome::kNoCapacity, "no node is available to run \"" + call->name + "\"" +
                                                  (tried.empty() ? "" : tried + ")")));
    return;
  }
  call->tried.push_back(node->id);
  Begin(node->id);
  if (call->request.body.size() <= kNodeChunkBytes) {
    (new InvokeOnce(shared_from_this(), std::move(call), std::move(*node)))->Start();
  } else {
    (new InvokeStream(shared_from_this(), std::move(call), std::move(*node)))->Start();
  }
}

RemoteInvoker::RemoteInvoker(grpc::CompletionQueue* queue, cluster::NodeSource* nodes,
                             std::unique_ptr<cluster::Balancer> balancer, store::Registry* registry,
                             const std::string& secret, store::Ledger* ledger,
                             metering::Metrics* metrics, std::shared_ptr<const ClusterTls> tls)
    : impl_(std::make_shared<Impl>()) {
  impl_->queue = queue;
  impl_->ledger = ledger;
  impl_->metrics = metrics;
  impl_->tls = std::move(tls);
  impl_->authorization = "Bearer " + secret;
  FAAS_CHECK(queue != nullptr && nodes != nullptr && balancer != nullptr && registry != nullptr);
  impl_->nodes = nodes;
  impl_->balancer = std::move(balancer);
  impl_->registry = registry;
  // The health checker takes our calls in flight on a node out of each of its load reports, so
  // that bounded-hash can count everyone else's load once and ours as it is now
  // (docs/design/0017-balancing.md, "Several gateways"). A weak reference: a probe round may
  // outlast this object.
  nodes->SetOnUp([weak = std::weak_ptr<Impl>(impl_)](const cluster::NodeInfo& node) {
    if (std::shared_ptr<Impl> impl = weak.lock()) {
      impl->Connect(node);
    }
  });
  nodes->SetOwnInFlight([weak = std::weak_ptr<Impl>(impl_)](std::string_view id) -> double {
    std::shared_ptr<Impl> impl = weak.lock();
    if (impl == nullptr) {
      return -1;
    }
    std::lock_guard lock(impl->mu);
    auto it = impl->in_flight.find(id);
    return it == impl->in_flight.end() ? 0 : it->second;
  });
}

RemoteInvoker::~RemoteInvoker() {
  impl_->nodes->SetOwnInFlight(nullptr);
  impl_->nodes->SetOnUp(nullptr);
  // Calls in flight hold the Impl; the NodeSource and registry they use must outlive them.
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->in_flight_total == 0; });
}

Status RemoteInvoker::LoadFunctions() {
  std::lock_guard load(impl_->load_mu);
  // A change this gateway made after the read started is newer than what the read returns.
  const Clock::time_point started = Clock::now();
  auto changed_since_read = [this, started](const std::string& name) {
    auto it = impl_->changed_at.find(name);  // mu held
    return it != impl_->changed_at.end() && it->second >= started;
  };
  FAAS_ASSIGN_OR_RETURN(std::vector<store::FunctionRecord> all, impl_->registry->ListFunctions());
  std::set<std::string> stored;
  for (const store::FunctionRecord& rec : all) {
    stored.insert(rec.name);
    bool stale = false;
    {
      std::lock_guard lock(impl_->mu);
      auto it = impl_->functions.find(rec.name);
      stale = !changed_since_read(rec.name) &&
              (it == impl_->functions.end() || it->second->version != rec.latest.version ||
               it->second->config != rec.latest.config);
    }
    if (stale) {
      SetVersion(rec.latest);
    }
  }
  std::lock_guard lock(impl_->mu);
  std::erase_if(impl_->functions, [&](const auto& f) {
    return !stored.contains(f.first) && !changed_since_read(f.first);
  });
  return OkStatus();
}

std::size_t RemoteInvoker::InFlight() const {
  std::lock_guard lock(impl_->mu);
  return impl_->in_flight_total;
}

std::shared_ptr<const scheduler::FunctionSpec> RemoteInvoker::Current(
    const std::string& name) const {
  return impl_->Current(name);
}

InvokeResult RemoteInvoker::Invoke(const std::string& name, scheduler::InvokeRequest request) {
  auto promise = std::make_shared<std::promise<InvokeResult>>();
  std::future<InvokeResult> result = promise->get_future();
  impl_->Start(name, std::move(request),
               [promise](InvokeResult r) { promise->set_value(std::move(r)); });
  return result.get();
}

void RemoteInvoker::InvokeAsync(const std::string& name, scheduler::InvokeRequest request,
                                EventLoop* loop, std::function<void(InvokeResult)> done) {
  impl_->Start(name, std::move(request), [loop, done = std::move(done)](InvokeResult r) {
    loop->Post([done, r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

bool RemoteInvoker::SendsLibrary(std::size_t size) const {
  return size > 0 && size <= kMaxPrepareLibraryBytes;
}

Status RemoteInvoker::Prepare(const store::Version& v, std::chrono::nanoseconds* took,
                              const PrepareExtras& extras) {
  uint32_t version = v.version;
  if (version == 0) {
    // A deploy's probe: place it where the version it is about to become will be invoked.
    version = 1;
    if (auto all = impl_->registry->ListVersions(v.function); all.ok() && !all->empty()) {
      version = all->back().version + 1;
    }
  }
  // Shared with the other nodes' Prepares (PrepareOthers): the library is copied once.
  auto req = std::make_shared<v1::NodePrepareRequest>();
  v1::NodeVersionRef* ref = req->mutable_version();
  ref->set_function(v.function);
  ref->set_version(version);
  ref->set_artifact_sha256(v.artifact_sha256);
  ref->set_config_json(store::ConfigToJson(v.config));
  ref->set_uid(v.uid);
  if (SendsLibrary(extras.library.size())) {
    req->set_library(extras.library.data(), extras.library.size());
  }
  const std::string key = v.function + "@" + std::to_string(version);
  std::vector<std::string> tried;
  while (std::optional<cluster::NodeInfo> node = impl_->Pick(key, tried)) {
    if (tried.empty()) {
      if (v.version == 0) {
        impl_->PrepareOthers(req, node->id);  // a deploy: the other nodes prepare meanwhile
      }
      if (extras.sent) {
        extras.sent();  // nothing below reads the registry
      }
    }
    tried.push_back(node->id);
    impl_->Begin(node->id);
    v1::NodePrepareReply reply;
    grpc::Status s = impl_->Unary(*node, &Stub::Prepare, *req, &reply, kPrepareDeadline);
    impl_->End(node->id);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      impl_->nodes->MarkDown(node->id, s.error_message());
      continue;  // a probe is safe to run again elsewhere
    }
    if (!s.ok()) {
      return UnavailableError("node \"" + node->id + "\": " + s.error_message());
    }
    if (took != nullptr) {
      *took = std::chrono::nanoseconds(reply.took_ns());
    }
    if (reply.code() == 0) {
      std::lock_guard lock(impl_->mu);
      impl_->prepared_on[v.function] = node->id;
    }
    FAAS_LOG(Log(), info, "node.prepared", {"fn", v.function}, {"version", version},
             {"node", node->id}, {"ok", reply.code() == 0});
    return Status(static_cast<StatusCode>(reply.code()), reply.message());
  }
  return UnavailableError("no node is up to run \"" + v.function +
                          "\" (start faasd --role node, and check the gateway's --nodes)");
}

void RemoteInvoker::DropPrepared(const std::string& name) {
  impl_->DropEarly(name);
  std::string node_id;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->prepared_on.find(name);
    if (it == impl_->prepared_on.end()) {
      return;
    }
    node_id = std::move(it->second);
    impl_->prepared_on.erase(it);
  }
  for (const cluster::NodeInfo& node : impl_->nodes->Up()) {
    if (node.id == node_id) {
      impl_->DropOn(node, name);
    }
  }
}

void RemoteInvoker::SetVersion(const store::Version& v) {
  auto spec = std::make_shared<scheduler::FunctionSpec>();
  spec->name = v.function;
  spec->version = v.version;
  spec->config = v.config;
  spec->uid = v.uid;
  std::string prepared;
  {
    std::lock_guard lock(impl_->mu);
    impl_->functions[v.function] = std::move(spec);
    impl_->changed_at[v.function] = Clock::now();
    if (auto it = impl_->prepared_on.find(v.function); it != impl_->prepared_on.end()) {
      prepared = std::move(it->second);
      impl_->prepared_on.erase(it);
    }
  }
  if (prepared.empty()) {
    return;  // not a change made through this gateway (LoadFunctions): its gateway pushed it
  }
  // The node that probed the version loads it now, adopting the zygote, and so do the others
  // (they prepared it beside the probe; a rollback's are asked now): the deploy answers once the
  // first call on any node can fork (docs/design/0030, "Rollout").
  impl_->PushVersion(v, prepared);
}

void RemoteInvoker::RemoveFunction(const std::string& name) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->functions.erase(name);
    impl_->changed_at[name] = Clock::now();
  }
  for (const cluster::NodeInfo& node : impl_->nodes->Up()) {
    v1::NodeFunctionName req;
    req.set_name(name);
    v1::NodeEmpty reply;
    grpc::Status s = impl_->Unary(node, &Stub::Remove, req, &reply, kControlDeadline);
    if (!s.ok()) {
      FAAS_LOG(Log(), warn, "node.remove_failed", {"fn", name}, {"node", node.id},
               {"error", s.error_message()});
    }
  }
}

namespace {

// One NodeService.Stats call of AskEveryNode, on the gateway's queue: OnDone records the status
// and counts the call done (the asker waits for every one before the asks go away).
struct StatsAsk final : cq::ClientUnary<v1::NodeStatsReply> {
  std::string node;
  grpc::ClientContext ctx;
  v1::NodeStatsReply reply;
  grpc::Status status;
  std::mutex* done_mu = nullptr;
  std::condition_variable* done_cv = nullptr;
  std::size_t* done = nullptr;

  void OnReadInitialMetadataDone(bool /*ok*/) override {}
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(*done_mu);
    status = s;
    ++*done;
    done_cv->notify_all();
  }
};

}  // namespace

// NodeService.Stats of `name` ("" = every function) on every node that is up, all in flight at
// once; returns when each has answered or hit the 500 ms deadline.
static std::vector<std::unique_ptr<StatsAsk>> AskEveryNode(RemoteInvoker::Impl& impl,
                                                           const std::string& name) {
  std::vector<cluster::NodeInfo> up = impl.nodes->Up();
  std::vector<std::unique_ptr<StatsAsk>> asks;
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::size_t done = 0;
  v1::NodeFunctionName req;
  req.set_name(name);
  const auto deadline = std::chrono::system_clock::now() + kStatsDeadline;
  for (const cluster::NodeInfo& node : up) {
    auto& ask = asks.emplace_back(std::make_unique<StatsAsk>());
    ask->node = node.id;
    ask->done_mu = &done_mu;
    ask->done_cv = &done_cv;
    ask->done = &done;
    ask->ctx.AddMetadata("authorization", impl.authorization);
    ask->ctx.set_deadline(deadline);
    ask->StartCall(impl.StubFor(node)->PrepareAsyncStats(&ask->ctx, req, impl.queue), &ask->reply);
  }
  {
    // Every ask ends by the deadline (gRPC ends the call then), and must end before the asks
    // and this frame go away.
    std::unique_lock lock(done_mu);
    done_cv.wait(lock, [&] { return done == asks.size(); });
  }
  for (const auto& ask : asks) {
    if (!ask->status.ok()) {
      FAAS_LOG(Log(), debug, "node.stats_failed", {"node", ask->node},
               {"error", ask->status.error_message()});
    }
  }
  return asks;
}

scheduler::FunctionStats RemoteInvoker::Stats(const std::string& name) const {
  scheduler::FunctionStats sum;
  for (const auto& ask : AskEveryNode(*impl_, name)) {
    if (!ask->status.ok()) {
      continue;
    }
    for (const v1::NodeFunctionStats& f : ask->reply.functions()) {
      if (f.function() == name) {
        sum.idle += f.idle();
        sum.busy += f.busy();
        sum.waiting += f.waiting();
        sum.invocations += f.invocations();
        sum.cold_starts += f.cold_starts();
      }
    }
  }
  return sum;
}

std::map<std::string, std::map<std::string, scheduler::FunctionStats>> RemoteInvoker::NodeStats()
    const {
  std::map<std::string, std::map<std::string, scheduler::FunctionStats>> out;
  for (const auto& ask : AskEveryNode(*impl_, "")) {
    if (!ask->status.ok()) {
      continue;
    }
    auto& fns = out[ask->node];
    for (const v1::NodeFunctionStats& f : ask->reply.functions()) {
      scheduler::FunctionStats& st = fns[f.function()];
      st.idle = f.idle();
      st.busy = f.busy();
      st.waiting = f.waiting();
      st.invocations = f.invocations();
      st.cold_starts = f.cold_starts();
    }
  }
  return out;
}

Result<uint32_t> RemoteInvoker::Prewarm(const std::string& name, uint32_t count) {
  auto spec = Current(name);
  if (spec == nullptr) {
    return NotFoundError("function \"" + name + "\" does not exist");
  }
  const std::string key = name + "@" + std::to_string(spec->version);
  std::vector<std::string> tried;
  while (std::optional<cluster::NodeInfo> node = impl_->Pick(key, tried)) {
    tried.push_back(node->id);
    impl_->Begin(node->id);
    v1::NodePrewarmRequest req;
    req.set_function(name);
    req.set_version(spec->version);
    req.set_count(count);
    v1::NodePrewarmReply reply;
    grpc::Status s = impl_->Unary(*node, &Stub::Prewarm, req, &reply, kPrepareDeadline);
    impl_->End(node->id);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      impl_->nodes->MarkDown(node->id, s.error_message());
      continue;
    }
    if (!s.ok()) {
      return UnavailableError("node \"" + node->id + "\": " + s.error_message());
    }
    if (reply.code() != 0) {
      return Status(static_cast<StatusCode>(reply.code()), reply.message());
    }
    if (count > 0) {
      impl_->Served(key, node->id);
    }
    return reply.started();
  }
  return UnavailableError("no node is up to run \"" + name + "\"");
}

}  // namespace faas::daemon
