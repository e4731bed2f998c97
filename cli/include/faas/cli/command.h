// faasctl command line: parsing argv into one command struct (docs/cli.md).
//
//   FAAS_ASSIGN_OR_RETURN(faas::cli::Invocation inv, faas::cli::Parse({"deploy", "hello",
//   "h.so"})); const auto& deploy = std::get<faas::cli::DeployCommand>(inv.command);
//
// Parse() checks every flag value where it enters (durations, K=V pairs, enums) and answers
// kInvalidArgument naming the flag and the value; Run() turns that into exit status 2.
// No gRPC or protobuf types here: this header is cheap to include.
#pragma once

#include <chrono>
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "faas/base/status.h"

namespace faas::cli {

enum class OutputFormat { kTable, kJson };

// Options valid before or after any subcommand.
struct GlobalOptions {
  std::string server = "127.0.0.1:9090";  // --server, env FAAS_SERVER
  std::string token;                      // --token, env FAAS_TOKEN; empty = no authorization
  // --tls-ca FILE, env FAAS_TLS_CA: the control API is TLS, its certificate checked against this
  // CA (and --server's host against its SANs). Empty = plaintext (faasd on loopback).
  std::string tls_ca;
  std::string tls_ca_pem;                         // the file's contents, read by Parse
  OutputFormat output = OutputFormat::kTable;     // -o table|json
  std::chrono::milliseconds rpc_timeout{60'000};  // --rpc-timeout
};

// deploy flags; unset optionals leave the server's default (docs/cli.md).
struct DeployOptions {
  std::optional<uint64_t> memory_mb;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::chrono::milliseconds> cpu_limit;
  std::optional<uint32_t> min_warm;
  std::optional<uint32_t> max_instances;
  std::optional<std::chrono::milliseconds> idle_ttl;
  std::string isolation;  // "" (default), "warm" or "fresh"
  std::string network;    // "" (default), "none" or "outbound"
  std::map<std::string, std::string> env;
  bool is_public = false;
  bool idempotent = false;  // --idempotent: a call lost with its node may run again elsewhere
  std::optional<uint64_t> max_body_bytes;
  std::optional<uint32_t> queue_depth;
  std::optional<std::chrono::milliseconds> queue_timeout;
  std::optional<double> rate_per_sec;  // --rate, invocations per second over all callers
  std::optional<uint32_t> burst;       // --burst, >= 1; only with --rate
};

struct DeployCommand {
  std::string name;
  std::string library_path;
  DeployOptions options;
};
struct ListCommand {};
struct DescribeCommand {
  std::string name;
};
struct DeleteCommand {
  std::string name;
};
struct VersionsCommand {
  std::string name;
};
struct RollbackCommand {
  std::string name;
  uint32_t version = 0;
};

// Where `invoke --data` takes the request body from.
struct DataSource {
  enum class Kind { kNone, kLiteral, kFile, kStdin };
  Kind kind = Kind::kNone;
  std::string value;  // kLiteral: the body; kFile: the path (without '@')
};
// "@path" reads a file, "-" reads stdin, anything else is the body itself.
DataSource ParseDataSource(const std::string& arg);
// Reads the body. A file that cannot be read is kInvalidArgument naming `what` and the
// argument, e.g. `--data "@path": ...` or `DATA "@path": ...`.
Result<std::string> ReadData(const DataSource& source, std::istream& in,
                             std::string_view what = "--data");

struct InvokeCommand {
  std::string name;
  DataSource data;
  std::string method;  // "" = server default (POST)
  std::string path;
  std::string query;
  bool verbose = false;
  bool fresh = false;        // force a cold start on a new instance, discarded after
  bool async = false;        // queue it (like POST /async-function/NAME) and print only its id
  std::string callback_url;  // --callback-url, with --async only: http(s) URL for the result
};
// bill: CPU-ms billing totals (docs/metering.md), optionally grouped.
struct BillCommand {
  std::string function;       // "" = every function
  int64_t since_unix_ms = 0;  // 0 = from the beginning
  int64_t until_unix_ms = 0;  // 0 = until now
  std::string by;             // "" (one total), "function", "day" or "hour"
};
// invocations: the ledger's latest rows for one function.
struct InvocationsCommand {
  std::string name;
  uint32_t last = 20;   // 1..1000
  std::string outcome;  // filter, e.g. "function_timeout"; "" = all
};
// logs: captured stdout/stderr of a function's invocations (newest last).
struct LogsCommand {
  std::string name;
  std::string invocation;  // only this invocation; "" = all
  uint32_t last = 20;      // 1..1000
  bool follow = false;     // keep printing new entries until interrupted
};
// prewarm: start `count` instances of a function now (docs/cli.md).
struct PrewarmCommand {
  std::string name;
  uint32_t count = 0;  // 1..1000
};
// route add|list|delete: custom HTTP routes (docs/http-api.md). The method is upper-cased and
// checked here (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY); faasd checks the rest.
struct RouteAddCommand {
  std::string method;
  std::string path;  // template, e.g. /users/{id}
  std::string function;
  std::string host;  // --host; "" = every host
};
struct RouteListCommand {};
struct RouteDeleteCommand {
  std::string method;
  std::string path;
  std::string host;  // --host; must match the route's host ("" for a host-less route)
};
// key create|list|revoke: API keys for the gateway (docs/http-api.md). Only `key create` ever
// shows a key's secret, once; faasd keeps a hash.
struct KeyCreateCommand {
  std::string tenant;
  std::vector<std::string> functions;  // --functions a,b; each [a-z][a-z0-9-]{0,62}; empty = all
  std::optional<double> rate_per_sec;  // --rate; unset = unlimited
  std::optional<uint32_t> burst;       // --burst, >= 1; only with --rate
};
struct KeyListCommand {};
struct KeyRevokeCommand {
  std::string id;
};

// trigger add|list|pause|resume|delete: queue triggers (docs/triggers.md). Parse() checks that a
// redis:// source has --stream and no --queue, and `embedded` the reverse; unset optionals
// leave faasd's defaults.
struct TriggerAddCommand {
  std::string name;                                      // [a-z][a-z0-9-]{0,62}
  std::string function;                                  // [a-z][a-z0-9-]{0,62}
  std::string source;                                    // "embedded" or "redis://HOST:PORT[/DB]"
  std::string stream;                                    // redis only
  std::string group;                                     // redis only; "" = faasd's default
  std::string queue;                                     // embedded only
  std::optional<uint32_t> batch;                         // >= 1
  std::optional<uint32_t> concurrency;                   // 1..1024
  std::optional<uint32_t> max_attempts;                  // 1..100
  std::optional<std::chrono::milliseconds> backoff_min;  // --backoff MIN..MAX, MIN <= MAX
  std::optional<std::chrono::milliseconds> backoff_max;
  std::string dlq;  // "" = faasd's default ("<stream>.dlq" / "<queue>.dlq")
  std::optional<std::chrono::milliseconds> visibility_timeout;
};
struct TriggerListCommand {};
struct TriggerPauseCommand {
  std::string name;
};
struct TriggerResumeCommand {
  std::string name;
};
struct TriggerDeleteCommand {
  std::string name;
};

// queue publish|stats|dlq: the embedded queue. Queue names are 1..200 bytes.
struct QueuePublishCommand {
  std::string queue;
  DataSource data;  // DATA: the text itself, @file or - for stdin
};
// invocation ID: status and stored result of one async invocation (any tenant's).
struct AsyncStatusCommand {
  std::string id;
};
struct QueueStatsCommand {
  std::string queue;
};
// Lists (or with --replay, moves back) the dead letters of `dlq`, which is
// DeadLetterQueueName(queue).
struct QueueDlqCommand {
  std::string queue;   // as given
  std::string dlq;     // the dead-letter queue read
  uint32_t limit = 0;  // --limit, 1..1000; 0 = faasd's default (100)
  bool replay = false;
};
// "emails" → "emails.dlq"; a name that already ends in ".dlq" is returned unchanged.
std::string DeadLetterQueueName(std::string_view queue);

// node list (also `nodes`) | node drain ID: a cluster's worker nodes (docs/cli.md).
struct NodeListCommand {};
struct NodeDrainCommand {
  std::string id;
};

struct VersionCommand {};
// -h/--help anywhere: print `text` to stdout and exit 0.
struct HelpCommand {
  std::string text;
};

// bench cold-start|warm: N invocations with per-phase percentiles and, in the same run, the
// baseline of a bare fork()+_exit()+waitpid() of a small separate process (faas-fork-baseline).
struct BenchCommand {
  bool cold = true;  // cold-start: every invocation on a new instance (fresh)
  std::string name;
  uint32_t n = 100;          // 1..100000
  uint32_t concurrency = 1;  // warm only: parallel clients, 1..256
  // cold-start --after-idle DUR: each round waits until the function has scaled to zero, then
  // DUR more, then calls it (not fresh: the cold start users meet); the baseline forks after
  // the same pause.
  std::optional<std::chrono::milliseconds> after_idle;
};

using Command =
    std::variant<DeployCommand, ListCommand, DescribeCommand, DeleteCommand, VersionsCommand,
                 RollbackCommand, InvokeCommand, BillCommand, InvocationsCommand, LogsCommand,
                 PrewarmCommand, RouteAddCommand, RouteListCommand, RouteDeleteCommand,
                 KeyCreateCommand, KeyListCommand, KeyRevokeCommand, TriggerAddCommand,
                 TriggerListCommand, TriggerPauseCommand, TriggerResumeCommand,
                 TriggerDeleteCommand, QueuePublishCommand, QueueStatsCommand, QueueDlqCommand,
                 AsyncStatusCommand, BenchCommand, NodeListCommand, NodeDrainCommand,
                 VersionCommand, HelpCommand>;

struct Invocation {
  GlobalOptions global;
  Command command;
};

// Parses arguments (without argv[0]). Environment FAAS_SERVER and FAAS_TOKEN are read here.
// Errors are kInvalidArgument with CLI11's message or ours, e.g.
// `--timeout "2x": duration "2x": unknown unit "x" (use ms, s, m or h)`.
Result<Invocation> Parse(const std::vector<std::string>& args);

// A `bill --since/--until` value as Unix milliseconds: a UTC date or date-time
// ("2026-11-29", "2026-11-29T13:00", "2026-11-29T13:00:00Z", "2026-11-29T13:00:00.250+02:00";
// no zone means UTC), or a duration back from `now_unix_ms` ("30m", "1h", "7d"; the units of
// ParseDuration plus d, and a unit is required). kInvalidArgument says why, e.g.
// `time "2026-13-01": month must be 01..12`; times before 1970-01-01T00:00:00.001Z are refused.
Result<int64_t> ParseTimeArg(std::string_view text, int64_t now_unix_ms);

// A --rate value as invocations per second: "100/s", "6000/m", "10/h", or a bare number per
// second ("100", "2.5"). The number is decimal digits with an optional fraction (no sign or
// exponent). kInvalidArgument with the reason only (the caller names the flag and value), e.g.
// `unknown unit "d" (use /s, /m or /h)`; 0 is refused (leaving the flag out means no limit), as
// is anything above 1000000/s.
Result<double> ParseRate(std::string_view text);

// Parses "K=V" pairs (K non-empty, each K once) for --env. All problems are reported at once.
Result<std::map<std::string, std::string>> ParseEnv(const std::vector<std::string>& pairs);

}  // namespace faas::cli
