#include "postgres_process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

namespace faas::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";
constexpr auto kInitdbDeadline = std::chrono::seconds(120);
constexpr auto kStartDeadline = std::chrono::seconds(60);

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Who the server runs as: the postgres user when we are root, else ourselves.
struct RunAs {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

bool LookUpRunAs(RunAs* out, std::string* why) {
  if (::geteuid() != 0) {
    return true;
  }
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    *why =
        "running as root, and there is no `postgres` user to run initdb/postgres as "
        "(install the postgresql package)";
    return false;
  }
  *out = RunAs{true, pw->pw_uid, pw->pw_gid};
  return true;
}

// Forks `args` as `as`, stdout and stderr appended to `log`. -1 on failure.
pid_t Spawn(const std::vector<std::string>& args, const RunAs& as, const std::string& log) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  argv.reserve(copy.size() + 1);
  for (std::string& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return -1;
  }
  if (as.change) {
    (void)::fchown(log_fd, as.uid, as.gid);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
    }
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (as.change &&
        (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0)) {
      ::_exit(126);
    }
    // After setuid (which clears it): a test that dies does not leave the server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// Reaps `pid` if it has exited; true when it is gone.
bool Exited(pid_t pid, int* status) {
  return ::waitpid(pid, status, WNOHANG) == pid;
}

}  // namespace

PostgresProcess::PostgresProcess()
    : data_dir_(tmp_.path() + "/data"),
      socket_dir_(tmp_.path() + "/sock"),
      log_path_(tmp_.path() + "/postgres.log") {}

PostgresProcess::~PostgresProcess() {
  Stop();
}

std::string PostgresProcess::BinDir() {
  return kBinDir;
}

std::string PostgresProcess::Unavailable() {
  for (const char* tool : {"initdb", "postgres", "psql"}) {
    if (!IsExecutable(std::string(kBinDir) + "/" + tool)) {
      return std::string(kBinDir) + "/" + tool +
             " is missing: PostgreSQL 15 is not installed (infra/install-deps.sh installs it)";
    }
  }
  RunAs as;
  std::string why;
  return LookUpRunAs(&as, &why) ? "" : why;
}

bool PostgresProcess::Start(std::string* error) {
  std::string why;
  auto fail = [&](std::string msg) {
    if (error != nullptr) {
      *error = std::move(msg) + "\n--- postgres.log ---\n" + Logs();
    }
    return false;
  };
  if (std::string missing = Unavailable(); !missing.empty()) {
    return fail(missing);
  }
  RunAs as;
  LookUpRunAs(&as, &why);
  if (pid_ > 0) {
    return true;
  }
  if (!initialised_) {
    // The temp dir is 0700 root: let the server's user through to its own folders.
    ::chmod(tmp_.path().c_str(), 0755);
    for (const std::string& dir : {data_dir_, socket_dir_}) {
      if (::mkdir(dir.c_str(), 0700) != 0 ||
          (as.change && ::chown(dir.c_str(), as.uid, as.gid) != 0)) {
        return fail("mkdir/chown " + dir + ": " + std::strerror(errno));
      }
    }
    const pid_t initdb =
        Spawn({std::string(kBinDir) + "/initdb", "-D", data_dir_, "-U", "postgres", "--auth=trust",
               "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"},
              as, log_path_);
    if (initdb < 0) {
      return fail(std::string("fork initdb: ") + std::strerror(errno));
    }
    int status = 0;
    const Clock::time_point deadline = Clock::now() + kInitdbDeadline;
    while (!Exited(initdb, &status)) {
      if (Clock::now() > deadline) {
        ::kill(initdb, SIGKILL);
        ::waitpid(initdb, &status, 0);
        return fail("initdb did not finish within 120 s");
      }
      std::this_thread::sleep_for(milliseconds(20));  // poll interval, not synchronisation
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return fail("initdb failed");
    }
    initialised_ = true;
  }
  // Unix socket only; durability off (a test server: speed over surviving power loss).
  pid_ = Spawn({std::string(kBinDir) + "/postgres", "-D", data_dir_, "-k", socket_dir_, "-c",
                "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
                "full_page_writes=off", "-c", "max_connections=60", "-c", "shared_buffers=16MB"},
               as, log_path_);
  if (pid_ < 0) {
    return fail(std::string("fork postgres: ") + std::strerror(errno));
  }
  // postmaster.pid's 8th line says "ready" once the server accepts connections.
  const Clock::time_point deadline = Clock::now() + kStartDeadline;
  while (Clock::now() < deadline) {
    int status = 0;
    if (Exited(pid_, &status)) {
      pid_ = -1;
      return fail("postgres exited at start");
    }
    std::string pidfile = ReadFileOrEmpty(data_dir_ + "/postmaster.pid");
    std::size_t line = 0;
    std::size_t pos = 0;
    for (; line < 7 && pos != std::string::npos; ++line) {
      pos = pidfile.find('\n', pos);
      pos = pos == std::string::npos ? pos : pos + 1;
    }
    if (pos != std::string::npos && pidfile.compare(pos, 5, "ready") == 0) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(10));  // poll interval, not synchronisation
  }
  Stop();
  return fail("postgres was not ready within 60 s");
}

void PostgresProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGINT);  // fast shutdown
  const Clock::time_point deadline = Clock::now() + timeout;
  int status = 0;
  while (Clock::now() < deadline) {
    if (Exited(pid_, &status)) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(milliseconds(10));  // poll interval, not synchronisation
  }
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string PostgresProcess::Url(const std::string& db) const {
  return "postgresql:///" + db + "?host=" + socket_dir_ + "&user=postgres";
}

bool PostgresProcess::Sql(const std::string& db, const std::string& sql, std::string* out,
                          std::string* error) const {
  CommandResult r =
      RunCommand({std::string(kBinDir) + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                  "-h", socket_dir_, "-U", "postgres", "-d", db, "-c", sql},
                 "", std::chrono::seconds(60));
  if (out != nullptr) {
    *out = r.out;
  }
  if (r.exit_code != 0) {
    if (error != nullptr) {
      *error = "psql " + sql.substr(0, 80) + ": exit " + std::to_string(r.exit_code) + ": " + r.err;
    }
    return false;
  }
  return true;
}

bool PostgresProcess::CreateDatabase(const std::string& name, std::string* error) const {
  return Sql("postgres", "CREATE DATABASE \"" + name + "\"", nullptr, error);
}

std::string PostgresProcess::Logs() const {
  return ReadFileOrEmpty(log_path_);
}

}  // namespace faas::testing
