// The PostgreSQL schema of every store part, as versioned migrations (pg.h Migrate).
#include <iterator>

#include "pg.h"

namespace faas::store::pg {
namespace {

// Each entry is one migration, run in its own transaction: kMigrations[i] takes the schema from
// version i to i + 1. Append only; never edit a migration that has shipped.
// Text columns that are keys or sort orders use the "C" collation, so ordering and equality are
// bytewise, as in SQLite, whatever locale the database was created with.
// versions.function cascades (deleting a function deletes its versions); function_uids and
// routes do not: a name keeps its uid, and a route outlives its function. artifacts holds the
// libraries by sha256; put_unix_ms is refreshed by every put and deploy, and only rows unused
// for kArtifactGraceMs are collected.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE functions (
  name            TEXT COLLATE "C" PRIMARY KEY,
  latest_version  BIGINT NOT NULL,
  created_unix_ms BIGINT NOT NULL,
  next_version    BIGINT NOT NULL
);
CREATE TABLE versions (
  function        TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version         BIGINT NOT NULL,
  content_hash    TEXT NOT NULL,
  artifact_sha256 TEXT COLLATE "C" NOT NULL,
  size_bytes      BIGINT NOT NULL,
  config_json     TEXT NOT NULL,
  created_unix_ms BIGINT NOT NULL,
  PRIMARY KEY (function, version)
);
CREATE INDEX versions_by_artifact ON versions (artifact_sha256);
CREATE TABLE function_uids (
  name            TEXT COLLATE "C" PRIMARY KEY,
  uid             BIGINT NOT NULL UNIQUE
);
CREATE TABLE routes (
  method          TEXT COLLATE "C" NOT NULL,
  path            TEXT COLLATE "C" NOT NULL,
  host            TEXT COLLATE "C" NOT NULL,
  function        TEXT COLLATE "C" NOT NULL,
  created_unix_ms BIGINT NOT NULL,
  PRIMARY KEY (method, path, host)
);
CREATE TABLE api_keys (
  id              TEXT COLLATE "C" PRIMARY KEY,
  tenant          TEXT NOT NULL,
  functions       TEXT NOT NULL,
  rate_per_sec    TEXT NOT NULL,
  burst           BIGINT NOT NULL,
  created_unix_ms BIGINT NOT NULL,
  revoked_unix_ms BIGINT NOT NULL,
  secret_sha256   TEXT NOT NULL
);
CREATE TABLE artifacts (
  sha256          TEXT COLLATE "C" PRIMARY KEY,
  size_bytes      BIGINT NOT NULL,
  bytes           BYTEA NOT NULL,
  put_unix_ms     BIGINT NOT NULL
);
)sql",
    // The node registry (nodes.h, pg_nodes.cc). Times are the server's (now()).
    R"sql(
CREATE TABLE nodes (
  id              TEXT COLLATE "C" PRIMARY KEY,
  address         TEXT NOT NULL,
  http_address    TEXT NOT NULL,
  capacity        DOUBLE PRECISION NOT NULL CHECK (capacity > 0),
  state           TEXT NOT NULL CHECK (state IN ('up', 'draining', 'dead')),
  heartbeat_at    TIMESTAMPTZ NOT NULL,
  epoch           BIGINT NOT NULL,
  load            DOUBLE PRECISION NOT NULL,
  registered_at   TIMESTAMPTZ NOT NULL
);
)sql",
    // The central ledger (docs/design/0020-central-ledger.md): one row per invocation id, shipped
    // by the nodes; not partitioned yet (the design note says why and how to later). Logs are
    // best effort and bounded per function, keyed by invocation id so a re-ship adds nothing.
    R"sql(
CREATE TABLE ledger_invocations (
  invocation_id     TEXT COLLATE "C" PRIMARY KEY,
  function          TEXT COLLATE "C" NOT NULL,
  version           BIGINT NOT NULL,
  trigger           TEXT NOT NULL,
  kind              TEXT NOT NULL,
  start_ms          BIGINT NOT NULL,
  wall_ns           BIGINT NOT NULL,
  cpu_ns            BIGINT NOT NULL,
  billed_ms         BIGINT NOT NULL,
  cost_micros       BIGINT NOT NULL,
  peak_memory_bytes BIGINT NOT NULL,
  cold_start        BOOLEAN NOT NULL,
  outcome           TEXT NOT NULL,
  error_code        TEXT NOT NULL,
  queue_ns BIGINT NOT NULL, spawn_ns BIGINT NOT NULL, load_ns BIGINT NOT NULL,
  init_ns BIGINT NOT NULL, exec_ns BIGINT NOT NULL,
  tenant            TEXT COLLATE "C" NOT NULL,
  queue             TEXT NOT NULL,
  message_id        TEXT NOT NULL,
  node              TEXT NOT NULL,
  shipped_unix_ms   BIGINT NOT NULL
);
CREATE INDEX ledger_invocations_by_function ON ledger_invocations (function, start_ms);
CREATE INDEX ledger_invocations_by_start ON ledger_invocations (start_ms);
CREATE TABLE ledger_logs (
  seq               BIGSERIAL PRIMARY KEY,
  invocation_id     TEXT COLLATE "C" NOT NULL UNIQUE,
  function          TEXT COLLATE "C" NOT NULL,
  start_ms          BIGINT NOT NULL,
  text              BYTEA NOT NULL
);
CREATE INDEX ledger_logs_by_function ON ledger_logs (function, seq);
)sql",
    // Secrets every process of a cluster shares (nodes.h NodeSecret): readable by whoever can
    // read this database.
    R"sql(
CREATE TABLE cluster_secrets (
  name            TEXT COLLATE "C" PRIMARY KEY,
  value           TEXT NOT NULL
);
)sql",
    // Small JSON definitions by kind and key (faas/store/settings.h): the queue triggers of a
    // cluster, which used to be a Redis hash (docs/design/0029-trigger-definitions.md).
    R"sql(
CREATE TABLE settings (
  kind            TEXT COLLATE "C" NOT NULL,
  key             TEXT COLLATE "C" NOT NULL,
  json            TEXT NOT NULL,
  updated_unix_ms BIGINT NOT NULL,
  PRIMARY KEY (kind, key)
);
)sql",
    // The web console's sign-in sessions (faas/store/sessions.h), shared by every gateway: the
    // SHA-256 of the cookie's random id (never the id itself), the session's CSRF token and its
    // expiry on the database's clock (docs/design/0026-console.md "Sessions across gateways").
    R"sql(
CREATE TABLE console_sessions (
  id_sha256       TEXT COLLATE "C" PRIMARY KEY,
  csrf            TEXT NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
)sql",
};

}  // namespace

int SchemaVersion() {
  return static_cast<int>(std::size(kMigrations));
}

const char* Migration(int i) {
  return kMigrations[i];
}

}  // namespace faas::store::pg
