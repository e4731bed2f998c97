// The gRPC side of faasctl: one RunCommand overload per command, each returning an Outcome that
// MapOutcome turns into the exit status. Every unary call goes through Session::Call (deadline,
// token, failure → Outcome); most commands are a request, CallAndPrint and two renderers.
// The only file in cli/ that includes gRPC headers.
#include "faas/cli/run.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "faas/base/status.h"
#include "faas/base/unique_fd.h"
#include "faas/cli/command.h"
#include "faas/cli/exit_code.h"
#include "faas/cli/render.h"
#include "faas/v1/control.grpc.pb.h"

#include "bench_report.h"

#ifndef FAAS_CLI_VERSION
#define FAAS_CLI_VERSION "0.0.0"
#endif

namespace faas::cli {
namespace {

#define FAAS_SAME_CODE_(ours, theirs) \
  static_assert(static_cast<int>(RpcCode::ours) == static_cast<int>(grpc::StatusCode::theirs))
FAAS_SAME_CODE_(kOk, OK);
FAAS_SAME_CODE_(kCancelled, CANCELLED);
FAAS_SAME_CODE_(kUnknown, UNKNOWN);
FAAS_SAME_CODE_(kInvalidArgument, INVALID_ARGUMENT);
FAAS_SAME_CODE_(kDeadlineExceeded, DEADLINE_EXCEEDED);
FAAS_SAME_CODE_(kNotFound, NOT_FOUND);
FAAS_SAME_CODE_(kAlreadyExists, ALREADY_EXISTS);
FAAS_SAME_CODE_(kPermissionDenied, PERMISSION_DENIED);
FAAS_SAME_CODE_(kResourceExhausted, RESOURCE_EXHAUSTED);
FAAS_SAME_CODE_(kFailedPrecondition, FAILED_PRECONDITION);
FAAS_SAME_CODE_(kAborted, ABORTED);
FAAS_SAME_CODE_(kOutOfRange, OUT_OF_RANGE);
FAAS_SAME_CODE_(kUnimplemented, UNIMPLEMENTED);
FAAS_SAME_CODE_(kInternal, INTERNAL);
FAAS_SAME_CODE_(kUnavailable, UNAVAILABLE);
FAAS_SAME_CODE_(kDataLoss, DATA_LOSS);
FAAS_SAME_CODE_(kUnauthenticated, UNAUTHENTICATED);
#undef FAAS_SAME_CODE_

// 256 KiB: well under gRPC's 4 MiB default message limit, big enough to keep the stream busy.
constexpr std::size_t kDeployChunkBytes = 256 << 10;
// 64 MiB: replies carry invocation bodies and logs, which can pass gRPC's 4 MiB default.
constexpr int kMaxReplyBytes = 64 << 20;

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Reads up to `n` bytes, fewer only at end of file.
Result<std::size_t> ReadUpTo(int fd, char* buf, std::size_t n, const std::string& path) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) {
        continue;
      }
      return ErrnoError(err, "read", path);
    }
    if (r == 0) {
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  return got;
}

using Stub = faas::v1::Control::Stub;

// A unary control-API method, e.g. &Stub::DescribeFunction.
template <typename Req, typename Reply>
using UnaryRpc = grpc::Status (Stub::*)(grpc::ClientContext*, const Req&, Reply*);

