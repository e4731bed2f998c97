#include "node_service.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "faas/base/event_loop.h"
#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/store/config.h"
#include "faas/v1/node.grpc.pb.h"

#include "count_gate.h"
#include "grpc_auth.h"
#include "grpc_cq.h"

namespace faas::daemon {
namespace {

using scheduler::Outcome;

// The largest request body a node takes: above every function's limit (6 MiB), so the
// scheduler's own check answers payload_too_large; a larger stream is a broken gateway.
constexpr std::size_t kMaxNodeBodyBytes = 8u << 20;

v1::NodeOutcome OutcomeToProto(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return v1::NODE_OUTCOME_OK;
    case Outcome::kFunctionError:
      return v1::NODE_OUTCOME_FUNCTION_ERROR;
    case Outcome::kCrashed:
      return v1::NODE_OUTCOME_CRASHED;
    case Outcome::kTimeout:
      return v1::NODE_OUTCOME_TIMEOUT;
    case Outcome::kInitFailed:
      return v1::NODE_OUTCOME_INIT_FAILED;
    case Outcome::kResponseTooLarge:
      return v1::NODE_OUTCOME_RESPONSE_TOO_LARGE;
    case Outcome::kSandboxViolation:
      return v1::NODE_OUTCOME_SANDBOX_VIOLATION;
    case Outcome::kNoCapacity:
      return v1::NODE_OUTCOME_NO_CAPACITY;
    case Outcome::kNotFound:
      return v1::NODE_OUTCOME_NOT_FOUND;
    case Outcome::kPayloadTooLarge:
      return v1::NODE_OUTCOME_PAYLOAD_TOO_LARGE;
    case Outcome::kShuttingDown:
      return v1::NODE_OUTCOME_SHUTTING_DOWN;
    case Outcome::kInternal:
    case Outcome::kNodeLost:  // a gateway's outcome; a node never sends it
      return v1::NODE_OUTCOME_INTERNAL;
  }
  return v1::NODE_OUTCOME_INTERNAL;
}

Outcome OutcomeFromProto(v1::NodeOutcome o) {
  switch (o) {
    case v1::NODE_OUTCOME_OK:
      return Outcome::kOk;
    case v1::NODE_OUTCOME_FUNCTION_ERROR:
      return Outcome::kFunctionError;
    case v1::NODE_OUTCOME_CRASHED:
      return Outcome::kCrashed;
    case v1::NODE_OUTCOME_TIMEOUT:
      return Outcome::kTimeout;
    case v1::NODE_OUTCOME_INIT_FAILED:
      return Outcome::kInitFailed;
    case v1::NODE_OUTCOME_RESPONSE_TOO_LARGE:
      return Outcome::kResponseTooLarge;
    case v1::NODE_OUTCOME_SANDBOX_VIOLATION:
      return Outcome::kSandboxViolation;
    case v1::NODE_OUTCOME_NO_CAPACITY:
      return Outcome::kNoCapacity;
    case v1::NODE_OUTCOME_NOT_FOUND:
      return Outcome::kNotFound;
    case v1::NODE_OUTCOME_PAYLOAD_TOO_LARGE:
      return Outcome::kPayloadTooLarge;
    case v1::NODE_OUTCOME_SHUTTING_DOWN:
      return Outcome::kShuttingDown;
    default:
      return Outcome::kInternal;
  }
}

int64_t Ns(std::chrono::nanoseconds d) {
  return static_cast<int64_t>(d.count());
}

class NodeServiceImpl;

// What both calls below hold: the request (its head kept for Dispatch), and the service.
// Run, once the request is whole, takes it through the drain gate to the scheduler and hands
// the answer to Call::Answer (defined below NodeServiceImpl). Each deletes itself in OnDone.
// Both run on the completion-queue API (grpc_cq.h): the node's one queue thread reads and
// writes every call, and the event loops start writes of their own.
template <typename Call, typename Rpc>
class NodeCall : public Rpc {
 public:
  explicit NodeCall(NodeServiceImpl* service);  // counted until deleted (NodeServer::Shutdown)
  ~NodeCall() override;
  NodeCall(const NodeCall&) = delete;
  NodeCall& operator=(const NodeCall&) = delete;

