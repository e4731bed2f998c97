#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "faas/base/ids.h"
#include "faas/base/log.h"
#include "faas/gateway/shared_rate_limit.h"
#include "faas/redis/client.h"
#include "faas/store/config.h"

namespace faas::gateway {
namespace {

// The GCRA of RateLimiter::Take in Redis, in integer microseconds: Lua numbers are doubles,
// exact to 2^53, and Unix time in microseconds (1.8e15) fits while nanoseconds (1.8e18) would
// not. KEYS[1]: the bucket (its "full at" time). ARGV: interval, capacity (burst * interval),
// and the time, "" for Redis's own TIME. Returns 0 when admitted, else the wait. The key expires
// when the bucket is full again: a missing key is a full bucket, as in RateLimiter.
constexpr std::string_view kTakeScript = R"lua(
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local full_at = tonumber(redis.call('GET', KEYS[1]) or now)
if full_at < now then full_at = now end
local after = full_at + interval
if after - now > capacity then
  return after - now - capacity
end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX',
           string.format('%.0f', math.ceil((after - now) / 1000)))
return 0
)lua";

// The gateway set: refreshes ARGV[1]'s expiry (now + ARGV[2] ms, Redis time), drops expired
// members and answers how many are left. The whole set expires when nobody refreshes it.
constexpr std::string_view kMembersScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
)lua";

// Caps as in rate_limit.cc, in microseconds: the interval at 1e14 us (3 years per token), the
// bucket at 1e15 us; with now (1.8e15) every sum stays below 2^53 (9e15).
constexpr int64_t kMaxIntervalUs = 100'000'000'000'000;
constexpr int64_t kMaxBucketUs = 1'000'000'000'000'000;

int64_t IntervalUs(double rate_per_sec) {
  const double us = std::round(1e6 / rate_per_sec);
  if (!(us < static_cast<double>(kMaxIntervalUs))) {
    return kMaxIntervalUs;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(us));
}

std::string DefaultGatewayId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    host[0] = '?';
  }
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + NewInvocationId();
}

}  // namespace

struct SharedRateLimiter::Impl {
  // A pooled connection with its script loaded, made in breaker generation `generation`.
  struct Conn {
    redis::RedisClient client;
    std::string sha;
    uint64_t generation = 0;
  };

  SharedLimitOptions o;
  redis::RedisAddress addr;
  std::shared_ptr<spdlog::logger> log = log::Get("gateway");

  std::atomic<bool> up{false};
  // Raised when the breaker closes, so connections made before an outage are not reused.
  std::atomic<uint64_t> generation{0};
  std::atomic<int> gateways{1};
  std::atomic<uint64_t> redis_takes{0}, fallback_takes{0}, trips{0};

  std::mutex pool_mu;
  std::vector<std::unique_ptr<Conn>> idle;  // guarded by pool_mu

  RateLimiter fallback;

  std::mutex beat_mu;            // one heartbeat at a time (thread, Probe, Stop)
  redis::RedisClient beat_conn;  // guarded by beat_mu
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu
  std::thread thread;

  Clock::time_point Now() const { return o.now ? o.now() : Clock::now(); }
  redis::RedisTimeouts Timeouts() const {
    return {.connect = o.connect_timeout, .io = o.io_timeout};
  }

  // A connection with the script loaded: an idle one of this generation, else a new one.
  // `fresh` says which.
  Result<std::unique_ptr<Conn>> Acquire(bool* fresh) {
    const uint64_t gen = generation.load(std::memory_order_acquire);
    {
      std::lock_guard lock(pool_mu);
      while (!idle.empty()) {
        std::unique_ptr<Conn> c = std::move(idle.back());
        idle.pop_back();
        if (c->generation == gen) {
          *fresh = false;
          return c;
        }
      }
    }
    *fresh = true;
    auto c = std::make_unique<Conn>();
    c->generation = gen;
    FAAS_RETURN_IF_ERROR(c->client.Connect(addr, Timeouts()));
    FAAS_RETURN_IF_ERROR(LoadScript(*c));
    return c;
  }

