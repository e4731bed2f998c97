// Test support for the fault tests (docs/design/0025-fault-tests.md): a local network of network
// namespaces, each joined by a veth pair to one bridge on the host, with addresses this harness
// creates. Each namespace is held by a child process (no `ip netns` name); links carry a per-run
// prefix (`fzt<pid>`) and the addresses a per-run /24 in 10.77.0.0/16, so parallel runs do not
// clash. The destructor removes it all; a test killed outright takes its namespaces (and their
// veths) with it, and the next run removes the bridge it left (its pid gone).
//
//   if (std::string why = LocalNet::Unavailable(); !why.empty()) GTEST_SKIP() << why;
//   LocalNet net;
//   ASSERT_TRUE(net.Up(&error)) << error;          // bridge 10.77.X.1/24 on the host
//   LocalNet::Host n1 = net.AddHost(&error);       // namespace + veth, 10.77.X.11
//   faasd.set_netns(n1.netns_path); faasd.set_bind_host(n1.ip);
//   net.SetLink(n1, false);                        // blackhole: the host side of its veth down
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace faas::testing {

class LocalNet {
 public:
  struct Host {
    std::string name;        // a name for messages
    pid_t holder = -1;       // the process that holds the namespace
    std::string netns_path;  // /proc/<holder>/ns/net, for FaasdProcess::set_netns
    std::string ip;          // its address on the bridge
    std::string veth_host;   // the host side of its veth pair (on the bridge)
  };

  LocalNet();
  ~LocalNet();  // deletes the namespaces, veths and the bridge
  LocalNet(const LocalNet&) = delete;
  LocalNet& operator=(const LocalNet&) = delete;

  // "" when namespaces, veths and bridges can be made here; otherwise why not (for GTEST_SKIP).
  static std::string Unavailable();

  // Creates the bridge with the host's address on it. False with `error` set on failure.
  bool Up(std::string* error);
  // A new namespace with loopback up and one veth to the bridge; `ip` empty on failure.
  Host AddHost(std::string* error);
  // The host side of `h`'s veth up or down: down drops every packet to and from it (a
  // blackhole: no reset, no refusal; TCP retransmits until it comes back).
  bool SetLink(const Host& h, bool up, std::string* error = nullptr);

  const std::string& bridge_ip() const { return bridge_ip_; }

 private:
  std::string prefix_;  // fzt<pid>
  std::string subnet_;  // 10.77.X
  std::string bridge_;
  std::string bridge_ip_;
  std::vector<Host> hosts_;
  bool bridge_made_ = false;
};

}  // namespace faas::testing