  void OnDone() override { delete static_cast<Call*>(this); }

  // Runs on an event loop once the version is ready (or could not be made ready): Admit, then
  // Invoke.
  void Run(EventLoop* loop, scheduler::Scheduler* sched, const Status& ready);
  // Through the drain gate: false when the node is draining (the call is refused, not
  // delivered). Once admitted, the call counts as delivered: its initial metadata goes out.
  bool Admit();
  // An admitted call to the scheduler, on `loop`; the answer goes to Call::Answer.
  void Invoke(EventLoop* loop, scheduler::Scheduler* sched);

  const v1::NodeInvokeHead& head() const { return head_; }

 protected:
  NodeServiceImpl* service_;
  v1::NodeInvokeHead head_;
  scheduler::InvokeRequest request_;
};

// One invocation on the node, as a stream (Invoke): the request is read as it arrives, the
// scheduler runs it on one of the node's event loops (Scheduler::InvokeAsync, the warm path of
// docs/design/0006), and the answer is written back; no thread waits for it.
class InvokeReactor final
    : public NodeCall<InvokeReactor, cq::ServerBidi<v1::NodeInvokeFrame, v1::NodeInvokeReply>> {
 public:
  using NodeCall::NodeCall;

  void OnArrived() override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;

  // The scheduler's answer: head, then body chunks.
  void Answer(scheduler::InvokeResult r);

 private:
  v1::NodeInvokeFrame in_;
  bool have_head_ = false;
  v1::NodeInvokeReply out_;
  std::string body_;  // the answer's body, written in chunks
  std::size_t sent_ = 0;
};

// One invocation whose request came whole in one message (InvokeSmall): the same steps as
// InvokeReactor after its last read, and the answer in one message.
class InvokeOnceReactor final
    : public NodeCall<InvokeOnceReactor,
                      cq::ServerUnary<v1::NodeInvokeSmall, v1::NodeInvokeSmallReply>> {
 public:
  using NodeCall::NodeCall;

  void OnArrived() override;
  void Answer(scheduler::InvokeResult r);
};

grpc::Status Unauthenticated() {
  return {grpc::StatusCode::UNAUTHENTICATED,
          "this node serves only its cluster's gateways: the call lacks the nodes' secret"};
}

class NodeServiceImpl final
    : public v1::NodeService::WithAsyncMethod_InvokeSmall<
          v1::NodeService::WithAsyncMethod_Invoke<v1::NodeService::Service>> {
 public:
  explicit NodeServiceImpl(NodeServiceDeps deps, std::vector<EventLoop*> loops)
      : d_(std::move(deps)), loops_(std::move(loops)) {}

  // From now on `queue` takes every Invoke and InvokeSmall: one of each is always asked for.
  void Listen(grpc::ServerCompletionQueue* queue) {
    queue_ = queue;
    AwaitStream();
    AwaitSmall();
  }
  void AwaitStream() {
    auto* call = new InvokeReactor(this);
    RequestInvoke(call->context(), call->stream(), queue_, queue_, call->ArrivalTag());
  }
  void AwaitSmall() {
    auto* call = new InvokeOnceReactor(this);
    RequestInvokeSmall(call->context(), call->request(), call->writer(), queue_, queue_,
                       call->ArrivalTag());
  }

  bool Authorized(const grpc::ServerContextBase& ctx) const { return HasBearer(ctx, d_.secret); }

  // Every call object, from the ask to its deletion: NodeServer::Shutdown stops the queue only
  // once none is left.
  void CallCreated() { calls_.Enter(); }  // never closed: always counts
  void CallDeleted() { calls_.Leave(); }
  void WaitForNoCalls() { calls_.WaitEmpty(); }

  // The whole request is in: make its version current, then run it on an event loop. Loading a
  // version the node does not run yet reads the registry and may fetch a library, so that (once
  // per version) runs on a thread of its own, never on a gRPC or loop thread.
  template <typename Call>  // InvokeReactor or InvokeOnceReactor
  void Dispatch(Call* call) {
    EventLoop* loop = loops_[next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
    const v1::NodeInvokeHead& head = call->head();
    auto current = d_.scheduler->Current(head.function());
    if (current != nullptr && current->version == head.version()) {
      // Admitted here, so that the initial metadata leaves while the loop wakes up.
      if (call->Admit()) {
        loop->Post([call, loop, this] { call->Invoke(loop, d_.scheduler); });
      }
      return;
    }
    std::thread([this, call, loop] {
      Status ready = EnsureVersion(call->head().function(), call->head().version());
      loop->Post([call, loop, this, ready] { call->Run(loop, d_.scheduler, ready); });
    }).detach();
  }

  const std::string& node_id() const { return d_.node_id; }

  // The gate between a call and the scheduler (docs/design/0025-fault-tests.md, "A drain loses
  // nothing"). A call is admitted just before the scheduler takes it and leaves when it is
  // answered; after CloseGate, a call not yet admitted is refused UNAVAILABLE before any
  // metadata, so its gateway sends it to another node (it never reached the scheduler: no
  // ledger row).
  bool EnterGate() { return gate_.Enter(); }
  void LeaveGate() { gate_.Leave(); }
  // Refuses new calls, then waits until every admitted call has been answered (or `deadline`):
  // only then may the scheduler stop, so no call it took ends `shutting_down`.
  void CloseGate(std::chrono::system_clock::time_point deadline) { gate_.Close(deadline); }

  grpc::Status Prepare(grpc::ServerContext* ctx, const v1::NodePrepareRequest* req,
                       v1::NodePrepareReply* reply) override {
    if (!HasBearer(*ctx, d_.secret)) {
      return Unauthenticated();
    }
    std::chrono::nanoseconds took{0};
    Status s = PrepareVersion(req->version(), req->library(), &took);
    reply->set_code(static_cast<int32_t>(s.code()));
    reply->set_message(s.message());
    reply->set_took_ns(Ns(took));
    reply->set_node(d_.node_id);
    return grpc::Status::OK;
  }

  grpc::Status DropPrepared(grpc::ServerContext* ctx, const v1::NodeFunctionName* req,
                            v1::NodeEmpty*) override {
    if (!HasBearer(*ctx, d_.secret)) {
      return Unauthenticated();
    }
    {
      std::lock_guard lock(prepared_mu_);
      prepared_.erase(req->name());
    }
    d_.scheduler->DropPrepared(req->name());
    return grpc::Status::OK;
  }

  grpc::Status Remove(grpc::ServerContext* ctx, const v1::NodeFunctionName* req,
                      v1::NodeEmpty*) override {
    if (!HasBearer(*ctx, d_.secret)) {
      return Unauthenticated();
    }
    {
      std::lock_guard lock(prepared_mu_);
      prepared_.erase(req->name());
    }
    d_.scheduler->RemoveFunction(req->name());
    return grpc::Status::OK;
  }

  grpc::Status Prewarm(grpc::ServerContext* ctx, const v1::NodePrewarmRequest* req,
                       v1::NodePrewarmReply* reply) override {
    if (!HasBearer(*ctx, d_.secret)) {
      return Unauthenticated();
    }
    Status s = EnsureVersion(req->function(), req->version());
    if (s.ok() && req->count() > 0) {  // 0: only load the version (adopting a prepared zygote)
      Result<uint32_t> started = d_.scheduler->Prewarm(req->function(), req->count());
      s = started.status();
      reply->set_started(started.ok() ? *started : 0);
    }
    reply->set_code(static_cast<int32_t>(s.code()));
    reply->set_message(s.message());
    reply->set_idle(d_.scheduler->Stats(req->function()).idle);
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext* ctx, const v1::NodeFunctionName* req,
                     v1::NodeStatsReply* reply) override {
    if (!HasBearer(*ctx, d_.secret)) {
      return Unauthenticated();
    }
    reply->set_node(d_.node_id);
    auto add = [reply](const std::string& name, const scheduler::FunctionStats& st) {
      v1::NodeFunctionStats* f = reply->add_functions();
      f->set_function(name);
      f->set_idle(st.idle);
      f->set_busy(st.busy);
      f->set_waiting(st.waiting);
      f->set_invocations(st.invocations);
      f->set_cold_starts(st.cold_starts);
      f->set_zygotes(st.zygote_pid != 0 ? 1 : 0);
      f->set_parked(st.parked_pid != 0 ? 1 : 0);
    };
    if (!req->name().empty()) {
      add(req->name(), d_.scheduler->Stats(req->name()));
    } else {
      for (const auto& [name, st] : d_.scheduler->AllStats()) {
        add(name, st);
      }
    }
    return grpc::Status::OK;
  }

 private:
  // The spec of a stored version, its library fetched and verified into the local cache; from
  // `library` when the gateway sent it (refused unless it hashes to the version's digest).
  Result<scheduler::FunctionSpec> SpecOf(const store::Version& v, std::string_view library = {}) {
    FAAS_ASSIGN_OR_RETURN(std::string path,
                          library.empty() ? d_.registry->FetchArtifact(v.artifact_sha256)
                                          : d_.registry->CacheArtifact(v.artifact_sha256, library));
    return scheduler::FunctionSpec{v.function, v.version, std::move(path), v.config, v.uid};
  }

  // Makes `version` of `name` the scheduler's current one, reading it from the registry when
  // the node runs another (a deploy or rollback through a gateway, or a node that started
  // before the deploy). The gateway decides which version runs.
  Status EnsureVersion(const std::string& name, uint32_t version) {
    auto current = d_.scheduler->Current(name);
    if (current != nullptr && current->version == version) {
      return OkStatus();
    }
    std::lock_guard lock(load_mu_);  // one load at a time; the second caller finds it done
    current = d_.scheduler->Current(name);
    if (current != nullptr && current->version == version) {
      return OkStatus();
    }
    FAAS_ASSIGN_OR_RETURN(store::Version v, d_.registry->GetVersion(name, version));
    // The version a Prepare just started a zygote of (a deploy's push): that zygote loaded the
    // bytes Prepare verified, and SetFunction adopts it, so the file is not hashed again here.
    std::string verified_path;
    {
      std::lock_guard plock(prepared_mu_);
      if (auto it = prepared_.find(name); it != prepared_.end()) {
        if (it->second.sha256 == v.artifact_sha256) {
          verified_path = it->second.path;
        }
        prepared_.erase(it);
      }
    }
    scheduler::FunctionSpec spec;
    if (!verified_path.empty()) {
      spec = {v.function, v.version, std::move(verified_path), v.config, v.uid};
    } else {
      FAAS_ASSIGN_OR_RETURN(spec, SpecOf(v));
    }
    static auto log = log::Get("node");
    FAAS_LOG(log, info, "node.version_loaded", {"fn", name}, {"version", version},
             {"sha256", v.artifact_sha256});
    d_.scheduler->SetFunction(std::move(spec));
    return OkStatus();
  }

  Status PrepareVersion(const v1::NodeVersionRef& ref, std::string_view library,
                        std::chrono::nanoseconds* took) {
    FAAS_ASSIGN_OR_RETURN(store::FunctionConfig cfg, store::ConfigFromJson(ref.config_json()));
    if (cfg.network == "outbound") {
      FAAS_RETURN_IF_ERROR(d_.scheduler->OutboundNetworkAvailable());
    }
    store::Version v;
    v.function = ref.function();
    v.version = ref.version();
    v.artifact_sha256 = ref.artifact_sha256();
    v.config = std::move(cfg);
    v.uid = ref.uid();
    {
      std::lock_guard plock(prepared_mu_);
      prepared_.erase(v.function);
    }
    const auto started = Clock::now();
    FAAS_ASSIGN_OR_RETURN(scheduler::FunctionSpec spec, SpecOf(v, library));
    const std::string path = spec.library_path;
    const auto cached = Clock::now();
    FAAS_RETURN_IF_ERROR(d_.scheduler->Prepare(spec, took));
    // Where a deploy's time goes on a node: the library into its cache (received or fetched,
    // hashed, written, read back), then the zygote's start.
    static auto log = log::Get("node");
    FAAS_LOG(log, info, "node.prepared", {"fn", v.function}, {"version", v.version},
             {"bytes_sent", library.size()}, {"cache_ms", ToMillis(cached - started)},
             {"zygote_ms", ToMillis(Clock::now() - cached)});
    std::lock_guard plock(prepared_mu_);
    prepared_[v.function] = {v.artifact_sha256, path};
    return OkStatus();
  }

  // What the last successful Prepare of each function verified (EnsureVersion's shortcut).
  struct Verified {
    std::string sha256;
    std::string path;
  };

  NodeServiceDeps d_;
  std::vector<EventLoop*> loops_;
  std::atomic<std::size_t> next_loop_{0};
  std::mutex load_mu_;
  std::mutex prepared_mu_;
  std::map<std::string, Verified> prepared_;  // guarded by prepared_mu_; by function
  CountGate gate_;                            // admitted calls, until answered (EnterGate)
  grpc::ServerCompletionQueue* queue_ = nullptr;
  CountGate calls_;  // call objects, from the ask to their deletion
};

template <typename Call, typename Rpc>
NodeCall<Call, Rpc>::NodeCall(NodeServiceImpl* service) : service_(service) {
  service_->CallCreated();
}

template <typename Call, typename Rpc>
NodeCall<Call, Rpc>::~NodeCall() {
  service_->CallDeleted();
}

void InvokeReactor::OnArrived() {
  service_->AwaitStream();
  if (!service_->Authorized(*context())) {
    Finish(Unauthenticated());  // refused before anything is read
    return;
  }
  StartRead(&in_);
}

void InvokeReactor::OnReadDone(bool ok) {
  if (!ok) {  // the gateway has sent everything (or went away)
    if (!have_head_ || request_.body.size() != head_.body_bytes()) {
      Finish({grpc::StatusCode::CANCELLED, "the gateway went away before sending the body"});
      return;
    }
    service_->Dispatch(this);
    return;
  }
  if (!have_head_) {
    if (!in_.has_head()) {
      Finish({grpc::StatusCode::INVALID_ARGUMENT, "the first frame must be the head"});
      return;
    }
    head_ = std::move(*in_.mutable_head());
    have_head_ = true;
    if (head_.body_bytes() > kMaxNodeBodyBytes) {
      Finish({grpc::StatusCode::RESOURCE_EXHAUSTED, "body larger than a node takes"});
      return;
    }
    request_ = FromProto(head_);
    request_.body.reserve(head_.body_bytes());
  } else if (!in_.has_chunk() || in_.chunk().size() > kNodeChunkBytes ||
             request_.body.size() + in_.chunk().size() > head_.body_bytes()) {
    Finish({grpc::StatusCode::INVALID_ARGUMENT, "body chunks do not match the head"});
    return;
  } else {
    request_.body += in_.chunk();
  }
  StartRead(&in_);
}

// Both reactors, once the whole request is in and its version is ready (or could not be made
// ready): through the drain gate to the scheduler, then Call::Answer.
template <typename Call, typename Rpc>
void NodeCall<Call, Rpc>::Run(EventLoop* loop, scheduler::Scheduler* sched, const Status& ready) {
  Call* call = static_cast<Call*>(this);
  if (!ready.ok()) {
    scheduler::InvokeResult r;
    r.outcome = ready.code() == StatusCode::kNotFound ? Outcome::kNotFound : Outcome::kInternal;
    r.error_message = ready.message();
    call->Answer(std::move(r));
    return;
  }
  if (Admit()) {
    Invoke(loop, sched);
  }
}

template <typename Call, typename Rpc>
bool NodeCall<Call, Rpc>::Admit() {
  Call* call = static_cast<Call*>(this);
  if (!service_->EnterGate()) {
    // Draining: not delivered (no initial metadata), so the gateway tries the next node.
    call->Finish({grpc::StatusCode::UNAVAILABLE,
                  "node \"" + service_->node_id() + "\" is draining and takes no new calls"});
    return false;
  }
  // From here the call counts as delivered: the gateway will not run it elsewhere.
  call->StartSendInitialMetadata();
  return true;
}

template <typename Call, typename Rpc>
void NodeCall<Call, Rpc>::Invoke(EventLoop* loop, scheduler::Scheduler* sched) {
  Call* call = static_cast<Call*>(this);
  sched->InvokeAsync(head_.function(), std::move(request_), loop,
                     [call, service = service_](scheduler::InvokeResult r) {
                       service->LeaveGate();
                       call->Answer(std::move(r));
                     });
}

void InvokeOnceReactor::OnArrived() {
  service_->AwaitSmall();
  if (!service_->Authorized(*context())) {
    Finish(Unauthenticated());
    return;
  }
  v1::NodeInvokeSmall* in = request();
  if (in->body().size() != in->head().body_bytes() || in->body().size() > kNodeChunkBytes) {
    Finish({grpc::StatusCode::INVALID_ARGUMENT, "the body does not match the head"});
    return;
  }
  head_ = std::move(*in->mutable_head());
  request_ = FromProto(head_);
  request_.body = std::move(*in->mutable_body());
  service_->Dispatch(this);
}

void InvokeOnceReactor::Answer(scheduler::InvokeResult r) {
  v1::NodeInvokeSmallReply* out = reply();
  ToProto(r, out->mutable_head());
  out->mutable_head()->set_node(service_->node_id());
  out->mutable_head()->set_body_bytes(r.body.size());
  *out->mutable_body() = std::move(r.body);
  Finish(grpc::Status::OK);
}

void InvokeReactor::Answer(scheduler::InvokeResult r) {
  ToProto(r, out_.mutable_head());
  out_.mutable_head()->set_node(service_->node_id());
  out_.mutable_head()->set_body_bytes(r.body.size());
  body_ = std::move(r.body);
  StartWrite(&out_);
}

void InvokeReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish({grpc::StatusCode::CANCELLED, "the gateway went away"});
    return;
  }
  if (sent_ >= body_.size()) {
    Finish(grpc::Status::OK);
    return;
  }
  const std::size_t n = std::min(kNodeChunkBytes, body_.size() - sent_);
  out_.Clear();
  out_.set_chunk(body_.data() + sent_, n);
  sent_ += n;
  StartWrite(&out_);
}

}  // namespace