  Status LoadScript(Conn& c) {
    FAAS_ASSIGN_OR_RETURN(redis::RedisReply r,
                          c.client.Command({"SCRIPT", "LOAD", std::string(kTakeScript)}));
    c.sha = redis::ReplyString(r.get());
    if (c.sha.empty()) {
      c.client.Close();
      return UnavailableError("SCRIPT LOAD: " + redis::ReplyError(r.get()));
    }
    return OkStatus();
  }

  void Release(std::unique_ptr<Conn> c) {
    std::lock_guard lock(pool_mu);
    if (idle.size() < o.max_idle_connections &&
        c->generation == generation.load(std::memory_order_relaxed)) {
      idle.push_back(std::move(c));
    }
  }

  // One Take on `c`: the wait in microseconds. Unavailable when the connection broke or Redis
  // answered an error (the connection is then not reused).
  Result<int64_t> Eval(Conn& c, const std::string& key, int64_t interval, int64_t capacity) {
    std::vector<std::string> argv = {
        "EVALSHA",
        c.sha,
        "1",
        key,
        std::to_string(interval),
        std::to_string(capacity),
        o.redis_now_us ? std::to_string(o.redis_now_us()) : std::string()};
    FAAS_ASSIGN_OR_RETURN(redis::RedisReply r, c.client.Command(argv));
    if (redis::ReplyError(r.get()).starts_with("NOSCRIPT")) {
      // Redis restarted and forgot the script: load it again, once.
      FAAS_RETURN_IF_ERROR(LoadScript(c));
      argv[1] = c.sha;
      FAAS_ASSIGN_OR_RETURN(r, c.client.Command(argv));
    }
    if (r->type != REDIS_REPLY_INTEGER) {
      std::string err = redis::ReplyError(r.get());
      c.client.Close();
      return UnavailableError("rate limit script: " + (err.empty() ? "unexpected reply" : err));
    }
    return static_cast<int64_t>(r->integer);
  }

  Result<int64_t> TakeShared(std::string_view key, double rate_per_sec, uint32_t burst) {
    const int64_t interval = IntervalUs(rate_per_sec);
    int64_t capacity = 0;
    if (__builtin_mul_overflow(int64_t{store::EffectiveBurst(rate_per_sec, burst)}, interval,
                               &capacity) ||
        capacity > kMaxBucketUs) {
      capacity = kMaxBucketUs;
    }
    const std::string full_key = o.key_prefix + std::string(key);
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      FAAS_ASSIGN_OR_RETURN(std::unique_ptr<Conn> c, Acquire(&fresh));
      Result<int64_t> wait = Eval(*c, full_key, interval, capacity);
      if (wait.ok()) {
        Release(std::move(c));
        return wait;
      }
      // A pooled connection may have died quietly (Redis restarted between two heartbeats):
      // one more try on a new one before calling Redis down.
      if (fresh || attempt > 0) {
        return wait.status();
      }
    }
  }

  void Trip(const Status& why) {
    if (up.exchange(false)) {
      trips.fetch_add(1, std::memory_order_relaxed);
      FAAS_LOG(log, warn, "rate_limit.redis_down", {"error", why.message()},
               {"gateways", gateways.load()},
               {"fallback", "each gateway enforces limit / gateways locally"});
      std::lock_guard lock(pool_mu);
      idle.clear();
    }
  }

  std::chrono::nanoseconds TakeLocal(std::string_view key, double rate_per_sec, uint32_t burst) {
    fallback_takes.fetch_add(1, std::memory_order_relaxed);
    const int g = std::max(1, gateways.load(std::memory_order_relaxed));
    const uint32_t whole = store::EffectiveBurst(rate_per_sec, burst);
    const uint32_t share = std::max<uint32_t>(1, whole / static_cast<uint32_t>(g));
    return fallback.Take(key, rate_per_sec / g, share, Now());
  }

  // Refreshes this gateway in the set and learns G; closes the breaker on success, opens it on
  // failure.
  bool Beat() {
    std::lock_guard lock(beat_mu);
    Status failed = OkStatus();
    if (!beat_conn.Connected()) {
      failed = beat_conn.Connect(addr, Timeouts());
    }
    if (failed.ok()) {
      Result<redis::RedisReply> r =
          beat_conn.Command({"EVAL", std::string(kMembersScript), "1", o.key_prefix + "gw",
                             o.gateway_id, std::to_string(o.member_ttl.count())});
      if (r.ok() && (*r)->type == REDIS_REPLY_INTEGER) {
        const auto n = static_cast<int>(std::clamp<long long>((*r)->integer, 1, 1 << 20));
        if (gateways.exchange(n) != n) {
          FAAS_LOG(log, info, "rate_limit.gateways", {"gateways", n});
        }
        if (!up.load()) {
          generation.fetch_add(1, std::memory_order_acq_rel);
          up.store(true, std::memory_order_release);
          FAAS_LOG(log, info, "rate_limit.redis_up", {"gateways", n});
        }
        return true;
      }
      failed =
          r.ok() ? UnavailableError("gateway set: " + redis::ReplyError(r->get())) : r.status();
      beat_conn.Close();
    }
    Trip(failed);
    return false;
  }

  void Run() {
    redis::BlockSigpipeInThisThread();
    std::unique_lock lock(stop_mu);
    Clock::time_point next_prune = Clock::now();
    while (!stopping) {
      const auto pause = up.load() ? o.heartbeat : o.retry_pause;
      if (stop_cv.wait_for(lock, pause, [this] { return stopping; })) {
        break;
      }
      lock.unlock();
      Beat();
      if (Clock::now() >= next_prune) {
        fallback.Prune(Now());  // buckets of the last outage that are full again
        next_prune = Clock::now() + std::chrono::minutes(1);
      }
      lock.lock();
    }
  }
};

