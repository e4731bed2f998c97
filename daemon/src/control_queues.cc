// The control API's queue triggers, the embedded queue and async invocation results.
#include <string>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/gateway/async_invocations.h"

#include "control_service.h"

namespace faas::daemon {
namespace {

triggers::TriggerSpec FromProto(const v1::Trigger& t) {
  triggers::TriggerSpec s;
  s.name = t.name();
  s.function = t.function();
  s.source = t.source();
  s.stream = t.stream();
  s.group = t.group();
  s.queue = t.queue();
  if (t.batch() != 0) {
    s.batch = t.batch();
  }
  if (t.concurrency() != 0) {
    s.concurrency = t.concurrency();
  }
  if (t.max_attempts() != 0) {
    s.max_attempts = t.max_attempts();
  }
  if (t.backoff_min_ms() != 0) {
    s.backoff_min = std::chrono::milliseconds(t.backoff_min_ms());
  }
  if (t.backoff_max_ms() != 0) {
    s.backoff_max = std::chrono::milliseconds(t.backoff_max_ms());
  }
  s.dlq = t.dlq();
  s.visibility_timeout = std::chrono::milliseconds(t.visibility_timeout_ms());
  s.paused = t.paused();
  return s;
}

void ToProto(const triggers::TriggerStatus& st, v1::TriggerStatus* p) {
  v1::Trigger* t = p->mutable_trigger();
  const triggers::TriggerSpec& s = st.spec;
  t->set_name(s.name);
  t->set_function(s.function);
  t->set_source(s.source);
  t->set_stream(s.stream);
  t->set_group(s.group);
  t->set_queue(s.queue);
  t->set_batch(s.batch);
  t->set_concurrency(s.concurrency);
  t->set_max_attempts(s.max_attempts);
  t->set_backoff_min_ms(static_cast<uint64_t>(s.backoff_min.count()));
  t->set_backoff_max_ms(static_cast<uint64_t>(s.backoff_max.count()));
  t->set_dlq(s.dlq);
  t->set_visibility_timeout_ms(static_cast<uint64_t>(s.visibility_timeout.count()));
  t->set_paused(s.paused);
  p->set_state(st.state);
  p->set_last_error(st.last_error);
  p->set_lag(st.lag);
  p->set_in_flight(st.in_flight);
  p->set_delivered(st.delivered);
  p->set_failed(st.failed);
  p->set_dead_lettered(st.dead_lettered);
}

grpc::Status TriggerFail(grpc::ServerContext* ctx, const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Fail(ctx, "trigger_not_found", s);
    case StatusCode::kAlreadyExists:
      return Fail(ctx, "trigger_exists", s);
    case StatusCode::kInvalidArgument:
      return Fail(ctx, "invalid_trigger", s);
    default:
      return Fail(ctx, "internal", s);
  }
}

}  // namespace

grpc::Status ControlService::TriggerReply(grpc::ServerContext* ctx, const Status& changed,
                                          const std::string& name, v1::TriggerStatus* reply) {
  if (!changed.ok()) {
    return TriggerFail(ctx, changed);
  }
  auto st = deps_.triggers->Get(name);
  if (!st.ok()) {
    return TriggerFail(ctx, st.status());
  }
  ToProto(*st, reply);
  return grpc::Status::OK;
}

grpc::Status ControlService::AddTrigger(grpc::ServerContext* ctx, const v1::AddTriggerRequest* req,
                                        v1::TriggerStatus* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    triggers::TriggerSpec spec = FromProto(req->trigger());
    std::shared_ptr<const scheduler::FunctionSpec> fn = scheduler_->Current(spec.function);
    if (fn == nullptr) {
      return Fail(ctx, "function_not_found",
                  NotFoundError("function \"" + spec.function + "\" does not exist"));
    }
    if (spec.visibility_timeout.count() == 0) {
      // A delivery may run for the function's whole timeout (plus a queue wait) before it is
      // presumed lost.
      spec.visibility_timeout = fn->config.timeout + std::chrono::seconds(30);
    } else if (spec.visibility_timeout <= fn->config.timeout) {
      return Fail(ctx, "invalid_trigger",
                  InvalidArgumentError(
                      "visibility timeout " + FormatDuration(spec.visibility_timeout) +
                      " must exceed the function's timeout " + FormatDuration(fn->config.timeout)));
    }
    std::string name = spec.name;
    Status added = deps_.triggers->Add(std::move(spec));
    if (added.ok()) {
      static auto log = log::Get("control");
      FAAS_LOG(log, info, "trigger.added", {"name", name}, {"fn", req->trigger().function()});
    }
    return TriggerReply(ctx, added, name, reply);
  });
}