void ToProto(const scheduler::InvokeRequest& r, v1::NodeInvokeHead* head) {
  head->set_invocation_id(r.invocation_id);
  head->set_method(r.method);
  head->set_path(r.path);
  head->set_query(r.query);
  for (const auto& [k, v] : r.headers) {
    v1::NodeHeader* h = head->add_headers();
    h->set_name(k);
    h->set_value(v);
    if (k == "traceparent") {
      head->set_traceparent(v);
    }
  }
  head->set_tenant(r.tenant);
  head->set_trigger(r.trigger);
  head->set_queue(r.queue);
  head->set_message_id(r.message_id);
  head->set_attempt(r.attempt);
  head->set_fresh(r.fresh);
  head->set_body_bytes(r.body.size());
}

scheduler::InvokeRequest FromProto(const v1::NodeInvokeHead& head) {
  scheduler::InvokeRequest r;
  r.invocation_id = head.invocation_id();
  r.method = head.method();
  r.path = head.path();
  r.query = head.query();
  r.headers.reserve(static_cast<std::size_t>(head.headers_size()));
  for (const v1::NodeHeader& h : head.headers()) {
    r.headers.emplace_back(h.name(), h.value());
  }
  r.tenant = head.tenant();
  r.trigger = head.trigger().empty() ? "http" : head.trigger();
  r.queue = head.queue();
  r.message_id = head.message_id();
  r.attempt = std::max<uint32_t>(1, head.attempt());
  r.fresh = head.fresh();
  return r;
}