Result<std::unique_ptr<SharedRateLimiter>> SharedRateLimiter::Create(SharedLimitOptions options) {
  FAAS_ASSIGN_OR_RETURN(redis::RedisAddress addr, redis::ParseRedisUrl(options.redis_url));
  auto impl = std::make_unique<Impl>();
  impl->addr = std::move(addr);
  if (options.gateway_id.empty()) {
    options.gateway_id = DefaultGatewayId();
  }
  impl->o = std::move(options);
  return std::unique_ptr<SharedRateLimiter>(new SharedRateLimiter(std::move(impl)));
}

SharedRateLimiter::SharedRateLimiter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SharedRateLimiter::~SharedRateLimiter() {
  Stop();
}

Status SharedRateLimiter::Start() {
  const bool ok = Probe();
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
  if (!ok) {
    return UnavailableError("rate limits: Redis at " + impl_->o.redis_url +
                            " is unreachable; each gateway enforces its share locally until it "
                            "answers");
  }
  return OkStatus();
}

void SharedRateLimiter::Stop() {
  {
    std::lock_guard lock(impl_->stop_mu);
    if (impl_->stopping) {
      return;
    }
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
  std::lock_guard lock(impl_->beat_mu);
  if (impl_->beat_conn.Connected()) {
    // Best effort: the others count one gateway fewer at their next heartbeat.
    (void)impl_->beat_conn.Command({"ZREM", impl_->o.key_prefix + "gw", impl_->o.gateway_id});
    impl_->beat_conn.Close();
  }
}

std::chrono::nanoseconds SharedRateLimiter::Take(std::string_view key, double rate_per_sec,
                                                 uint32_t burst) {
  if (!(rate_per_sec > 0)) {
    return std::chrono::nanoseconds(0);
  }
  if (impl_->up.load(std::memory_order_acquire)) {
    Result<int64_t> wait_us = impl_->TakeShared(key, rate_per_sec, burst);
    if (wait_us.ok()) {
      impl_->redis_takes.fetch_add(1, std::memory_order_relaxed);
      return std::chrono::microseconds(*wait_us);
    }
    impl_->Trip(wait_us.status());
  }
  return impl_->TakeLocal(key, rate_per_sec, burst);
}

bool SharedRateLimiter::UsingRedis() const {
  return impl_->up.load(std::memory_order_acquire);
}

int SharedRateLimiter::Gateways() const {
  return impl_->gateways.load(std::memory_order_relaxed);
}

bool SharedRateLimiter::Probe() {
  return impl_->Beat();
}

SharedRateLimiter::Stats SharedRateLimiter::GetStats() const {
  return {.redis_takes = impl_->redis_takes.load(),
          .fallback_takes = impl_->fallback_takes.load(),
          .trips = impl_->trips.load()};
}

}  // namespace faas::gateway
