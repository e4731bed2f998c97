// The jail step for `--network outbound` (docs/design/0007-outbound-network.md). Runs as root in
// the worker's new network namespace, before privileges are dropped and long before the
// function's code: after it, the function cannot change a route (no CAP_NET_ADMIN, and seccomp
// refuses AF_NETLINK sockets).
//   1. IPv6 off in the namespace (slirp carries IPv4 only; no fe80::/fc00:: paths to filter).
//   2. Tell faasd the namespace exists (a NetworkPending frame); wait for its byte, which comes
//      once slirp4netns has configured tap0. EOF: no network, no function.
//   3. Routes: slirp's 10.0.2.0/24 becomes just its gateway (/32): the rest of that network,
//      10.0.2.3 among it, would otherwise be relayed to the host's side as it is. Then each
//      allowed network via the gateway, and a `prohibit` route (EACCES) for each denied one.
#include "faas/sandbox/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "faas/base/unique_fd.h"
#include "faas/sandbox/channel.h"
#include "faas/sandbox/jail.h"
#include "faas/v1/worker.pb.h"

namespace faas::sandbox {
namespace {

constexpr int kChannelFd = 3;

// Writes "1" into a sysctl of this namespace (/proc/sys/net is per network namespace). A kernel
// without IPv6 has no such file: nothing to turn off.
Status DisableIpv6() {
  for (const char* f : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                        "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
    UniqueFd fd(::open(f, O_WRONLY | O_CLOEXEC));
    if (!fd.Valid() && errno == ENOENT) {
      continue;
    }
    if (!fd.Valid() || ::write(fd.Get(), "1", 1) != 1) {
      return ErrnoError(errno, "write", f);
    }
  }
  return OkStatus();
}

// One RTM_NEWROUTE/RTM_DELROUTE in the main table, acknowledged.
struct Route {
  uint16_t op = RTM_NEWROUTE;
  uint8_t type = RTN_UNICAST;  // or RTN_PROHIBIT
  uint8_t scope = RT_SCOPE_UNIVERSE;
  Cidr dst;              // IPv4 (ParseEgressNetwork)
  uint32_t gateway = 0;  // host byte order; 0 = none
  int oif = 0;           // 0 = none
};

void AddAttr(nlmsghdr* h, uint16_t type, const void* data, uint16_t len) {
  auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(h) + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(reinterpret_cast<char*>(a) + RTA_LENGTH(0), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

Status Apply(int nl, const Route& r) {
  alignas(nlmsghdr) char buf[256] = {};
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  h->nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  h->nlmsg_type = r.op;
  h->nlmsg_flags =
      NLM_F_REQUEST | NLM_F_ACK | (r.op == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  auto* m = reinterpret_cast<rtmsg*>(buf + NLMSG_HDRLEN);
  m->rtm_family = AF_INET;
  m->rtm_dst_len = static_cast<unsigned char>(r.dst.PrefixLength());
  m->rtm_table = RT_TABLE_MAIN;
  m->rtm_protocol = r.op == RTM_NEWROUTE ? uint8_t{RTPROT_STATIC} : uint8_t{0};
  m->rtm_scope = r.op == RTM_NEWROUTE ? r.scope : uint8_t{RT_SCOPE_NOWHERE};  // delete: any scope
  m->rtm_type = r.type;
  uint32_t dst = htonl(r.dst.base.V4());
  AddAttr(h, RTA_DST, &dst, sizeof dst);
  if (r.gateway != 0) {
    uint32_t gw = htonl(r.gateway);
    AddAttr(h, RTA_GATEWAY, &gw, sizeof gw);
  }
  if (r.oif != 0) {
    AddAttr(h, RTA_OIF, &r.oif, sizeof r.oif);
  }
  if (::send(nl, buf, h->nlmsg_len, 0) != static_cast<ssize_t>(h->nlmsg_len)) {
    return ErrnoError(errno, "send", "netlink route");
  }
  alignas(nlmsghdr) char ack[512];
  ssize_t n = ::recv(nl, ack, sizeof ack, 0);
  auto* a = reinterpret_cast<nlmsghdr*>(ack);
  if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) || a->nlmsg_type != NLMSG_ERROR) {
    return InternalError("netlink: no acknowledgement for route " + r.dst.ToString());
  }
  int err = reinterpret_cast<nlmsgerr*>(ack + NLMSG_HDRLEN)->error;
  if (err != 0) {
    return ErrnoError(-err, r.op == RTM_NEWROUTE ? "RTM_NEWROUTE" : "RTM_DELROUTE",
                      r.dst.ToString());
  }
  return OkStatus();
}

Status WaitForFaasd() {
  v1::WorkerResponse msg;
  msg.mutable_network_pending();
  std::string frame(kFrameHeaderBytes, '\0');
  msg.AppendToString(&frame);
  FAAS_RETURN_IF_ERROR(WriteFramed(kChannelFd, &frame));
  char go = 0;
  ssize_t n;
  do {
    n = ::read(kChannelFd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    return UnavailableError("faasd did not attach the outbound network");
  }
  return OkStatus();
}

}  // namespace

Status AttachOutboundNetwork(const JailSpec& spec) {
  if (spec.egress_deny.empty()) {  // fail closed: faasd always sends at least the fixed ranges
    return InvalidArgumentError("--network outbound without --egress-deny: no egress policy");
  }
  FAAS_RETURN_IF_ERROR(DisableIpv6());
  FAAS_RETURN_IF_ERROR(WaitForFaasd());
  int tap = static_cast<int>(::if_nametoindex(kSlirpTap));
  if (tap == 0) {
    return ErrnoError(errno, "if_nametoindex", kSlirpTap);
  }
  UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!nl.Valid()) {
    return ErrnoError(errno, "socket(AF_NETLINK)");
  }
  FAAS_ASSIGN_OR_RETURN(Cidr gw, ParseEgressNetwork(kSlirpGateway));
  FAAS_ASSIGN_OR_RETURN(Cidr slirp_net, ParseEgressNetwork(kSlirpNetwork));
  FAAS_RETURN_IF_ERROR(Apply(nl.Get(), {.scope = RT_SCOPE_LINK, .dst = gw, .oif = tap}));
  FAAS_RETURN_IF_ERROR(Apply(nl.Get(), {.op = RTM_DELROUTE, .dst = slirp_net, .oif = tap}));
  for (const std::string& text : spec.egress_allow) {
    FAAS_ASSIGN_OR_RETURN(Cidr c, ParseEgressNetwork(text));
    FAAS_RETURN_IF_ERROR(Apply(nl.Get(), {.dst = c, .gateway = gw.base.V4(), .oif = tap}));
  }
  for (const std::string& text : spec.egress_deny) {
    FAAS_ASSIGN_OR_RETURN(Cidr c, ParseEgressNetwork(text));
    FAAS_RETURN_IF_ERROR(Apply(nl.Get(), {.type = RTN_PROHIBIT, .dst = c}));
  }
  return OkStatus();
}

}  // namespace faas::sandbox
