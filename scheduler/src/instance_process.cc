// The process part of an instance (instance_process.h): spawning or forking the worker, the jail
// handshake up to its ready frame, its cgroup, logs and CPU readings, and its end.
#include "instance_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <optional>

#include "faas/base/log.h"
#include "faas/base/scope_exit.h"
#include "faas/base/text.h"
#include "faas/metering/cpu_clock.h"
#include "faas/sandbox/channel.h"
#include "faas/sandbox/jail.h"
#include "faas/v1/worker.pb.h"

#include "worker_response.h"
#include "zygote.h"

namespace faas::scheduler {
namespace {

std::chrono::nanoseconds CpuOf(pid_t pid) {
  auto cpu = metering::ProcessCpuTime(pid);
  return cpu.ok() ? *cpu : std::chrono::nanoseconds(0);
}

// A channel socketpair (ours non-blocking once the worker has its end) and an O_APPEND log memfd.
struct Endpoints {
  UniqueFd ours, theirs, log;
};

Result<Endpoints> MakeEndpoints(bool pass_credentials) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoError(errno, "socketpair");
  }
  Endpoints e{UniqueFd(sv[0]), UniqueFd(sv[1]), UniqueFd(::memfd_create("faas-log", MFD_CLOEXEC))};
  if (!e.log.Valid()) {
    return ErrnoError(errno, "memfd_create");
  }
  // O_APPEND lives on the shared open file description: the worker always appends, so the
  // daemon can truncate the log between invocations without the worker's offset going stale.
  if (::fcntl(e.log.Get(), F_SETFL, O_APPEND) != 0) {
    return ErrnoError(errno, "fcntl(F_SETFL, O_APPEND)");
  }
  // The kernel then stamps each message the peer sends with its pid (PeekSenderPid).
  int on = 1;
  if (pass_credentials &&
      ::setsockopt(e.ours.Get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    return ErrnoError(errno, "setsockopt(SO_PASSCRED)");
  }
  return e;
}

// An instance's cgroup (i-N), or a zygote's (z-N, made on demand: starting one is off the
// request path, and the name tells operators which is which).
Result<std::unique_ptr<sandbox::InstanceCgroup>> TakeCgroup(
    const FunctionSpec& spec, const SchedulerOptions& options, bool zygote,
    const std::shared_ptr<sandbox::FunctionCgroup>& group) {
  if (options.cgroups == nullptr) {
    return std::unique_ptr<sandbox::InstanceCgroup>();
  }
  const sandbox::CgroupLimits limits = LimitsFor(spec, options);
  if (zygote) {
    static std::atomic<uint64_t> next{0};
    return options.cgroups->CreateInstance("z-" + std::to_string(next++), limits, group);
  }
  // A spare made ahead of need when one is ready (SchedulerOptions::spare_cgroups).
  return options.cgroups->TakeInstance(limits, group);
}

bool PidfdExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

uid_t RunAs(const FunctionSpec& spec) {
  return spec.uid != 0 ? spec.uid : sandbox::FunctionUid(spec.name);
}

sandbox::CgroupLimits LimitsFor(const FunctionSpec& spec, const SchedulerOptions& options) {
  sandbox::CgroupLimits limits;
  limits.memory_bytes = spec.config.memory_mb << 20;
  limits.pids_max = options.pids_max;
  return limits;
}

sandbox::FunctionLimits FunctionLevelLimits(const FunctionSpec& spec,
                                            const SchedulerOptions& options) {
  const uint64_t instances = spec.config.max_instances;
  const uint64_t slots = instances + 2;  // + the current and a replaced version's zygote
  sandbox::FunctionLimits limits;
  limits.cpu_cap_us = static_cast<uint64_t>(options.function_cpus * 100'000);
  limits.memory_bytes =
      slots * (uint64_t{spec.config.memory_mb} << 20) + 2 * instances * kForkAllowanceBytes;
  limits.pids_max = slots * options.pids_max;
  return limits;
}

uint64_t NprocFor(const FunctionSpec& spec, const SchedulerOptions& options) {
  return FunctionLevelLimits(spec, options).pids_max + options.pids_max;
}

// "Uid:\t1000\t..." -> "1000"; the last number of "NSpid:" (the pid in the innermost namespace).
std::string StatusField(const std::string& status, std::string_view name, bool last) {
  std::size_t at = status.find("\n" + std::string(name) + ":\t");
  if (at == std::string::npos) {
    return {};
  }
  std::size_t begin = at + name.size() + 3;
  std::size_t end = status.find('\n', begin);
  std::string line = status.substr(begin, end - begin);
  std::size_t tab = last ? line.rfind('\t') : line.find('\t');
  if (tab == std::string::npos) {
    return line;
  }
  return last ? line.substr(tab + 1) : line.substr(0, tab);
}

std::string ProcStatus(pid_t pid) {
  std::string out(4096, '\0');
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/status").c_str(), O_RDONLY | O_CLOEXEC));
  ssize_t n = fd.Valid() ? ::read(fd.Get(), out.data(), out.size()) : -1;
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return "\n" + out;
}

Result<std::unique_ptr<InstanceProcess>> InstanceProcess::Start(
    std::shared_ptr<const FunctionSpec> spec, const SchedulerOptions& options,
    const std::shared_ptr<sandbox::FunctionCgroup>& group, StartTimings* timings, bool as_zygote) {
  const bool outbound = spec->config.network == "outbound";
  sandbox::EgressPolicy egress;
  egress.slirp_path = options.slirp4netns;
  std::vector<IpAddress> host_addresses;
  if (outbound) {
    // Fail closed before anything starts; the host's addresses are read for every worker, so
    // one added since the last start is refused too.
    if (egress.slirp_path.empty()) {
      return sandbox::Slirp::Start("", 0, Clock::now()).status();  // says what is missing
    }
    for (const std::string& a : options.egress_allow) {
      FAAS_ASSIGN_OR_RETURN(Cidr c, sandbox::ParseEgressNetwork(a));
      egress.allow.push_back(c);
    }
    FAAS_ASSIGN_OR_RETURN(host_addresses, HostAddresses());
  }
  // The kernel names the sender of the first frame: the zygote's ready frame, or the outbound
  // worker's NetworkPending (both come from PID 1 of the worker's namespace, not the keeper).
  FAAS_ASSIGN_OR_RETURN(Endpoints e, MakeEndpoints(as_zygote || outbound));
  auto t0 = Clock::now();
  FAAS_ASSIGN_OR_RETURN(std::unique_ptr<sandbox::InstanceCgroup> cg,
                        TakeCgroup(*spec, options, as_zygote, group));
  uid_t uid = RunAs(*spec);
  std::vector<std::string> jail_args = {
      "--uid",          std::to_string(uid),
      "--gid",          std::to_string(uid),
      "--memory-bytes", std::to_string(spec->config.memory_mb << 20),
      "--nproc",        std::to_string(NprocFor(*spec, options)),
      "--tmp-bytes",    std::to_string(options.tmp_bytes),
      "--network",      spec->config.network};
  if (outbound) {
    std::vector<std::string> args = sandbox::EgressWorkerArgs(egress, host_addresses);
    jail_args.insert(jail_args.end(), args.begin(), args.end());
  }
  if (as_zygote) {
    jail_args.emplace_back("--zygote");
  }
  SpawnSpec ss{.worker_path = options.worker_path,
               .library_path = spec->library_path,
               .jail_args = std::move(jail_args),
               .channel_fd = e.theirs.Get(),
               .log_fd = e.log.Get(),
               .cgroup_procs_fds = cg ? cg->ProcsFds() : std::vector<int>{},
               .sched_batch = options.instance_sched_batch && !as_zygote};
  FAAS_ASSIGN_OR_RETURN(WorkerProcess process, WorkerProcess::Spawn(ss));
  timings->spawn = Clock::now() - t0;
  e.theirs.Reset();
  if (::fcntl(e.ours.Get(), F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoError(errno, "fcntl(F_SETFL, O_NONBLOCK)");
  }
  const auto deadline = t0 + options.init_timeout;
  std::unique_ptr<InstanceProcess> inst(new InstanceProcess(
      std::move(spec), std::move(cg), std::move(process), std::move(e.ours), std::move(e.log)));
  if (as_zygote || outbound) {
    // The zygote (PID 1 of its namespace) writes the ready frame, not the keeper we spawned.
    auto sender = sandbox::PeekSenderPid(inst->channel_.Get(), deadline);
    inst->sender_pid_ = sender.ok() ? *sender : -1;  // on error AwaitReady says what happened
  }
  FAAS_RETURN_IF_ERROR(inst->AwaitReady(deadline, options.init_timeout, timings,
                                        /*spawned=*/true, outbound ? &egress : nullptr));
  return inst;
}

Result<std::unique_ptr<InstanceProcess>> InstanceProcess::Fork(
    const std::shared_ptr<Zygote>& zygote, const SchedulerOptions& options, StartTimings* timings,
    bool park) {
  std::shared_ptr<const FunctionSpec> spec = zygote->SpecPtr();
  auto t0 = Clock::now();
  const auto deadline = t0 + options.init_timeout;
  if (!park) {
    // Forked, jailed, verified and in its cgroup ahead of need: only the hand-over is left.
    if (std::unique_ptr<InstanceProcess> parked = zygote->TakeParked(deadline)) {
      parked->zygote_ = zygote;
      timings->spawn = Clock::now() - t0;
      return parked;
    }
  }
  FAAS_ASSIGN_OR_RETURN(Endpoints e, MakeEndpoints(/*pass_credentials=*/true));
  FAAS_ASSIGN_OR_RETURN(std::unique_ptr<sandbox::InstanceCgroup> cg,
                        TakeCgroup(*spec, options, /*zygote=*/false, zygote->Group()));
  FAAS_ASSIGN_OR_RETURN(pid_t ns_pid, zygote->Fork(e.theirs.Get(), e.log.Get(), deadline));
  e.theirs.Reset();
  if (::fcntl(e.ours.Get(), F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoError(errno, "fcntl(F_SETFL, O_NONBLOCK)");
  }
  // Who the child is comes from the kernel, not from the zygote: the pid stamped on its first
  // frame. Then pin it with a pidfd and check it is this function's process (uid) and the one
  // the zygote forked (its pid in the namespace), still alive after the check and after the move.
  // A recycled pid could make us move a stranger only inside the few µs between the last check
  // and the cgroup.procs write, and only if the child died and its pid was reused in them
  // (docs/design/0003-zygote.md).
  auto sender = sandbox::PeekSenderPid(e.ours.Get(), deadline);
  if (!sender.ok()) {
    // The child is somewhere in the zygote's namespace, unidentified and unmoved: retire the
    // zygote, whose exit ends the namespace and the child with it.
    zygote->Abandon();
    char said[512];
    ssize_t n = ::pread(e.log.Get(), said, sizeof said, 0);  // the child's last words, if any
    return UnavailableError(
        "the forked instance sent no first frame" +
        (n > 0 ? " (" + std::string(said, static_cast<std::size_t>(n)) + ")" : std::string()) +
        ": " + sender.status().message());
  }
  const pid_t host_pid = *sender;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, host_pid, 0)));
  if (!pidfd.Valid()) {
    return ErrnoError(errno, "pidfd_open", "forked instance " + std::to_string(host_pid));
  }
  std::string status = ProcStatus(host_pid);
  auto kill = [&] { ::syscall(SYS_pidfd_send_signal, pidfd.Get(), SIGKILL, nullptr, 0); };
  // NSpid of an instance: its host pid, its pid in the zygote's namespace (what the zygote
  // reported), and 1 in the namespace of its own (docs/design/0008).
  if (StatusField(status, "Uid", false) != std::to_string(RunAs(*spec)) ||
      status.find("\nNSpid:\t" + std::to_string(host_pid) + "\t" + std::to_string(ns_pid) +
                  "\t1\n") == std::string::npos ||
      PidfdExited(pidfd.Get())) {
    kill();
    zygote->Abandon();
    return UnavailableError("the forked instance " + std::to_string(host_pid) +
                            " is not the zygote's child " + std::to_string(ns_pid));
  }
  if (cg) {
    Status moved = cg->Move(host_pid);
    if (!moved.ok() || PidfdExited(pidfd.Get())) {
      kill();
      return UnavailableError("cannot move the forked instance into its cgroup: " +
                              (moved.ok() ? std::string("it exited") : moved.message()));
    }
  }
  // The zygote runs SCHED_OTHER; its instances SCHED_BATCH (instance_sched_batch). Set from
  // here, so the sandbox's filters need not allow sched_setscheduler; the instance is still
  // single-threaded (its first frame came before any function code of its own ran). The same
  // recycled-pid window as the move above, and at worst a stranger would run SCHED_BATCH.
  sched_param none{};
  if (options.instance_sched_batch && ::sched_setscheduler(host_pid, SCHED_BATCH, &none) != 0) {
    int err = errno;
    kill();
    return ErrnoError(err, "sched_setscheduler(SCHED_BATCH)",
                      "forked instance " + std::to_string(host_pid));
  }
  // A weak reference: a parked process must not keep its zygote alive (the zygote owns it);
  // a handed-over one holds the zygote in zygote_.
  WorkerProcess process = WorkerProcess::Adopt(
      host_pid, std::move(pidfd),
      [z = std::weak_ptr<Zygote>(zygote), ns_pid](Clock::time_point until) {
        std::shared_ptr<Zygote> live = z.lock();
        if (live == nullptr) {
          return std::optional<ExitInfo>();  // the zygote is gone, and the namespace with it
        }
        return live->ExitOf(ns_pid, until);
      });
  timings->spawn = Clock::now() - t0;
  std::unique_ptr<InstanceProcess> inst(new InstanceProcess(
      std::move(spec), std::move(cg), std::move(process), std::move(e.ours), std::move(e.log)));
  if (!park) {
    inst->zygote_ = zygote;
  }
  FAAS_RETURN_IF_ERROR(inst->AwaitReady(deadline, options.init_timeout, timings,
                                        /*spawned=*/false));
  return inst;
}

std::unique_ptr<InstanceProcess> InstanceProcess::TakeParked(const std::shared_ptr<Zygote>& zygote,
                                                             StartTimings* timings) {
  const auto t0 = Clock::now();
  std::unique_ptr<InstanceProcess> parked = zygote->TryTakeParked();
  if (parked != nullptr) {
    parked->zygote_ = zygote;
    timings->spawn = Clock::now() - t0;
  }
  return parked;
}

// An outbound worker's first frame says its network namespace exists: attach slirp4netns to it
// (faasd's own process, owned by this instance) and send the byte the worker waits for. Until
// then the worker has run no function code.
Status InstanceProcess::AttachNetwork(const sandbox::EgressPolicy& egress,
                                      Clock::time_point deadline) {
  if (sender_pid_ <= 0) {
    return UnavailableError("the outbound worker's first frame carried no sender pid");
  }
  FAAS_ASSIGN_OR_RETURN(sandbox::Slirp slirp,
                        sandbox::Slirp::Start(egress.slirp_path, sender_pid_, deadline));
  slirp_ = std::make_unique<sandbox::Slirp>(std::move(slirp));
  // One byte, not a frame: the worker reads exactly one (a fresh socket always has room).
  if (::send(channel_.Get(), "N", 1, MSG_NOSIGNAL) != 1) {
    return ErrnoError(errno, "send", "the outbound worker's go-ahead");
  }
  return OkStatus();
}

// The function's environment, the answer to the worker's WorkerJailed (its first frame read),
// applied once it is jailed (WorkerEnv): it is exec'd with an empty one.
Status InstanceProcess::SendEnvironment(Clock::time_point deadline) {
  v1::WorkerEnv env;
  for (const auto& [name, value] : spec_->config.env) {
    auto* var = env.add_vars();
    var->set_name(name);
    var->set_value(value);
  }
  std::string frame(sandbox::kFrameHeaderBytes, '\0');
  env.AppendToString(&frame);
  return sandbox::WriteFramed(channel_.Get(), &frame, deadline);
}

Status InstanceProcess::AwaitReady(Clock::time_point deadline, std::chrono::milliseconds budget,
                                   StartTimings* timings, bool spawned,
                                   const sandbox::EgressPolicy* egress) {
  // A ready frame is a few bytes (its error is cut to 4 KiB below): a length announced beyond
  // 64 KiB is a protocol violation, not an allocation (faas_init can write to the channel).
  // So are the frames before it.
  constexpr std::size_t kMaxReadyFrame = 64u << 10;
  // A spawned worker, before WorkerReady: [NetworkPending (outbound only)], then WorkerJailed,
  // each once and in that order, all before any function code runs (it waits for our answer).
  bool network_pending = egress != nullptr;
  bool jail_pending = spawned;
  std::chrono::nanoseconds jailed_cpu{0};
  auto frame = sandbox::ReadFrame(channel_.Get(), kMaxReadyFrame, deadline);
  while (frame.ok() && (network_pending || jail_pending)) {
    v1::WorkerResponse first;
    if (!first.ParseFromString(*frame)) {
      break;  // ParseWorkerReady below says what is wrong
    }
    if (network_pending && first.has_network_pending()) {
      network_pending = false;
      Status attached = AttachNetwork(*egress, deadline);
      if (!attached.ok()) {
        Bury("no network");
        return attached;
      }
    } else if (jail_pending && first.has_jailed()) {
      network_pending = jail_pending = false;
      // Everything so far (exec, the jail) is the platform's; from here it is the function's.
      jailed_cpu = Cpu();
      if (Status sent = SendEnvironment(deadline); !sent.ok()) {
        return UnavailableError("cannot send the worker its environment: " + Bury(sent.message()));
      }
    } else {
      break;
    }
    frame = sandbox::ReadFrame(channel_.Get(), kMaxReadyFrame, deadline);
  }
  if (!frame.ok()) {
    if (frame.status().code() == StatusCode::kDeadlineExceeded) {
      Bury("init");
      return DeadlineExceededError("the library did not finish loading and faas_init within " +
                                   FormatDuration(budget));
    }
    std::string why = Bury(frame.status().message());
    std::string logs = ReadLogs(2048);
    return FailedPreconditionError("worker " + why + " while loading the library" +
                                   (logs.empty() ? "" : "; stderr: " + logs));
  }
  v1::WorkerResponse msg;
  if (jail_pending || !ParseWorkerReady(*frame, &msg)) {
    Bury("protocol violation");
    return FailedPreconditionError("protocol violation: expected a ready frame from the worker");
  }
  const v1::WorkerReady& ready = msg.ready();
  timings->load = std::chrono::nanoseconds(std::min<uint64_t>(ready.load_ns(), INT64_MAX));
  timings->init = std::chrono::nanoseconds(std::min<uint64_t>(ready.init_ns(), INT64_MAX));
  if (!ready.ok()) {
    std::string logs = ReadLogs(2048);
    Bury("init failed");
    return FailedPreconditionError(ready.error().substr(0, 4096) +
                                   (logs.empty() ? "" : "; stderr: " + logs));
  }
  // Loading and faas_init (spawned workers only; a forked instance starts initialised) are the
  // function's; the rest of the start is the platform's (docs/metering.md).
  account_.Ready(Cpu(), spawned ? std::optional(jailed_cpu) : std::nullopt);
  return OkStatus();
}

void InstanceProcess::KillAll() {
  process_.Kill();
  if (cgroup_) {
    Status s = cgroup_->KillAll();
    if (!s.ok()) {
      static auto log = log::Get("scheduler");
      FAAS_LOG(log, err, "instance.kill_failed", {"pid", process_.pid()}, {"error", s.message()});
    }
  }
}

std::chrono::nanoseconds InstanceProcess::Cpu() const {
  if (cgroup_) {
    auto cpu = cgroup_->CpuUsage();
    return cpu.ok() ? *cpu : std::chrono::nanoseconds(0);
  }
  return CpuOf(process_.pid());
}

std::string InstanceProcess::Bury(std::string_view what, ExitInfo* exit) {
  MarkDead();
  ExitInfo info;
  ScopeExit report([&] {
    if (exit != nullptr) {
      *exit = info;
    }
  });
  // Give a worker that is already on its way out a moment to finish, so we report its own exit
  // status (e.g. SIGSEGV) rather than our SIGKILL.
  if (!process_.WaitFor(std::chrono::milliseconds(50), &info)) {
    process_.Kill();
    info = process_.Wait();
    return std::string(what) + " (worker killed)";
  }
  return info.Describe();
}

std::string InstanceProcess::ReadLogs(std::size_t cap, uint64_t from, uint64_t until,
                                      uint64_t* end) {
  // The size from lseek(SEEK_END), which costs half an fstat here (0.12 against 0.26-0.32 µs,
  // design 0015). It moves the file position the worker's stdout and stderr share with this fd,
  // which their writes ignore: O_APPEND is on the shared open file description.
  const off_t size = ::lseek(log_.Get(), 0, SEEK_END);
  log_empty_ = size <= 0;
  // Clamped to the file, and never ending before `from` (a worker's log_end can lie).
  const uint64_t file = size > 0 ? static_cast<uint64_t>(size) : 0;
  const uint64_t start = std::min(from, file);
  const uint64_t stop = std::clamp(until, start, file);
  if (end != nullptr) {
    *end = stop;
  }
  if (stop == start) {
    return {};
  }
  const std::size_t length = static_cast<std::size_t>(stop - start);
  std::string out(std::min(length, cap), '\0');
  ssize_t n = ::pread(log_.Get(), out.data(), out.size(), static_cast<off_t>(start));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (length > cap) {
    out += "\n[faas: log truncated, " + std::to_string(length - cap) + " bytes dropped]\n";
  }
  return out;
}

InstanceProcess::~InstanceProcess() {
  // Closing the channel asks a healthy worker to exit; the kill makes sure it does. The cgroup
  // (destroyed after this body) then kills anything the function left behind and is removed.
  channel_.Reset();
  process_.Kill();
  process_.Wait();
}

bool InstanceProcess::Exited() {
  ExitInfo info;
  return process_.WaitFor(std::chrono::milliseconds(0), &info);
}

void InstanceProcess::ClearLogs() {
  if (!log_empty_ && ::ftruncate(log_.Get(), 0) != 0) {
    // Not fatal: the log of this invocation would include the previous one's tail.
  }
  log_empty_ = false;
}

}  // namespace faas::scheduler
