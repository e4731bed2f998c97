// Test support: a real faasd on free loopback ports with its own data dir, plus faasctl.
//
//   FaasdProcess d;                       // temp data dir
//   ASSERT_TRUE(d.Start()) << d.Logs();   // waits for --ready-file
//   auto r = d.Ctl({"deploy", "hello", FunctionLib("hello")});
//   auto h = HttpRequest(d.http_port(), "GET", "/function/hello");
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "subprocess.h"

namespace faas::testing {

// Paths baked in by CMake.
std::string BinDir();                              // build/bin
std::string FunctionLib(const std::string& name);  // build/functions/lib<name>.so
std::string TestdataLib(const std::string& name);  // build/tests/testdata/lib<name>.so

class FaasdProcess {
 public:
  FaasdProcess();  // fresh temp data dir
  explicit FaasdProcess(const std::string& data_dir);
  ~FaasdProcess();  // SIGKILLs a still-running faasd (by its PID) and reaps it

  // Starts faasd and waits (deadline 30 s) for its ready file. False on failure.
  bool Start(const std::vector<std::string>& extra_args = {});
  // SIGTERM, then waits for exit (deadline). Returns the exit code, -1 on signal/timeout.
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void Kill9();
  bool Running();
  // How a faasd that exited on its own ended: its exit code, or -1 (signal, or still running).
  int exit_code() const { return exit_code_; }

  int http_port() const { return http_port_; }
  const std::string& grpc_addr() const { return grpc_addr_; }
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }
  std::string Logs() const;  // faasd's stderr so far
  // This faasd (a --role node on loopback) as an entry of a gateway's --nodes:
  // "ID=GRPC_ADDR@127.0.0.1:HTTP_PORT".
  std::string NodesEntry(const std::string& id) const {
    return id + "=" + grpc_addr_ + "@127.0.0.1:" + std::to_string(http_port_);
  }

  // Runs faasctl against this daemon with its admin token. Unless set_public_deploys(false),
  // `deploy` gets --public, so tests that are not about API keys can call functions directly.
  CommandResult Ctl(const std::vector<std::string>& args, const std::string& input = "");
  // faasctl with exactly `args` after --server: no token, nothing added.
  CommandResult CtlRaw(const std::vector<std::string>& args, const std::string& input = "");
  void set_public_deploys(bool on) { public_deploys_ = on; }
  // For local-cluster tests (tests/cluster/): before Start(), the address faasd binds --http and
  // --grpc on (default 127.0.0.1, ports always 0), and a network namespace (a path such as
  // /proc/PID/ns/net) the child joins with setns(2) before exec. Only the network namespace
  // changes (unlike `ip netns exec`, which also remounts /sys and would hide the cgroup mounts).
  // Such a child also gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG), so a
  // test killed outright leaves no faasd in a namespace: start it from the test's main thread.
  void set_bind_host(const std::string& host) { bind_host_ = host; }
  void set_netns(const std::string& path) { netns_ = path; }
  // The soft RLIMIT_NOFILE faasd starts with (0: inherited), as a login shell's 1024 would be.
  void set_nofile_soft_limit(rlim_t soft) { nofile_soft_ = soft; }
  const std::string& bind_host() const { return bind_host_; }
  // The CA file faasctl verifies a TLS control API with (--tls-ca; a faasd given --tls-* flags
  // and bound off loopback serves TLS). Empty = plaintext.
  void set_tls_ca(const std::string& ca) { tls_ca_ = ca; }
  // The admin token faasd created in its data dir ("" before the first start).
  std::string AdminToken() const;
  // A new API key of `tenant` for every function ("" on failure), made with faasctl.
  std::string CreateKey(const std::string& tenant = "test");

 private:
  TempDir tmp_;
  std::string data_dir_;
  std::string log_path_;
  rlim_t nofile_soft_ = 0;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int http_port_ = 0;
  std::string grpc_addr_;
  bool public_deploys_ = true;
  std::string bind_host_ = "127.0.0.1";
  std::string netns_;
  std::string tls_ca_;
};

}  // namespace faas::testing
