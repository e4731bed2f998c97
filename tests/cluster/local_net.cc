#include "local_net.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

#include "subprocess.h"

namespace faas::testing {
namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kPrefix = "fzt";

CommandResult Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kIp};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", std::chrono::seconds(20));
}

bool IpOk(const std::vector<std::string>& args, std::string* error) {
  CommandResult r = Ip(args);
  if (r.exit_code != 0 && error != nullptr) {
    std::string cmd = "ip";
    for (const std::string& a : args) {
      cmd += " " + a;
    }
    *error = cmd + ": " + r.err + r.out;
  }
  return r.exit_code == 0;
}

// The pid in a name this harness made ("fzt<pid>..."), or -1.
long OwnerPid(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) {
    return -1;
  }
  std::size_t i = 3;
  long pid = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
    pid = pid * 10 + (name[i] - '0');
    ++i;
  }
  return i == 3 ? -1 : pid;
}

bool Alive(long pid) {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Removes namespaces and links a run whose process is gone left behind (a crash, a SIGKILL
// from ctest's timeout): its destructor never ran.
void RemoveStale() {
  std::istringstream ns(Ip({"netns", "list"}).out);
  for (std::string line; std::getline(ns, line);) {
    std::string name = line.substr(0, line.find(' '));
    if (long pid = OwnerPid(name); pid > 0 && !Alive(pid)) {
      Ip({"netns", "del", name});
    }
  }
  std::istringstream links(Ip({"-o", "link", "show"}).out);
  for (std::string line; std::getline(links, line);) {
    // "7: fzt123b: <...": the name sits between the first ": " and the next ':' or '@'.
    std::size_t a = line.find(": ");
    if (a == std::string::npos) {
      continue;
    }
    std::string name = line.substr(a + 2);
    name = name.substr(0, name.find_first_of(":@"));
    if (long pid = OwnerPid(name); pid > 0 && !Alive(pid)) {
      Ip({"link", "del", name});
    }
  }
}

}  // namespace

std::string LocalNet::Unavailable() {
  if (::geteuid() != 0) {
    return "local-cluster tests need root (network namespaces, veths, a bridge)";
  }
  if (::access(kIp, X_OK) != 0) {
    return std::string(kIp) + " (iproute2) is missing";
  }
  // Make and remove one namespace: a kernel without netns or a container without
  // CAP_SYS_ADMIN fails here.
  std::string probe = std::string(kPrefix) + std::to_string(::getpid()) + "probe";
  CommandResult r = Ip({"netns", "add", probe});
  if (r.exit_code != 0) {
    return "`ip netns add` fails here: " + r.err;
  }
  Ip({"netns", "del", probe});
  return "";
}

LocalNet::LocalNet() : prefix_(std::string(kPrefix) + std::to_string(::getpid())) {
  RemoveStale();
}

LocalNet::~LocalNet() {
  for (const Host& h : hosts_) {
    Ip({"netns", "del", h.name});  // takes the namespace's end of the veth, hence the pair
    Ip({"link", "del", h.veth_host});
  }
  if (bridge_made_) {
    Ip({"link", "del", bridge_});
  }
}

bool LocalNet::Up(std::string* error) {
  // A /24 no interface here uses yet: start from this pid so parallel runs start apart.
  std::string addrs = Ip({"-o", "addr", "show"}).out;
  for (int k = 0; k < 250 && subnet_.empty(); ++k) {
    std::string candidate = "10.77." + std::to_string(1 + (::getpid() + k) % 250);
    if (addrs.find(" " + candidate + ".") == std::string::npos) {
      subnet_ = candidate;
    }
  }
  if (subnet_.empty()) {
    *error = "no free /24 in 10.77.0.0/16";
    return false;
  }
  bridge_ = prefix_ + "b";
  bridge_ip_ = subnet_ + ".1";
  if (!IpOk({"link", "add", bridge_, "type", "bridge"}, error)) {
    return false;
  }
  bridge_made_ = true;
  return IpOk({"addr", "add", bridge_ip_ + "/24", "dev", bridge_}, error) &&
         IpOk({"link", "set", bridge_, "up"}, error);
}

LocalNet::Host LocalNet::AddHost(std::string* error) {
  const int index = static_cast<int>(hosts_.size()) + 1;
  Host h;
  h.name = prefix_ + "n" + std::to_string(index);
  h.netns_path = "/var/run/netns/" + h.name;
  h.veth_host = prefix_ + "h" + std::to_string(index);
  const std::string veth_ns = prefix_ + "p" + std::to_string(index);
  const std::string ip = subnet_ + "." + std::to_string(10 + index);
  if (!IpOk({"netns", "add", h.name}, error)) {
    return {};
  }
  hosts_.push_back(h);  // from here on the destructor removes it
  if (!IpOk({"link", "add", h.veth_host, "type", "veth", "peer", "name", veth_ns}, error) ||
      !IpOk({"link", "set", h.veth_host, "master", bridge_}, error) ||
      !IpOk({"link", "set", h.veth_host, "up"}, error) ||
      !IpOk({"link", "set", veth_ns, "netns", h.name}, error) ||
      !IpOk({"-n", h.name, "addr", "add", ip + "/24", "dev", veth_ns}, error) ||
      !IpOk({"-n", h.name, "link", "set", veth_ns, "up"}, error) ||
      !IpOk({"-n", h.name, "link", "set", "lo", "up"}, error)) {
    return {};
  }
  hosts_.back().ip = ip;
  h.ip = ip;
  return h;
}

bool LocalNet::SetLink(const Host& h, bool up, std::string* error) {
  return IpOk({"link", "set", h.veth_host, up ? "up" : "down"}, error);
}

}  // namespace faas::testing
