// Test support: a real redis-server on 127.0.0.1 with its own temp dir, killed by PID.
//
//   RedisProcess redis;
//   if (RedisProcess::ServerPath().empty()) GTEST_SKIP() << "redis-server is not installed";
//   std::string error;
//   ASSERT_TRUE(redis.Start(&error)) << error;   // free port, waits for PING
//   ... redis.url() ...                          // "redis://127.0.0.1:PORT"
//   redis.Kill();                                 // SIGKILL, as in a crash
//   ASSERT_TRUE(redis.Restart(&error)) << error;  // same port and dir: the AOF brings data back
//
// The server runs with --appendonly yes --appendfsync always and no RDB snapshots, so every
// write it acknowledged survives a SIGKILL. Not thread-safe; one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>

#include "subprocess.h"

namespace faas::testing {

class RedisProcess {
 public:
  RedisProcess();   // a fresh temp dir; no server yet
  ~RedisProcess();  // Kill()s a running server; removes the dir
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  // The redis-server binary found on PATH (or /usr/bin, /usr/sbin), "" when not installed.
  static std::string ServerPath();

  // Also listen on `address` (e.g. a bridge address that processes in other network namespaces
  // reach), besides 127.0.0.1. Before Start().
  void set_also_bind(std::string address) { also_bind_ = std::move(address); }

  // Starts redis-server on a free port (found by binding port 0; another one is tried if the
  // server cannot bind it) and waits until it answers PING. False with `error` set on failure.
  bool Start(std::string* error = nullptr);
  // Starts it again on the same port and dir after Stop()/Kill().
  bool Restart(std::string* error = nullptr);
  // SIGTERM and wait (SIGKILL at the deadline). Idempotent.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGKILL and reap. Idempotent.
  void Kill();

  // True when the server answers PING with +PONG within `timeout` (raw socket, no hiredis).
  bool Ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) const;
  bool Running() const { return pid_ > 0; }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return tmp_.path(); }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  std::string Logs() const;  // the server's log file

 private:
  // Spawns the server on `port` and waits for PING; false if it exits or does not answer.
  bool Spawn(int port, std::string* error);

  TempDir tmp_;
  std::string also_bind_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace faas::testing
