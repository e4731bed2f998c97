// faasd lifecycle: open the store, start the scheduler, serve HTTP and gRPC, and on SIGTERM drain
// (stop accepting, let in-flight invocations finish within the grace period, stop workers).
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include <grpcpp/grpcpp.h>

#include "control_service.h"
#include "faas/base/log.h"
#include "faas/base/unique_fd.h"
#include "faas/daemon/daemon.h"
#include "faas/gateway/gateway.h"
#include "faas/gateway/http_server.h"
#include "faas/sandbox/cgroup.h"

namespace faas::daemon {
namespace {

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("address \"" + addr + "\" must be host:port");
  }
  std::string port_s = addr.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_s.c_str(), &end, 10);
  if (port_s.empty() || *end != '\0' || port < 0 || port > 65535) {
    return InvalidArgumentError("address \"" + addr + "\": bad port \"" + port_s + "\"");
  }
  return std::make_pair(addr.substr(0, colon), static_cast<uint16_t>(port));
}

std::string DefaultWorkerPath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) {
    return "faas-worker";
  }
  std::string self(buf, static_cast<std::size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "faas-worker";
}

}  // namespace

int RunDaemon(const DaemonConfig& config) {
  if (!log::SetLevels(config.log_level)) {
    std::fprintf(stderr, "faasd: bad --log-level \"%s\"\n", config.log_level.c_str());
    return 2;
  }
  auto log = log::Get("faasd");
  // Signals are taken synchronously by this thread (sigwait); every thread started later
  // inherits the mask. A dead peer socket is an EPIPE error, never a SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto http_addr = SplitHostPort(config.http);
  auto grpc_addr = SplitHostPort(config.grpc);
  if (!http_addr.ok() || !grpc_addr.ok()) {
    FAAS_LOG(log, err, "faasd.bad_address",
             {"error", (http_addr.ok() ? grpc_addr.status() : http_addr.status()).message()});
    return 2;
  }
  std::string worker = config.worker_path.empty() ? DefaultWorkerPath() : config.worker_path;
  if (::access(worker.c_str(), X_OK) != 0) {
    FAAS_LOG(log, err, "faasd.no_worker", {"path", worker},
             {"hint", "build faas-worker or pass --worker PATH"});
    return 1;
  }
  auto registry = store::Registry::Open(config.data_dir);
  if (!registry.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"dir", config.data_dir},
             {"error", registry.status().message()});
    return 1;
  }
  auto ledger = store::Ledger::Open(config.data_dir);
  if (!ledger.ok()) {
    FAAS_LOG(log, err, "faasd.ledger_failed", {"dir", config.data_dir},
             {"error", ledger.status().message()});
    return 1;
  }
  metering::Metrics metrics;
  sandbox::CgroupOptions cg_opts;
  if (config.cgroup_mode != "auto") {
    cg_opts.mode = config.cgroup_mode == "v2" ? sandbox::CgroupMode::kV2 : sandbox::CgroupMode::kV1;
  }
  cg_opts.v2_mount = config.cgroup_v2_mount;
  auto cgroups = sandbox::CgroupRoot::Create(cg_opts);
  if (!cgroups.ok()) {
    FAAS_LOG(log, err, "faasd.cgroups_failed", {"error", cgroups.status().message()},
             {"hint", "faasd needs root and the memory, pids, cpu and cpuacct controllers"});
    return 1;
  }
  if (config.unsafe_no_ledger) {
    FAAS_LOG(log, warn, "faasd.no_ledger", {"why", "--unsafe-no-ledger: nothing is recorded or billed"});
  }
  FAAS_LOG(log, info, "faasd.cgroups",
           {"mode", (*cgroups)->mode() == sandbox::CgroupMode::kV2 ? "v2" : "v1"},
           {"limits", (*cgroups)->EnforcesLimits()}, {"dir", (*cgroups)->Dirs().front()});
  scheduler::Scheduler sched({.worker_path = worker,
                              .init_timeout = config.init_timeout,
                              .cgroups = cgroups->get(),
                              .ledger = config.unsafe_no_ledger ? nullptr : ledger->get(),
                              .metrics = &metrics,
                              .prices = {.per_cpu_ms_micros = config.price_per_cpu_ms,
                                         .per_request_micros = config.price_per_request,
                                         .unit = config.currency_unit}});
  metrics.SetInstanceSource([&sched] {
    std::vector<metering::InstanceGauge> out;
    for (const auto& [name, st] : sched.AllStats()) {
      out.push_back({name, st.idle, st.busy, st.waiting});
    }
    return out;
  });
  auto functions = (*registry)->ListFunctions();
  if (!functions.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", functions.status().message()});
    return 1;
  }
  for (const auto& rec : *functions) {
    sched.SetFunction(SpecFor(**registry, rec.latest));
  }

  gateway::Gateway gw(&sched, &metrics);
  auto routes = (*registry)->ListRoutes();
  if (!routes.ok()) {
    FAAS_LOG(log, err, "faasd.store_failed", {"error", routes.status().message()});
    return 1;
  }
  gw.SetRoutes(BuildRouter(*routes));
  gateway::ServerOptions http_opts;
  http_opts.host = http_addr->first;
  http_opts.port = http_addr->second;
  gateway::HttpServer http(http_opts, [&gw](gateway::HttpRequest& q, gateway::HttpResponse& r) {
    gw.Handle(q, r);
  });
  auto http_port = http.Start();
  if (!http_port.ok()) {
    FAAS_LOG(log, err, "faasd.http_failed", {"error", http_port.status().message()});
    return 1;
  }

  ControlService control(
      registry->get(), &sched, ledger->get(), config.currency_unit,
      [&gw](std::shared_ptr<const gateway::Router> r) { gw.SetRoutes(std::move(r)); });
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.grpc, grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&control);
  builder.SetMaxReceiveMessageSize(8 << 20);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    FAAS_LOG(log, err, "faasd.grpc_failed", {"addr", config.grpc},
             {"error", "cannot listen (address in use or invalid)"});
    http.Stop();
    return 1;
  }

  std::string http_bound = http_addr->first + ":" + std::to_string(*http_port);
  std::string grpc_bound = grpc_addr->first + ":" + std::to_string(grpc_port);
  gw.SetReady(true);
  if (!config.ready_file.empty()) {
    std::string json = "{\"http\":\"" + http_bound + "\",\"grpc\":\"" + grpc_bound +
                       "\",\"pid\":" + std::to_string(::getpid()) + "}\n";
    Status s = WriteFileAtomic(config.ready_file, json);
    if (!s.ok()) {
      FAAS_LOG(log, warn, "faasd.ready_file_failed", {"error", s.message()});
    }
  }
  FAAS_LOG(log, info, "faasd.ready", {"http", http_bound}, {"grpc", grpc_bound},
           {"data_dir", config.data_dir}, {"functions", functions->size()},
           {"routes", routes->size()}, {"pid", ::getpid()});

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  FAAS_LOG(log, info, "faasd.draining", {"signal", sig},
           {"grace_ms", static_cast<int64_t>(config.shutdown_grace.count())});
  gw.SetReady(false);
  auto deadline = std::chrono::system_clock::now() + config.shutdown_grace;
  http.Drain(config.shutdown_grace);
  grpc_server->Shutdown(deadline);
  sched.Shutdown(config.shutdown_grace);
  if (!config.ready_file.empty()) {
    ::unlink(config.ready_file.c_str());
  }
  FAAS_LOG(log, info, "faasd.stopped");
  return 0;
}

}  // namespace faas::daemon
