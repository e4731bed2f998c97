// Redis Streams load for bench/e2e/triggers.sh, with plain hiredis (no faas code):
//   faas_redis_bench PORT produce STREAM N            XADD N entries (pipelined), body "x"
//   faas_redis_bench PORT ceiling STREAM N [BATCH]    XADD N, then time XREADGROUP+XACK of them
//   faas_redis_bench PORT latency STREAM N GAP_MS     one XADD every GAP_MS, body = CLOCK_REALTIME
//   ns
// The ceiling is what a consumer that does nothing but read and acknowledge reaches against
// this Redis: the upper bound for any trigger. Prints one line of results.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

namespace {

using Clock = std::chrono::steady_clock;

redisReply* Cmd(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr) {
    std::fprintf(stderr, "redis: %s\n", c->errstr);
    std::exit(1);
  }
  return r;
}

void Append(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
}

void Produce(redisContext* c, const std::string& stream, long n) {
  for (long i = 0; i < n; i += 1000) {
    long k = std::min(1000L, n - i);
    for (long j = 0; j < k; ++j) {
      Append(c, {"XADD", stream, "*", "body", "x"});
    }
    for (long j = 0; j < k; ++j) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK) {
        std::fprintf(stderr, "redis: %s\n", c->errstr);
        std::exit(1);
      }
      freeReplyObject(r);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s PORT produce|ceiling|latency STREAM N [ARG]\n", argv[0]);
    return 2;
  }
  redisContext* c = redisConnect("127.0.0.1", std::atoi(argv[1]));
  if (c == nullptr || c->err != 0) {
    std::fprintf(stderr, "cannot connect to redis on port %s\n", argv[1]);
    return 1;
  }
  std::string mode = argv[2], stream = argv[3];
  long n = std::atol(argv[4]);
  if (mode == "produce") {
    auto t0 = Clock::now();
    Produce(c, stream, n);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("produced %ld in %.3f s (%.0f/s)\n", n, s, static_cast<double>(n) / s);
  } else if (mode == "ceiling") {
    long batch = argc > 5 ? std::atol(argv[5]) : 16;
    Produce(c, stream, n);
    freeReplyObject(Cmd(c, {"XGROUP", "CREATE", stream, "ceil", "0"}));
    auto t0 = Clock::now();
    long done = 0;
    while (done < n) {
      redisReply* r = Cmd(c, {"XREADGROUP", "GROUP", "ceil", "c1", "COUNT", std::to_string(batch),
                              "STREAMS", stream, ">"});
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        break;
      }
      redisReply* entries = r->element[0]->element[1];
      std::vector<std::string> ack = {"XACK", stream, "ceil"};
      for (size_t i = 0; i < entries->elements; ++i) {
        ack.emplace_back(entries->element[i]->element[0]->str,
                         entries->element[i]->element[0]->len);
      }
      done += static_cast<long>(entries->elements);
      freeReplyObject(r);
      freeReplyObject(Cmd(c, ack));
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("ceiling: %ld read+acked in %.3f s = %.0f msg/s (batch %ld)\n", done, s,
                static_cast<double>(done) / s, batch);
  } else if (mode == "latency") {
    long gap = argc > 5 ? std::atol(argv[5]) : 20;
    for (long i = 0; i < n; ++i) {
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      long long now = static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
      freeReplyObject(Cmd(c, {"XADD", stream, "*", "body", std::to_string(now)}));
      std::this_thread::sleep_for(std::chrono::milliseconds(gap));
    }
    std::printf("sent %ld, one every %ld ms\n", n, gap);
  }
  redisFree(c);
  return 0;
}