// One connection to faasd and the per-call settings (deadline, token).
class Session {
 public:
  explicit Session(const GlobalOptions& global) : global_(global) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxReplyBytes);
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!global.tls_ca_pem.empty()) {
      grpc::SslCredentialsOptions tls;
      tls.pem_root_certs = global.tls_ca_pem;
      creds = grpc::SslCredentials(tls);
    }
    channel_ = grpc::CreateCustomChannel(global.server, creds, args);
    stub_ = faas::v1::Control::NewStub(channel_);
  }

  Stub& GetStub() { return *stub_; }
  bool Json() const { return global_.output == OutputFormat::kJson; }

  // Sets the deadline (--rpc-timeout) and the token (--token) on a call.
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + global_.rpc_timeout);
    if (!global_.token.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + global_.token);
    }
  }

  // A failed call as an Outcome: its code and message, faasd's "faas-code" trailer, and whether
  // faasd was reached (MapOutcome tells "refused" from "unreachable" by it).
  Outcome Failed(const grpc::Status& status, const grpc::ClientContext& ctx) {
    RpcError e;
    e.code = static_cast<RpcCode>(static_cast<int>(status.error_code()));
    e.message = status.error_message();
    const auto& trailers = ctx.GetServerTrailingMetadata();
    if (auto it = trailers.find("faas-code"); it != trailers.end()) {
      e.faas_code.assign(it->second.data(), it->second.size());
    }
    e.connected = channel_->GetState(false) == GRPC_CHANNEL_READY;
    return Outcome::RpcFailed(std::move(e));
  }

  // Every unary call goes through here: Ok with `reply` filled in, or the failure.
  template <typename Req, typename Reply>
  Outcome Call(UnaryRpc<Req, Reply> rpc, const std::type_identity_t<Req>& req, Reply& reply) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status = ((*stub_).*rpc)(&ctx, req, &reply);
    return status.ok() ? Outcome::Ok() : Failed(status, ctx);
  }

 private:
  GlobalOptions global_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

bool IsOk(const Outcome& outcome) {
  return outcome.kind == Outcome::Kind::kOk;
}

// A reply as JSON (-o json) or as text for people.
template <typename Reply, typename ToJson, typename ToText>
void Print(const Session& s, Io& io, const Reply& reply, ToJson to_json, ToText to_text) {
  io.out << (s.Json() ? DumpJson(to_json(reply)) : to_text(reply));
}

// Most commands: one call, then its reply printed.
template <typename Req, typename Reply, typename ToJson, typename ToText>
Outcome CallAndPrint(Session& s, Io& io, UnaryRpc<Req, Reply> rpc,
                     const std::type_identity_t<Req>& req, ToJson to_json, ToText to_text) {
  Reply reply;
  Outcome outcome = s.Call(rpc, req, reply);
  if (IsOk(outcome)) {
    Print(s, io, reply, to_json, to_text);
  }
  return outcome;
}

// A delete by name: {"deleted": NAME}, or "deleted <what>NAME" (what: "" or "trigger ").
template <typename Req>
Outcome CallDelete(Session& s, Io& io, UnaryRpc<Req, faas::v1::DeleteReply> rpc, const Req& req,
                   std::string_view what, const std::string& name) {
  return CallAndPrint(
      s, io, rpc, req,
      [&](const faas::v1::DeleteReply&) {
        return nlohmann::json{{"deleted", name}};
      },
      [&](const faas::v1::DeleteReply&) { return "deleted " + std::string(what) + name + "\n"; });
}

faas::v1::NameRequest NameOf(const std::string& name) {
  faas::v1::NameRequest req;
  req.set_name(name);
  return req;
}

faas::v1::TriggerName TriggerNameOf(const std::string& name) {
  faas::v1::TriggerName req;
  req.set_name(name);
  return req;
}

faas::v1::KeyId KeyIdOf(const std::string& id) {
  faas::v1::KeyId req;
  req.set_id(id);
  return req;
}

