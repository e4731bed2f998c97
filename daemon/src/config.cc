#include <iostream>

#include <CLI/CLI.hpp>

#include "faas/base/time.h"
#include "faas/daemon/daemon.h"

namespace faas::daemon {
namespace {

// A duration option: "30s", "250ms"; errors name the flag and the value.
CLI::Option* AddDuration(CLI::App& app, const std::string& flag, std::chrono::milliseconds* out,
                         const std::string& help, const std::string& env) {
  return app
      .add_option_function<std::string>(
          flag,
          [out, flag](const std::string& v) {
            auto d = ParseDuration(v);
            if (!d.ok()) {
              throw CLI::ValidationError(flag, d.status().message());
            }
            *out = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
          },
          help + " (default " + FormatDuration(*out) + ")")
      ->envname(env);
}

}  // namespace

int ParseDaemonFlags(int argc, char** argv, DaemonConfig* c) {
  CLI::App app("faasd: the faas daemon (gateway, control API, scheduler)", "faasd");
  app.set_version_flag("--version", "faasd 0.1.0");
  app.set_config("--config", "", "config file (INI/TOML: key = value, same names as the flags)");
  app.add_option("--http", c->http, "HTTP gateway address host:port (port 0 = any free port)")
      ->envname("FAAS_HTTP")
      ->capture_default_str();
  app.add_option("--grpc", c->grpc, "control API address host:port")
      ->envname("FAAS_GRPC")
      ->capture_default_str();
  app.add_option("--data-dir", c->data_dir, "where functions, versions and artifacts live")
      ->envname("FAAS_DATA_DIR")
      ->capture_default_str();
  app.add_option("--ready-file", c->ready_file,
                 "write the bound addresses as JSON here once ready (for scripts and tests)")
      ->envname("FAAS_READY_FILE");
  app.add_option("--worker", c->worker_path, "faas-worker binary (default: next to faasd)")
      ->envname("FAAS_WORKER");
  app.add_option("--log-level", c->log_level, "log levels, e.g. info or info,scheduler=debug")
      ->envname("FAAS_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--price-per-cpu-ms", c->price_per_cpu_ms,
                 "price of one billed CPU millisecond per 128 MiB memory tier, in micro-units")
      ->envname("FAAS_PRICE_PER_CPU_MS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--price-per-request", c->price_per_request,
                 "price of one invocation, in micro-units")
      ->envname("FAAS_PRICE_PER_REQUEST")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--currency-unit", c->currency_unit, "what one micro-unit of money is called")
      ->envname("FAAS_CURRENCY_UNIT")
      ->capture_default_str();
  app.add_flag("--unsafe-no-ledger", c->unsafe_no_ledger,
               "benchmarks only: do not record or bill invocations (measures metering overhead)");
  app.add_option("--cgroup-mode", c->cgroup_mode,
                 "cgroup layout: auto (detect), v1, or v2")
      ->envname("FAAS_CGROUP_MODE")
      ->check(CLI::IsMember({"auto", "v1", "v2"}))
      ->capture_default_str();
  app.add_option("--cgroup-v2-mount", c->cgroup_v2_mount, "where the cgroup2 hierarchy is mounted")
      ->envname("FAAS_CGROUP_V2_MOUNT")
      ->capture_default_str();
  AddDuration(app, "--shutdown-grace", &c->shutdown_grace,
              "on SIGTERM, how long in-flight invocations may finish", "FAAS_SHUTDOWN_GRACE");
  AddDuration(app, "--init-timeout", &c->init_timeout,
              "how long a new instance may take to load and run faas_init", "FAAS_INIT_TIMEOUT");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return -1;
}

}  // namespace faas::daemon
