// The baseline of `faasctl bench cold-start`: faas-fork-baseline run as a separate process.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_report.h"

namespace faas::cli {

// See bench_report.h.
Result<std::vector<double>> ForkBaseline(std::chrono::milliseconds pause, uint32_t count) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path helper = self.parent_path() / "faas-fork-baseline";
  if (ec || !std::filesystem::exists(helper)) {
    return InternalError("the baseline helper " + helper.string() +
                         " is missing (it is built and installed with faasctl)");
  }
  // posix_spawn, not popen: no shell between us and the helper.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2");
  }
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  const std::string path = helper.string();
  const std::string pause_ms = std::to_string(pause.count());
  const std::string n = std::to_string(count);
  std::vector<char*> argv = {const_cast<char*>(path.c_str()), const_cast<char*>(pause_ms.c_str()),
                             const_cast<char*>(n.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    return ErrnoError(spawned, "posix_spawn", path);
  }
  std::string text;
  char buf[4096];
  for (ssize_t got = 0; (got = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (got < 0 && errno != EINTR) {
      break;
    }
    if (got > 0) {
      text.append(buf, static_cast<std::size_t>(got));
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::vector<double> out;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    out.push_back(std::strtod(text.c_str() + at, nullptr));
    at = end == std::string::npos ? text.size() : end + 1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.size() != count) {
    return InternalError("the baseline helper " + path + " failed");
  }
  return out;
}

}  // namespace faas::cli