Outcome RunCommand(Session& s, const DeployCommand& cmd, Io& io) {
  Result<faas::v1::FunctionConfig> config = ToProtoConfig(cmd.options);
  if (!config.ok()) {
    return Outcome::Usage(config.status().message());
  }
  int raw_fd = ::open(cmd.library_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_fd < 0) {
    return Outcome::Usage(ErrnoError(errno, "open", cmd.library_path).message());
  }
  UniqueFd fd(raw_fd);

  // Chunk 1 carries name and config; it is read before the call so a bad path (a directory,
  // say) fails before anything is sent.
  faas::v1::DeployChunk chunk;
  chunk.set_name(cmd.name);
  *chunk.mutable_config() = std::move(config).value();
  std::string* data = chunk.mutable_data();
  data->resize(kDeployChunkBytes);
  Result<std::size_t> n = ReadUpTo(fd.Get(), data->data(), data->size(), cmd.library_path);
  if (!n.ok()) {
    return Outcome::Usage(n.status().message());
  }
  data->resize(*n);
  bool more = *n == kDeployChunkBytes;

  // The one streaming call: not through Session::Call, but with the same Prepare and Failed.
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  faas::v1::DeployReply reply;
  std::unique_ptr<grpc::ClientWriter<faas::v1::DeployChunk>> writer =
      s.GetStub().Deploy(&ctx, &reply);
  // A failed Write means the stream is over (the server answered early, or the connection
  // broke); Finish() then tells why.
  bool open = writer->Write(chunk);
  while (open && more) {
    chunk.Clear();
    data = chunk.mutable_data();
    data->resize(kDeployChunkBytes);
    n = ReadUpTo(fd.Get(), data->data(), data->size(), cmd.library_path);
    if (!n.ok()) {
      ctx.TryCancel();
      writer->Finish();  // cancelled by us: the read error is what matters
      return Outcome::Usage(n.status().message());
    }
    data->resize(*n);
    more = *n == kDeployChunkBytes;
    if (*n > 0) {
      open = writer->Write(chunk);
    }
  }
  if (open) {
    writer->WritesDone();
  }
  grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return s.Failed(status, ctx);
  }
  Print(s, io, reply, DeployReplyToJson, RenderDeploy);
  return Outcome::Ok();
}

Outcome RunCommand(Session& s, const ListCommand&, Io& io) {
  return CallAndPrint(s, io, &Stub::ListFunctions, faas::v1::ListFunctionsRequest(),
                      ListFunctionsReplyToJson, RenderFunctionTable);
}

Outcome RunCommand(Session& s, const DescribeCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::DescribeFunction, NameOf(cmd.name), FunctionInfoToJson,
                      RenderDescribe);
}

Outcome RunCommand(Session& s, const DeleteCommand& cmd, Io& io) {
  return CallDelete(s, io, &Stub::DeleteFunction, NameOf(cmd.name), "", cmd.name);
}

Outcome RunCommand(Session& s, const VersionsCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::ListVersions, NameOf(cmd.name), ListVersionsReplyToJson,
                      RenderVersionsTable);
}

Outcome RunCommand(Session& s, const RollbackCommand& cmd, Io& io) {
  faas::v1::RollbackRequest req;
  req.set_name(cmd.name);
  req.set_version(cmd.version);
  return CallAndPrint(
      s, io, &Stub::Rollback, req, VersionInfoToJson, [&](const faas::v1::VersionInfo& reply) {
        return cmd.name + " latest is now version " + std::to_string(reply.version()) + "\n";
      });
}

Outcome RunCommand(Session& s, const InvokeCommand& cmd, Io& io) {
  Result<std::string> body = ReadData(cmd.data, io.in);
  if (!body.ok()) {
    return Outcome::Usage(body.status().message());
  }
  faas::v1::InvokeReply reply;
  Outcome outcome = s.Call(&Stub::Invoke, ToInvokeRequest(cmd, std::move(body).value()), reply);
  if (!IsOk(outcome)) {
    return outcome;
  }
  if (cmd.async && reply.status() < 400) {
    // Queued: the reply carries only the id (GET /invocations/{id} has the result).
    io.out << (s.Json() ? DumpJson(nlohmann::json{{"invocation_id", reply.invocation_id()}})
                        : reply.invocation_id() + "\n");
    return Outcome::Ok();
  }
  if (s.Json()) {
    io.out << DumpJson(InvokeReplyToJson(reply));
  } else {
    // Raw bytes, no newline added: `faasctl invoke f > out.png` must be exact.
    io.out.write(reply.body().data(), static_cast<std::streamsize>(reply.body().size()));
    io.out.flush();
    if (cmd.verbose) {
      io.err << RenderInvokeDetails(reply);
    }
  }
  if (reply.status() >= 400) {
    if (!reply.error_code().empty()) {
      return Outcome::Refused(reply.error_code() + ": " + reply.error_message());
    }
    return Outcome::Refused("HTTP " + std::to_string(reply.status()));
  }
  return Outcome::Ok();
}