grpc::Status ControlService::ListTriggers(grpc::ServerContext* ctx, const v1::ListTriggersRequest*,
                                          v1::ListTriggersReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    for (const auto& st : deps_.triggers->List()) {
      ToProto(st, reply->add_triggers());
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::PauseTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                          v1::TriggerStatus* reply) {
  return AsAdmin(ctx, [&] {
    return TriggerReply(ctx, deps_.triggers->Pause(req->name()), req->name(), reply);
  });
}

grpc::Status ControlService::ResumeTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                           v1::TriggerStatus* reply) {
  return AsAdmin(ctx, [&] {
    return TriggerReply(ctx, deps_.triggers->Resume(req->name()), req->name(), reply);
  });
}

grpc::Status ControlService::DeleteTrigger(grpc::ServerContext* ctx, const v1::TriggerName* req,
                                           v1::DeleteReply*) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (Status s = deps_.triggers->Delete(req->name()); !s.ok()) {
      return TriggerFail(ctx, s);
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::Publish(grpc::ServerContext* ctx, const v1::PublishRequest* req,
                                     v1::PublishReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (req->queue().starts_with("_")) {
      return Fail(ctx, "invalid_argument",
                  InvalidArgumentError("queue names starting with _ are the platform's"));
    }
    store::QueueHeaders headers;
    for (const auto& h : req->headers()) {
      headers.emplace_back(h.name(), h.value());
    }
    auto id = deps_.queue->Publish(req->queue(), req->body(), headers);
    if (!id.ok()) {
      return FailInput(ctx, id.status());
    }
    reply->set_message_id(std::to_string(*id));
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::GetQueueStats(grpc::ServerContext* ctx, const v1::QueueName* req,
                                           v1::QueueStats* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    auto st = deps_.queue->Stats(req->queue());
    if (!st.ok()) {
      return FailInput(ctx, st.status());
    }
    reply->set_queue(st->queue);
    reply->set_ready(st->ready);
    reply->set_delayed(st->delayed);
    reply->set_in_flight(st->in_flight);
    reply->set_dead(st->dead);
    reply->set_published(st->published);
    reply->set_acked(st->acked);
    reply->set_oldest_ready_unix_ms(st->oldest_ready_unix_ms);
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::ListDead(grpc::ServerContext* ctx, const v1::ListDeadRequest* req,
                                      v1::ListDeadReply* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    if (req->replay()) {
      auto n = deps_.queue->ReplayDead(req->queue());
      if (!n.ok()) {
        return Fail(ctx, "internal", n.status());
      }
      reply->set_replayed(*n);
      return grpc::Status::OK;
    }
    auto dead = deps_.queue->ListDead(req->queue(), req->limit() == 0 ? 100 : req->limit());
    if (!dead.ok()) {
      return FailInput(ctx, dead.status());
    }
    for (const auto& d : *dead) {
      v1::DeadMessage* m = reply->add_messages();
      m->set_message_id(std::to_string(d.message.id));
      m->set_origin_queue(d.origin_queue);
      m->set_body(d.message.body);
      m->set_error(d.error);
      m->set_attempts(d.message.attempt);
      m->set_dead_unix_ms(d.dead_unix_ms);
    }
    return grpc::Status::OK;
  });
}

grpc::Status ControlService::GetAsyncInvocation(grpc::ServerContext* ctx, const v1::KeyId* req,
                                                v1::AsyncInvocation* reply) {
  return AsAdmin(ctx, [&]() -> grpc::Status {
    Result<store::AsyncRecord> rec = deps_.async->Get(req->id());
    Result<std::string> json =
        rec.ok() ? Result<std::string>(gateway::AsyncInvocations::ToJson(*rec)) : rec.status();
    if (!json.ok()) {
      return Fail(
          ctx, json.status().code() == StatusCode::kNotFound ? "invocation_not_found" : "internal",
          json.status().code() == StatusCode::kNotFound
              ? NotFoundError("no async invocation \"" + req->id() +
                              "\" (results are kept for --async-retention)")
              : json.status());
    }
    reply->set_json(std::move(*json));
    return grpc::Status::OK;
  });
}

}  // namespace faas::daemon
