// The queue on Redis Streams, shared by every gateway of a cluster
// (docs/design/0021-cluster-queues.md).
//
//   FAAS_ASSIGN_OR_RETURN(auto q, faas::store::OpenRedisQueue({.url = "redis://10.0.0.5:6379",
//                                                               .consumer = gateway_id}));
//   // then exactly as faas/store/queue.h
//
// Layout (every key starts with `prefix`): a message is a hash `m:ID` (ID from INCR `seq`); a
// queue is a stream `s:QUEUE` whose entries carry the message id, read through one consumer
// group `g`, so a lease is a pending entry of that group owned by `consumer`. Lease deadlines
// are a sorted set `l:QUEUE`: an expired lease is taken over with XCLAIM (its delivery count
// and the message's attempt rise), so a killed gateway's work is run by another one after the
// visibility timeout. Retries wait in a sorted set `d:QUEUE` and go back to the stream when due;
// dead letters are a stream `x:DLQ`. Each state change is one Lua script, so it is atomic: the
// ack and the async result (AckWithResult), the dead-letter move, the publish and the
// Idempotency-Key claim (`k:KEY`, SET NX PX). Async records are hashes `a:ID` that expire
// `async_retention` after their last write. No settings: trigger definitions live in PostgreSQL
// (Queue::Settings() is null; docs/design/0029-trigger-definitions.md).
//
// A single Redis server (or a primary with replicas): the scripts compute key names, so Redis
// Cluster is not supported. Durability is Redis's: run it with appendonly yes, appendfsync
// always (or everysec, accepting a second of loss on a power cut). Unavailable from every
// method while Redis cannot be reached; each call tries to reconnect, so nothing needs a
// restart when Redis comes back.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "faas/base/status.h"
#include "faas/store/queue.h"

namespace faas::store {

struct RedisQueueOptions {
  std::string url;               // redis://HOST:PORT[/DB]
  std::string prefix = "faas:";  // of every key
  // This process's consumer name in every group (a gateway instance id). Two live processes
  // must not share one.
  std::string consumer;
  std::chrono::milliseconds async_retention = std::chrono::hours(24);
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds io_timeout{3000};
};

// Checks the options and that Redis answers (Unavailable when it does not, InvalidArgument for
// a bad URL or an empty consumer). The queue reconnects by itself afterwards.
Result<std::unique_ptr<Queue>> OpenRedisQueue(const RedisQueueOptions& options);

}  // namespace faas::store
