#include "redis_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "loopback.h"

namespace faas::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kStartDeadline = std::chrono::seconds(15);  // AOF replay included
constexpr int kPortTries = 5;

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// A port that was free a moment ago (the kernel's pick for port 0).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in a = LoopbackAddress(0);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// Reaps `pid` if it has exited; true when it is gone.
bool Exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

RedisProcess::RedisProcess() = default;

RedisProcess::~RedisProcess() {
  Kill();
}

std::string RedisProcess::ServerPath() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t colon = p.find(':', start);
      std::string dir =
          p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty()) {
        dirs.push_back(dir);
      }
      if (colon == std::string::npos) {
        break;
      }
      start = colon + 1;
    }
  }
  dirs.emplace_back("/usr/bin");
  dirs.emplace_back("/usr/sbin");
  for (const auto& d : dirs) {
    if (std::string candidate = d + "/redis-server"; IsExecutable(candidate)) {
      return candidate;
    }
  }
  return "";
}

bool RedisProcess::Start(std::string* error) {
  std::string why;
  for (int i = 0; i < kPortTries; ++i) {
    int port = FreePort();
    if (port == 0) {
      why = "cannot find a free port";
      continue;
    }
    if (Spawn(port, &why)) {
      port_ = port;
      return true;
    }
  }
  if (error != nullptr) {
    *error = why;
  }
  return false;
}

bool RedisProcess::Restart(std::string* error) {
  if (port_ == 0) {
    if (error != nullptr) {
      *error = "Restart before Start";
    }
    return false;
  }
  Kill();
  std::string why;
  if (!Spawn(port_, &why)) {
    if (error != nullptr) {
      *error = why;
    }
    return false;
  }
  return true;
}

bool RedisProcess::Spawn(int port, std::string* error) {
  std::string server = ServerPath();
  if (server.empty()) {
    *error = "redis-server is not installed";
    return false;
  }
  std::vector<std::string> args = {server,
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir(),
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "yes",
                                   "--appendfsync",
                                   "always",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   dir() + "/redis.log"};
  if (!also_bind_.empty()) {
    args.insert(args.begin() + 5, also_bind_);  // after "--bind", "127.0.0.1"
    // Without a password Redis answers only loopback clients unless told otherwise; this one
    // listens on a test's private bridge.
    args.insert(args.end(), {"--protected-mode", "no"});
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);  // dup2 clears CLOEXEC on the copies
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  port_ = port;
  Clock::time_point deadline = Clock::now() + kStartDeadline;
  while (Clock::now() < deadline) {
    if (Exited(pid_)) {
      pid_ = -1;
      *error = "redis-server exited at start (port " + std::to_string(port) + "): " + Logs();
      return false;
    }
    if (Ping(milliseconds(200))) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(5));  // poll interval, not synchronisation
  }
  *error = "redis-server did not answer PING within 15 s: " + Logs();
  Kill();
  return false;
}

void RedisProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGTERM);
  Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Exited(pid_)) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  Kill();
}

void RedisProcess::Kill() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

bool RedisProcess::Ping(std::chrono::milliseconds timeout) const {
  if (port_ == 0) {
    return false;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return false;
  }
  Clock::time_point deadline = Clock::now() + timeout;
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, events, 0};
    return left > 0 && ::poll(&p, 1, static_cast<int>(left)) == 1 && (p.revents & events) != 0;
  };
  bool ok = false;
  sockaddr_in a = LoopbackAddress(port_);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc == 0 || (errno == EINPROGRESS && wait(POLLOUT))) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    constexpr std::string_view kPing = "PING\r\n";
    if (err == 0 && ::send(fd, kPing.data(), kPing.size(), MSG_NOSIGNAL) ==
                        static_cast<ssize_t>(kPing.size())) {
      std::string reply;
      char buf[256];
      while (reply.find("\r\n") == std::string::npos && wait(POLLIN)) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        reply.append(buf, static_cast<std::size_t>(n));
      }
      ok = reply.starts_with("+PONG");  // "-LOADING …" while the AOF is replayed
    }
  }
  ::close(fd);
  return ok;
}

std::string RedisProcess::Logs() const {
  return ReadFileOrEmpty(dir() + "/redis.log");
}

}  // namespace faas::testing
