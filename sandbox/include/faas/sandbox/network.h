// Outbound network for `--network outbound` (docs/design/0007-outbound-network.md).
//
// The worker gets its own network namespace (always). For an outbound function faasd attaches a
// slirp4netns process to it, which carries the namespace's TCP/UDP out through sockets it opens
// in the host's namespace; inside the namespace, reject routes (installed by the worker while it
// is still root) refuse every destination the function must not reach. Two layers:
//   1. slirp4netns --disable-host-loopback --disable-dns: 10.0.2.2 does not lead to the host's
//      127.0.0.1, and 10.0.2.3 is not a DNS forwarder to the host's resolver;
//   2. `prohibit` routes (connect() fails with EACCES) for the IPv4 rows of the one reserved
//      table (faas/base/ip_range.h: loopback, link-local, private, …) and every address of every
//      host interface, minus `--egress-allow`.
//
//   faasd:  EgressPolicy policy{.slirp_path = FindSlirp4netns(), .allow = {…}};
//           worker args += EgressWorkerArgs(policy, *HostAddresses());
//           … the worker sends NetworkPending from inside its new namespace …
//           FAAS_ASSIGN_OR_RETURN(Slirp s, Slirp::Start(policy.slirp_path, worker_pid, deadline));
//           … then one byte on the channel: the worker installs its routes and goes on.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "faas/base/ip_range.h"
#include "faas/base/status.h"
#include "faas/base/time.h"
#include "faas/base/unique_fd.h"

namespace faas::sandbox {

// An IPv4 network for --egress-allow and the worker's --egress-deny/--egress-allow:
// "10.0.0.0/8", "192.0.2.7" (= /32). ParseCidr's InvalidArgument (host bits set, as in
// "10.1.2.3/8", are an error: say what you mean), and InvalidArgument for an IPv6 range (IPv6 is
// off in the function's namespace).
Result<Cidr> ParseEgressNetwork(std::string_view text);

// What a function's namespace must refuse: the IPv4 rows of ReservedRanges()
// (faas/base/ip_range.h: loopback, this-network, link-local, private, shared address space,
// IETF protocol assignments, benchmarking, multicast, reserved) and the IPv4 `host` addresses
// (as /32), except those wholly inside an `allow` network. Pure; the order is stable.
std::vector<Cidr> DeniedNetworks(const std::vector<IpAddress>& host,
                                 const std::vector<Cidr>& allow);

struct EgressPolicy {
  std::string slirp_path;   // "" = slirp4netns is not available: outbound functions are refused
  std::vector<Cidr> allow;  // faasd --egress-allow, IPv4 (ParseEgressNetwork)
};

// The worker flags that carry the policy: --egress-deny CIDR… --egress-allow CIDR….
// `host`: the host's addresses (HostAddresses(); IPv6 ones are left out).
std::vector<std::string> EgressWorkerArgs(const EgressPolicy& policy,
                                          const std::vector<IpAddress>& host);

// The first executable slirp4netns in the usual system directories, or "".
std::string FindSlirp4netns();

// Inside slirp's network (its default --cidr): the gateway (host loopback when allowed, which
// we never do), and the function's own address on `tap0`.
inline constexpr char kSlirpTap[] = "tap0";
inline constexpr char kSlirpGateway[] = "10.0.2.2";
inline constexpr char kSlirpNetwork[] = "10.0.2.0/24";

// One slirp4netns process attached to one worker's network namespace. It exits when this object
// is destroyed (its --exit-fd closes; it is also killed and reaped), and when faasd dies (the
// exit fd closes with it).
class Slirp {
 public:
  // Attaches to the network namespace of `pid` (a process in the worker's new namespace, which
  // must not be faasd's own) and waits until slirp has configured tap0 (--ready-fd) or the
  // deadline passes. Errors carry slirp's own stderr.
  static Result<Slirp> Start(const std::string& slirp_path, pid_t pid, Clock::time_point deadline);
  Slirp(Slirp&&) = default;
  Slirp& operator=(Slirp&&) = default;
  ~Slirp();
  pid_t pid() const { return pid_; }

 private:
  Slirp() = default;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd exit_fd_;  // slirp exits when this write end closes
};

}  // namespace faas::sandbox
