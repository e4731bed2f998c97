#include "local_net.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

#include "subprocess.h"

namespace faas::testing {
namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kNsenter = "/usr/bin/nsenter";
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
  for (const char* tool : {kIp, kNsenter}) {
    if (::access(tool, X_OK) != 0) {
      return std::string(tool) + " is missing (iproute2, util-linux)";
    }
  }
  // A kernel without netns or a container without CAP_SYS_ADMIN fails here.
  pid_t child = ::fork();
  if (child == 0) {
    ::_exit(::unshare(CLONE_NEWNET) == 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "unshare(CLONE_NEWNET) fails here: no network namespaces";
  }
  return "";
}

LocalNet::LocalNet() : prefix_(std::string(kPrefix) + std::to_string(::getpid())) {
  RemoveStale();
}

LocalNet::~LocalNet() {
  for (const Host& h : hosts_) {
    // The namespace ends with its last process, and takes its end of the veth (hence the pair).
    ::kill(h.holder, SIGKILL);
    ::waitpid(h.holder, nullptr, 0);
    Ip({"link", "del", h.veth_host});  // already gone, unless the namespace is still held
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
  h.veth_host = prefix_ + "h" + std::to_string(index);
  const std::string veth_ns = prefix_ + "p" + std::to_string(index);
  const std::string ip = subnet_ + "." + std::to_string(10 + index);
  // The namespace is held by a child that does nothing else, and is named by its pid, not by a
  // bind mount under /run/netns: that directory is a shared mount, and a mount event from
  // another mount namespace on this machine once took such a bind mount away under a running
  // test ("setting the network namespace ... failed: Invalid argument"). The holder dies with
  // the test (PR_SET_PDEATHSIG), and the namespace with it.
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    *error = "pipe2 failed";
    return {};
  }
  h.holder = ::fork();
  if (h.holder == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char ok = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    for (;;) {
      ::pause();
    }
  }
  ::close(ready[1]);
  char ok = 'n';
  const bool got = ::read(ready[0], &ok, 1) == 1;
  ::close(ready[0]);
  if (h.holder < 0 || !got || ok != 'y') {
    *error = "could not make a network namespace";
    if (h.holder > 0) {
      ::kill(h.holder, SIGKILL);
      ::waitpid(h.holder, nullptr, 0);
    }
    return {};
  }
  h.netns_path = "/proc/" + std::to_string(h.holder) + "/ns/net";
  hosts_.push_back(h);  // from here on the destructor removes it
  auto in_ns = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {kNsenter, "--net=" + h.netns_path, kIp};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, "", std::chrono::seconds(20));
    if (r.exit_code != 0) {
      *error = "nsenter ip " + args[0] + " ...: " + r.err + r.out;
    }
    return r.exit_code == 0;
  };
  if (!IpOk({"link", "add", h.veth_host, "type", "veth", "peer", "name", veth_ns}, error) ||
      !IpOk({"link", "set", h.veth_host, "master", bridge_}, error) ||
      !IpOk({"link", "set", h.veth_host, "up"}, error) ||
      !IpOk({"link", "set", veth_ns, "netns", std::to_string(h.holder)}, error) ||
      !in_ns({"addr", "add", ip + "/24", "dev", veth_ns}) ||
      !in_ns({"link", "set", veth_ns, "up"}) || !in_ns({"link", "set", "lo", "up"})) {
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
