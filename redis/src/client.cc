#include "faas/redis/client.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

namespace faas::redis {
namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

}  // namespace

bool FdSlot::Set(int fd) {
  std::lock_guard lock(mu_);
  if (shut_) {
    return false;
  }
  fd_ = fd;
  return true;
}

void FdSlot::Clear() {
  std::lock_guard lock(mu_);
  fd_ = -1;
}

void FdSlot::Shutdown() {
  std::lock_guard lock(mu_);
  shut_ = true;
  if (fd_ >= 0) {
    // The owner still closes the fd; this only ends its blocking read or write.
    ::shutdown(fd_, SHUT_RDWR);
  }
}

Status RedisClient::Connect(const RedisAddress& addr, RedisTimeouts timeouts, FdSlot* slot) {
  Close();
  where_ = "redis://" + addr.host + ":" + std::to_string(addr.port);
  redisContext* c =
      redisConnectWithTimeout(addr.host.c_str(), addr.port, ToTimeval(timeouts.connect));
  if (c == nullptr) {
    return UnavailableError("connect " + where_ + ": cannot allocate a hiredis context");
  }
  if (c->err != 0) {
    std::string why = c->errstr;
    redisFree(c);
    return UnavailableError("connect " + where_ + ": " + why);
  }
  // hiredis 0.14 opens its socket without SOCK_CLOEXEC; close the gap before anything forks
  // (a worker closes inherited fds anyway).
  if (::fcntl(c->fd, F_SETFD, FD_CLOEXEC) != 0) {
    Status s = ErrnoError(errno, "fcntl(FD_CLOEXEC)", where_);
    redisFree(c);
    return s;
  }
  if (redisSetTimeout(c, ToTimeval(timeouts.io)) != REDIS_OK) {
    std::string why = c->errstr;
    redisFree(c);
    return UnavailableError("set timeout on " + where_ + ": " + why);
  }
  redisEnableKeepAlive(c);
  if (slot != nullptr && !slot->Set(c->fd)) {
    redisFree(c);
    return UnavailableError("connect " + where_ + ": stopping");
  }
  ctx_ = c;
  slot_ = slot;
  if (addr.db != 0) {
    FAAS_ASSIGN_OR_RETURN(RedisReply r, Command({"SELECT", std::to_string(addr.db)}));
    if (std::string err = ReplyError(r.get()); !err.empty()) {
      Close();
      return UnavailableError("SELECT " + std::to_string(addr.db) + " on " + where_ + ": " + err);
    }
  }
  return OkStatus();
}

void RedisClient::Close() {
  if (ctx_ == nullptr) {
    return;
  }
  if (slot_ != nullptr) {
    slot_->Clear();  // before the fd is closed, so Shutdown() never hits a reused fd
    slot_ = nullptr;
  }
  redisFree(ctx_);
  ctx_ = nullptr;
}

Status RedisClient::Broken(std::string_view what) {
  std::string why = ctx_ != nullptr && ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
  Close();
  return UnavailableError(std::string(what) + " on " + where_ + ": " + why);
}

Result<RedisReply> RedisClient::Command(const std::vector<std::string>& argv) {
  FAAS_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Pipeline({argv}));
  return std::move(replies.front());
}

Result<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& cmds) {
  if (ctx_ == nullptr) {
    return UnavailableError("not connected to " + where_);
  }
  if (cmds.empty()) {
    return std::vector<RedisReply>{};
  }
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& argv : cmds) {
    args.clear();
    lens.clear();
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
      return Broken(cmds.front().front());
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(cmds.size());
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      return Broken(cmds[i].front());
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

void BlockSigpipeInThisThread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string ReplyError(const redisReply* r) {
  if (r != nullptr && r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  return "";
}

std::string ReplyString(const redisReply* r) {
  if (r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
    return std::string(r->str, r->len);
  }
  return "";
}

bool IsTransientError(std::string_view error) {
  for (std::string_view prefix : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN",
                                  "READONLY", "NOREPLICAS", "OOM"}) {
    if (error.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

bool IsArray(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY;
}
bool IsNil(const redisReply* r) {
  return r == nullptr || r->type == REDIS_REPLY_NIL;
}

}  // namespace faas::redis