void ToProto(const scheduler::InvokeResult& r, v1::NodeReplyHead* head) {
  head->set_outcome(OutcomeToProto(r.outcome));
  head->set_error_message(r.error_message);
  head->set_status(r.status);
  for (const auto& [k, v] : r.headers) {
    v1::NodeHeader* h = head->add_headers();
    h->set_name(k);
    h->set_value(v);
  }
  head->set_handler_return(r.handler_return);
  head->set_cold_start(r.cold_start);
  head->set_forked(r.forked);
  head->set_version(r.version);
  head->set_queue_ns(Ns(r.timings.queue));
  head->set_spawn_ns(Ns(r.timings.spawn));
  head->set_load_ns(Ns(r.timings.load));
  head->set_init_ns(Ns(r.timings.init));
  head->set_cold_ns(Ns(r.timings.cold));
  head->set_exec_ns(Ns(r.timings.exec));
  head->set_cpu_ns(Ns(r.cpu));
  head->set_peak_memory_bytes(r.peak_memory_bytes);
  head->set_logs(r.logs);
}

scheduler::InvokeResult FromProto(const v1::NodeReplyHead& head) {
  scheduler::InvokeResult r;
  r.outcome = OutcomeFromProto(head.outcome());
  r.error_message = head.error_message();
  r.status = head.status();
  r.headers.reserve(static_cast<std::size_t>(head.headers_size()));
  for (const v1::NodeHeader& h : head.headers()) {
    r.headers.emplace_back(h.name(), h.value());
  }
  r.handler_return = head.handler_return();
  r.cold_start = head.cold_start();
  r.forked = head.forked();
  r.version = head.version();
  r.timings.queue = std::chrono::nanoseconds(head.queue_ns());
  r.timings.spawn = std::chrono::nanoseconds(head.spawn_ns());
  r.timings.load = std::chrono::nanoseconds(head.load_ns());
  r.timings.init = std::chrono::nanoseconds(head.init_ns());
  r.timings.cold = std::chrono::nanoseconds(head.cold_ns());
  r.timings.exec = std::chrono::nanoseconds(head.exec_ns());
  r.cpu = std::chrono::nanoseconds(head.cpu_ns());
  r.peak_memory_bytes = head.peak_memory_bytes();
  r.logs = head.logs();
  r.node = head.node();
  return r;
}

