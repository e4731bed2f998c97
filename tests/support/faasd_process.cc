#include "faasd_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace faas::testing {

std::string BinDir() {
  return FAAS_TEST_BIN_DIR;
}
std::string FunctionLib(const std::string& name) {
  return std::string(FAAS_TEST_FUNCTIONS_DIR) + "/lib" + name + ".so";
}
std::string TestdataLib(const std::string& name) {
  return std::string(FAAS_TEST_TESTDATA_DIR) + "/lib" + name + ".so";
}

FaasdProcess::FaasdProcess()
    : data_dir_(tmp_.path() + "/data"), log_path_(tmp_.path() + "/faasd.log") {}

FaasdProcess::FaasdProcess(const std::string& data_dir)
    : data_dir_(data_dir), log_path_(tmp_.path() + "/faasd.log") {}

FaasdProcess::~FaasdProcess() {
  if (pid_ > 0) {
    Stop();  // SIGTERM: faasd removes its workers and cgroups (SIGKILL after the deadline)
  }
}

bool FaasdProcess::Start(const std::vector<std::string>& extra_args) {
  std::string ready = tmp_.path() + "/ready.json";
  ::unlink(ready.c_str());
  std::vector<std::string> argv = {BinDir() + "/faasd",
                                   "--http",
                                   bind_host_ + ":0",
                                   "--grpc",
                                   bind_host_ + ":0",
                                   "--data-dir",
                                   data_dir_,
                                   "--ready-file",
                                   ready,
                                   "--log-level",
                                   "info"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> args;
  for (auto& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (struct rlimit rl{}; nofile_soft_ != 0 && ::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = std::min(nofile_soft_, rl.rlim_max);
      (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!netns_.empty()) {
      // A test killed outright must not leave faasd running in a namespace nobody can name.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int ns = ::open(netns_.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        const std::string why = "faasd_process: cannot join " + netns_ + "\n";
        (void)!::write(2, why.data(), why.size());
        ::_exit(126);
      }
      ::close(ns);
    }
    ::execv(args[0], args.data());
    const std::string why = "faasd_process: cannot exec " + argv[0] + "\n";
    (void)!::write(2, why.data(), why.size());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFileOrEmpty(ready);
    if (!text.empty()) {
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_discarded()) {
        std::string http = j["http"];
        http_port_ = std::atoi(http.substr(http.rfind(':') + 1).c_str());
        grpc_addr_ = j["grpc"];
        return true;
      }
    }
    if (!Running()) {
      return false;
    }
    // Polling a file the daemon writes once; a short pause between polls, bounded by the deadline.
    ::usleep(10'000);
  }
  return false;
}

bool FaasdProcess::Running() {
  if (pid_ <= 0) {
    return false;
  }
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return false;
  }
  return true;
}

int FaasdProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return -1;
  }
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    ::usleep(5'000);
  }
  Kill9();
  return -1;
}

void FaasdProcess::Kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

std::string FaasdProcess::Logs() const {
  return ReadFileOrEmpty(log_path_);
}

std::string FaasdProcess::AdminToken() const {
  std::string token = ReadFileOrEmpty(data_dir_ + "/admin-token");
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) {
    token.pop_back();
  }
  return token;
}

CommandResult FaasdProcess::Ctl(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {BinDir() + "/faasctl", "--server", grpc_addr_, "--token",
                                   AdminToken()};
  if (!tls_ca_.empty()) {
    argv.insert(argv.end(), {"--tls-ca", tls_ca_});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  if (public_deploys_ && !args.empty() && args[0] == "deploy" &&
      std::find(args.begin(), args.end(), "--public") == args.end()) {
    argv.push_back("--public");
  }
  return RunCommand(argv, input);
}

std::string FaasdProcess::CreateKey(const std::string& tenant) {
  CommandResult r = Ctl({"key", "create", "--tenant", tenant, "-o", "json"});
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return r.exit_code == 0 && j.is_object() ? j.value("key", "") : "";
}

CommandResult FaasdProcess::CtlRaw(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {BinDir() + "/faasctl", "--server", grpc_addr_};
  if (!tls_ca_.empty()) {
    argv.insert(argv.end(), {"--tls-ca", tls_ca_});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, input);
}

}  // namespace faas::testing