Outcome RunCommand(Session& s, const BillCommand& cmd, Io& io) {
  return CallAndPrint(
      s, io, &Stub::Bill, ToBillRequest(cmd), BillReplyToJson,
      [&](const faas::v1::BillReply& reply) { return RenderBillTable(reply, cmd.by); });
}

Outcome RunCommand(Session& s, const InvocationsCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::ListInvocations, ToListInvocationsRequest(cmd),
                      ListInvocationsReplyToJson, RenderInvocationsTable);
}

Outcome RunCommand(Session& s, const LogsCommand& cmd, Io& io) {
  uint64_t after = 0;
  nlohmann::json all = nlohmann::json::array();
  for (bool first = true;; first = false) {
    faas::v1::LogsRequest req;
    req.set_function(cmd.name);
    req.set_invocation_id(cmd.invocation);
    req.set_last(first ? cmd.last : 1000);
    req.set_after_seq(after);
    faas::v1::LogsReply reply;
    if (Outcome outcome = s.Call(&Stub::GetLogs, req, reply); !IsOk(outcome)) {
      return outcome;
    }
    for (const auto& e : reply.entries()) {
      after = std::max<uint64_t>(after, e.seq());
      if (s.Json()) {
        all.push_back({{"invocation_id", e.invocation_id()},
                       {"start", FormatUnixMillis(e.start_unix_ms())},
                       {"text", e.text()}});
      } else {
        io.out << "=== " << e.invocation_id() << " " << FormatUnixMillis(e.start_unix_ms())
               << " ===\n"
               << e.text();
        if (!e.text().empty() && e.text().back() != '\n') {
          io.out << "\n";
        }
      }
    }
    io.out.flush();
    if (!cmd.follow) {
      break;
    }
    // --follow polls; output is captured per invocation, so new entries appear as whole blocks.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (s.Json()) {
    io.out << DumpJson(nlohmann::json{{"logs", std::move(all)}});
  }
  return Outcome::Ok();
}

Outcome RunCommand(Session& s, const PrewarmCommand& cmd, Io& io) {
  return CallAndPrint(
      s, io, &Stub::Prewarm, ToPrewarmRequest(cmd), PrewarmReplyToJson,
      [&](const faas::v1::PrewarmReply& reply) { return RenderPrewarm(cmd.name, reply); });
}

Outcome RunCommand(Session& s, const RouteAddCommand& cmd, Io& io) {
  return CallAndPrint(
      s, io, &Stub::AddRoute, ToAddRouteRequest(cmd), RouteToJson,
      [](const faas::v1::Route& reply) { return "added route " + DescribeRoute(reply) + "\n"; });
}

Outcome RunCommand(Session& s, const RouteListCommand&, Io& io) {
  return CallAndPrint(s, io, &Stub::ListRoutes, faas::v1::ListRoutesRequest(),
                      ListRoutesReplyToJson, RenderRoutesTable);
}

Outcome RunCommand(Session& s, const RouteDeleteCommand& cmd, Io& io) {
  return CallAndPrint(
      s, io, &Stub::DeleteRoute, ToRouteKey(cmd),
      [&](const faas::v1::DeleteReply&) {
        return nlohmann::json{
            {"deleted", {{"method", cmd.method}, {"path", cmd.path}, {"host", cmd.host}}}};
      },
      [&](const faas::v1::DeleteReply&) {
        return "deleted route " + cmd.method + " " + cmd.path +
               (cmd.host.empty() ? "" : " (host " + cmd.host + ")") + "\n";
      });
}