struct NodeServer::Impl {
  // Declared first: the loops outlive the service and server that post to them.
  std::vector<std::unique_ptr<EventLoop>> loops;
  std::vector<std::thread> loop_threads;
  std::unique_ptr<NodeServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  // The one thread that reads and writes every Invoke and InvokeSmall (grpc_cq.h).
  std::unique_ptr<cq::Runner<grpc::ServerCompletionQueue>> runner;
  int port = 0;

  ~Impl() {
    for (auto& loop : loops) {
      loop->Stop();
    }
    for (std::thread& t : loop_threads) {
      t.join();
    }
  }
};

NodeServer::NodeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NodeServer::~NodeServer() {
  Shutdown(std::chrono::system_clock::now());
}

Result<std::unique_ptr<NodeServer>> NodeServer::Start(const std::string& address,
                                                      NodeServiceDeps deps) {
  FAAS_CHECK(deps.scheduler != nullptr && deps.registry != nullptr);
  auto impl = std::make_unique<Impl>();
  std::vector<EventLoop*> loops;
  for (uint32_t i = 0; i < std::max<uint32_t>(1, deps.loops); ++i) {
    FAAS_ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
    loops.push_back(loop.get());
    impl->loop_threads.emplace_back([l = loop.get()] { l->Run(); });
    impl->loops.push_back(std::move(loop));
  }
  std::shared_ptr<grpc::ServerCredentials> creds = NodeServerCredentials(deps.tls.get());
  impl->service = std::make_unique<NodeServiceImpl>(std::move(deps), std::move(loops));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, &impl->port);
  builder.RegisterService(impl->service.get());
  // A Prepare may carry a library (kMaxPrepareLibraryBytes); an Invoke frame is a head or a
  // 64 KiB chunk (checked in OnReadDone).
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxPrepareLibraryBytes + kNodeMessageSlack));
  impl->runner =
      std::make_unique<cq::Runner<grpc::ServerCompletionQueue>>(builder.AddCompletionQueue());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return UnavailableError("cannot listen on " + address + " (address in use or invalid)");
  }
  impl->service->Listen(impl->runner->queue());
  return std::unique_ptr<NodeServer>(new NodeServer(std::move(impl)));
}

int NodeServer::port() const {
  return impl_->port;
}

void NodeServer::StopTakingCalls(std::chrono::system_clock::time_point deadline) {
  impl_->service->CloseGate(deadline);
}

void NodeServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (impl_->server) {
    impl_->server->Shutdown(deadline);
    impl_->server->Wait();
    // Calls the scheduler still runs answer into the queue (cancelled after `deadline`).
    impl_->service->WaitForNoCalls();
    impl_->runner->Stop();
    impl_->server.reset();
  }
}

}  // namespace faas::daemon