Outcome RunCommand(Session& s, const KeyCreateCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::CreateKey, ToCreateKeyRequest(cmd), CreateKeyReplyToJson,
                      RenderKeyCreated);
}

Outcome RunCommand(Session& s, const KeyListCommand&, Io& io) {
  return CallAndPrint(s, io, &Stub::ListKeys, faas::v1::ListKeysRequest(), ListKeysReplyToJson,
                      RenderKeysTable);
}

Outcome RunCommand(Session& s, const KeyRevokeCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::RevokeKey, KeyIdOf(cmd.id), ApiKeyToJson,
                      [&](const faas::v1::ApiKey& reply) {
                        return "revoked key " + cmd.id + " (tenant " + reply.tenant() + ")\n";
                      });
}

Outcome RunCommand(Session& s, const TriggerAddCommand& cmd, Io& io) {
  return CallAndPrint(s, io, &Stub::AddTrigger, ToAddTriggerRequest(cmd), TriggerStatusToJson,
                      RenderTriggerAdded);
}

Outcome RunCommand(Session& s, const TriggerListCommand&, Io& io) {
  return CallAndPrint(s, io, &Stub::ListTriggers, faas::v1::ListTriggersRequest(),
                      ListTriggersReplyToJson, RenderTriggersTable);
}

// pause and resume: the same call shape, a different RPC.
Outcome RunTriggerState(Session& s, const std::string& name, std::string_view verb,
                        UnaryRpc<faas::v1::TriggerName, faas::v1::TriggerStatus> rpc, Io& io) {
  return CallAndPrint(
      s, io, rpc, TriggerNameOf(name), TriggerStatusToJson,
      [verb](const faas::v1::TriggerStatus& reply) { return RenderTriggerState(verb, reply); });
}

Outcome RunCommand(Session& s, const TriggerPauseCommand& cmd, Io& io) {
  return RunTriggerState(s, cmd.name, "paused", &Stub::PauseTrigger, io);
}

Outcome RunCommand(Session& s, const TriggerResumeCommand& cmd, Io& io) {
  return RunTriggerState(s, cmd.name, "resumed", &Stub::ResumeTrigger, io);
}

Outcome RunCommand(Session& s, const TriggerDeleteCommand& cmd, Io& io) {
  return CallDelete(s, io, &Stub::DeleteTrigger, TriggerNameOf(cmd.name), "trigger ", cmd.name);
}

Outcome RunCommand(Session& s, const QueuePublishCommand& cmd, Io& io) {
  Result<std::string> body = ReadData(cmd.data, io.in, "DATA");
  if (!body.ok()) {
    return Outcome::Usage(body.status().message());
  }
  faas::v1::PublishRequest req;
  req.set_queue(cmd.queue);
  req.set_body(std::move(body).value());
  return CallAndPrint(
      s, io, &Stub::Publish, req,
      [](const faas::v1::PublishReply& reply) {
        return nlohmann::json{{"message_id", reply.message_id()}};
      },
      [](const faas::v1::PublishReply& reply) { return reply.message_id() + "\n"; });
}

Outcome RunCommand(Session& s, const QueueStatsCommand& cmd, Io& io) {
  faas::v1::QueueName req;
  req.set_queue(cmd.queue);
  return CallAndPrint(s, io, &Stub::GetQueueStats, req, QueueStatsToJson, RenderQueueStats);
}

// The reply is the gateway's JSON document; both output modes print it (it is nested).
Outcome RunCommand(Session& s, const AsyncStatusCommand& cmd, Io& io) {
  auto document = [](const faas::v1::AsyncInvocation& reply) {
    return nlohmann::json::parse(reply.json(), nullptr, false);
  };
  return CallAndPrint(
      s, io, &Stub::GetAsyncInvocation, KeyIdOf(cmd.id), document,
      [&](const faas::v1::AsyncInvocation& reply) { return DumpJson(document(reply)); });
}

Outcome RunCommand(Session& s, const QueueDlqCommand& cmd, Io& io) {
  return CallAndPrint(
      s, io, &Stub::ListDead, ToListDeadRequest(cmd),
      [&](const faas::v1::ListDeadReply& reply) { return ListDeadReplyToJson(cmd.dlq, reply); },
      [&](const faas::v1::ListDeadReply& reply) {
        return cmd.replay ? RenderReplayed(cmd.dlq, reply) : RenderDeadTable(reply);
      });
}

Outcome RunCommand(Session& s, const BenchCommand& cmd, Io& io) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  BenchSamples samples;
  std::mutex mu;
  std::optional<Outcome> failure;
  std::atomic<uint32_t> next{0};
  // One invocation, its phases into `samples`; false (and `failure` set) when it failed.
  auto invoke_once = [&] {
    faas::v1::InvokeRequest req;
    req.set_name(cmd.name);
    req.set_method("GET");
    req.set_fresh(cmd.cold && !cmd.after_idle);
    faas::v1::InvokeReply reply;
    auto t0 = Clock::now();
    Outcome outcome = s.Call(&Stub::Invoke, req, reply);
    double e2e = ms(Clock::now() - t0);
    std::lock_guard lock(mu);
    if (!IsOk(outcome)) {
      failure = std::move(outcome);
      return false;
    }
    if (reply.status() >= 400) {
      failure = Outcome::Refused(reply.error_code() + ": " + reply.error_message());
      return false;
    }
    if (cmd.after_idle && !reply.cold_start()) {
      failure = Outcome::Refused("the call after the idle pause found a warm instance: deploy \"" +
                                 cmd.name + "\" with --min-warm 0");
      return false;
    }
    samples.phases["end-to-end"].push_back(e2e);
    double server = 0;
    for (const auto& t : reply.timings()) {
      samples.phases[t.phase()].push_back(t.ms());
      server += (t.phase() == "cold" || t.phase() == "exec" || t.phase() == "queue") ? t.ms() : 0;
    }
    samples.phases["server"].push_back(server);
    return true;
  };
  if (cmd.after_idle) {
    // Rounds, one at a time: scale-to-zero, the pause, the call; then the baseline after the
    // same pause.
    for (uint32_t i = 0; i < cmd.n; ++i) {
      const auto give_up = Clock::now() + std::chrono::minutes(10);
      for (;;) {
        faas::v1::FunctionInfo info;
        if (Outcome o = s.Call(&Stub::DescribeFunction, NameOf(cmd.name), info); !IsOk(o)) {
          return o;
        }
        if (info.latest().config().min_warm() > 0) {
          return Outcome::Refused("\"" + cmd.name + "\" keeps " +
                                  std::to_string(info.latest().config().min_warm()) +
                                  " instances warm (min_warm), so it never scales to zero: "
                                  "deploy it with --min-warm 0");
        }
        if (info.instances_idle() + info.instances_busy() == 0) {
          break;
        }
        if (Clock::now() > give_up) {
          return Outcome::Refused("\"" + cmd.name + "\" still has " +
                                  std::to_string(info.instances_idle() + info.instances_busy()) +
                                  " instances after 10 min: deploy it with a short --idle-ttl "
                                  "and --min-warm 0");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      std::this_thread::sleep_for(*cmd.after_idle);
      if (!invoke_once()) {
        return *failure;
      }
      Result<std::vector<double>> fork = ForkBaseline(*cmd.after_idle, 1);
      if (!fork.ok()) {
        return Outcome::Refused("internal: " + fork.status().message());
      }
      samples.fork_ms.push_back(fork->front());
    }
    io.out << (s.Json() ? DumpJson(BenchToJson(cmd, samples)) : RenderBench(samples));
    return Outcome::Ok();
  }
  // The baseline, in the same run: bare forks of a small separate process.
  Result<std::vector<double>> fork =
      ForkBaseline(std::chrono::milliseconds(0), std::min<uint32_t>(cmd.n, 200));
  if (!fork.ok()) {
    return Outcome::Refused("internal: " + fork.status().message());
  }
  samples.fork_ms = std::move(*fork);
  if (!cmd.cold) {
    // Warm means warm: start one instance per client first, outside the measurement.
    faas::v1::PrewarmRequest req;
    req.set_name(cmd.name);
    req.set_count(cmd.concurrency);
    faas::v1::PrewarmReply reply;
    if (Outcome outcome = s.Call(&Stub::Prewarm, req, reply); !IsOk(outcome)) {
      return outcome;
    }
  }
  auto worker = [&] {
    for (uint32_t i = next++; i < cmd.n && !failure; i = next++) {
      if (!invoke_once()) {
        return;
      }
    }
  };
  std::vector<std::thread> clients;
  for (uint32_t c = 0; c < (cmd.cold ? 1 : cmd.concurrency); ++c) {
    clients.emplace_back(worker);
  }
  for (auto& t : clients) {
    t.join();
  }
  if (failure) {
    return *failure;
  }
  io.out << (s.Json() ? DumpJson(BenchToJson(cmd, samples)) : RenderBench(samples));
  return Outcome::Ok();
}

Outcome RunCommand(Session& s, const NodeListCommand&, Io& io) {
  return CallAndPrint(s, io, &Stub::ListNodes, faas::v1::ListNodesRequest(), ListNodesReplyToJson,
                      RenderNodesTable);
}

Outcome RunCommand(Session& s, const NodeDrainCommand& cmd, Io& io) {
  faas::v1::DrainNodeRequest req;
  req.set_id(cmd.id);
  return CallAndPrint(s, io, &Stub::DrainNode, req, ClusterNodeToJson,
                      [](const faas::v1::ClusterNode& n) {
                        return "draining node " + n.id() + " (epoch " + std::to_string(n.epoch()) +
                               "): gateways stop sending it work; it finishes what it runs\n";
                      });
}

Outcome RunCommand(Session& s, const VersionCommand&, Io& io) {
  // The client line comes first, so it is there even when faasd cannot be reached.
  if (!s.Json()) {
    io.out << "faasctl " << ClientVersion() << "\n" << std::flush;
  }
  faas::v1::VersionReply reply;
  Outcome outcome = s.Call(&Stub::GetVersion, faas::v1::VersionRequest(), reply);
  if (s.Json()) {
    nlohmann::json j{{"client", ClientVersion()}};
    if (IsOk(outcome)) {
      j["server"] = reply.version();
      j["abi"] = reply.abi();
    }
    io.out << DumpJson(j);
  } else if (IsOk(outcome)) {
    io.out << "faasd " << reply.version() << " (function ABI " << reply.abi() << ")\n";
  }
  return outcome;
}

Outcome RunCommand(Session&, const HelpCommand&, Io&) {
  return Outcome::Ok();  // Run() prints the help before it connects
}

int Finish(const Outcome& outcome, const std::string& server, std::ostream& err) {
  ExitReport report = MapOutcome(outcome, server);
  if (!report.error.empty()) {
    err << report.error << "\n" << std::flush;
  }
  return static_cast<int>(report.code);
}

}  // namespace

const char* ClientVersion() {
  return FAAS_CLI_VERSION;
}

int Run(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
        std::ostream& err) {
  Result<Invocation> parsed = Parse(args);
  if (!parsed.ok()) {
    return Finish(Outcome::Usage(parsed.status().message()), {}, err);
  }
  Invocation& inv = *parsed;
  if (const auto* help = std::get_if<HelpCommand>(&inv.command)) {
    out << help->text << std::flush;
    return 0;
  }
  Io io{in, out, err};
  Session session(inv.global);
  Outcome outcome =
      std::visit([&](const auto& cmd) { return RunCommand(session, cmd, io); }, inv.command);
  out.flush();
  return Finish(outcome, inv.global.server, err);
}

int Run(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    args.emplace_back(argv[i]);
  }
  return Run(args, in, out, err);
}

}  // namespace faas::cli
