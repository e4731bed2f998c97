// The central ledger in PostgreSQL (faas/store/central_ledger.h): idempotent batch inserts and the
// reads of the control API, with the SQLite ledger's semantics (ledger.cc).
// docs/design/0020-central-ledger.md explains the design.
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "faas/base/log.h"
#include "faas/base/time.h"
#include "faas/store/central_ledger.h"

#include "pg.h"

namespace faas::store {
namespace {

using pg::Exec;
using pg::Rows;

// A PostgreSQL array literal ("{...}") built element by element; text elements are quoted and
// escaped, so any value round-trips (an array is one parameter: a batch is one statement).
class ArrayLiteral {
 public:
  void Add(std::string_view text) {
    Sep();
    out_ += '"';
    for (char c : text) {
      if (c == '"' || c == '\\') {
        out_ += '\\';
      }
      out_ += c;
    }
    out_ += '"';
  }
  void Add(int64_t v) {
    Sep();
    out_ += std::to_string(v);
  }
  void Add(uint64_t v) { Add(static_cast<int64_t>(v)); }
  void Add(bool v) {
    Sep();
    out_ += v ? 't' : 'f';
  }
  std::string Done() const { return out_ + "}"; }

 private:
  void Sep() { out_ += out_.size() > 1 ? "," : ""; }
  std::string out_ = "{";
};

#define FAAS_PG_LEDGER_COLUMNS                                                             \
  "invocation_id, function, version, trigger, kind, start_ms, wall_ns, cpu_ns, billed_ms," \
  " cost_micros, peak_memory_bytes, cold_start, outcome, error_code, queue_ns, spawn_ns,"  \
  " load_ns, init_ns, exec_ns, tenant, queue, message_id"

// One statement per batch: the columns as arrays, unnested into rows. A conflicting id is left
// alone (DO NOTHING); RETURNING names the rows that were new.
constexpr const char* kShipRows =
    "INSERT INTO ledger_invocations (" FAAS_PG_LEDGER_COLUMNS
    ", node, shipped_unix_ms) SELECT u.*, $23, $24::bigint FROM unnest($1::text[], $2::text[],"
    " $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],"
    " $9::bigint[], $10::bigint[], $11::bigint[], $12::boolean[], $13::text[], $14::text[],"
    " $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::text[],"
    " $21::text[], $22::text[]) AS u ON CONFLICT (invocation_id) DO NOTHING"
    " RETURNING invocation_id";

InvocationRecord ReadRecord(const Rows& r, int row) {
  InvocationRecord rec;
  rec.invocation_id = r.Text(row, 0);
  rec.function = r.Text(row, 1);
  rec.version = static_cast<uint32_t>(r.Int(row, 2));
  rec.trigger = r.Text(row, 3);
  rec.kind = r.Text(row, 4);
  rec.start_unix_ms = r.Int(row, 5);
  rec.wall_ns = static_cast<uint64_t>(r.Int(row, 6));
  rec.cpu_ns = static_cast<uint64_t>(r.Int(row, 7));
  rec.billed_ms = static_cast<uint64_t>(r.Int(row, 8));
  rec.cost_micros = r.Int(row, 9);
  rec.peak_memory_bytes = static_cast<uint64_t>(r.Int(row, 10));
  rec.cold_start = r.Text(row, 11) == "t";
  rec.outcome = r.Text(row, 12);
  rec.error_code = r.Text(row, 13);
  rec.queue_ns = static_cast<uint64_t>(r.Int(row, 14));
  rec.spawn_ns = static_cast<uint64_t>(r.Int(row, 15));
  rec.load_ns = static_cast<uint64_t>(r.Int(row, 16));
  rec.init_ns = static_cast<uint64_t>(r.Int(row, 17));
  rec.exec_ns = static_cast<uint64_t>(r.Int(row, 18));
  rec.tenant = r.Text(row, 19);
  rec.queue = r.Text(row, 20);
  rec.message_id = r.Text(row, 21);
  return rec;
}

// The fields that differ ("" when none): what a conflicting duplicate is logged with.
std::string Differences(const InvocationRecord& a, const InvocationRecord& b) {
  std::string out;
  auto cmp = [&out](const char* name, const auto& x, const auto& y) {
    if (x != y) {
      out += (out.empty() ? "" : ",") + std::string(name);
    }
  };
  cmp("function", a.function, b.function);
  cmp("version", a.version, b.version);
  cmp("trigger", a.trigger, b.trigger);
  cmp("kind", a.kind, b.kind);
  cmp("start", a.start_unix_ms, b.start_unix_ms);
  cmp("wall_ns", a.wall_ns, b.wall_ns);
  cmp("cpu_ns", a.cpu_ns, b.cpu_ns);
  cmp("billed_ms", a.billed_ms, b.billed_ms);
  cmp("cost_micros", a.cost_micros, b.cost_micros);
  cmp("peak_memory_bytes", a.peak_memory_bytes, b.peak_memory_bytes);
  cmp("cold_start", a.cold_start, b.cold_start);
  cmp("outcome", a.outcome, b.outcome);
  cmp("error_code", a.error_code, b.error_code);
  cmp("phases", std::tie(a.queue_ns, a.spawn_ns, a.load_ns, a.init_ns, a.exec_ns),
      std::tie(b.queue_ns, b.spawn_ns, b.load_ns, b.init_ns, b.exec_ns));
  cmp("tenant", a.tenant, b.tenant);
  cmp("queue", a.queue, b.queue);
  cmp("message_id", a.message_id, b.message_id);
  return out;
}

// Hex digits (encode(bytea, 'hex')) to bytes.
std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>((nibble(hex[i]) << 4) | nibble(hex[i + 1]));
  }
  return out;
}

}  // namespace

PgLedger::PgLedger(std::string url, std::string node)
    : url_(std::move(url)), node_(std::move(node)) {}

PgLedger::~PgLedger() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

Result<std::unique_ptr<PgLedger>> PgLedger::Open(const std::string& url, std::string node) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    return InvalidArgumentError("the central ledger needs a postgres:// or postgresql:// URI");
  }
  if (node.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node = host;
  }
  return std::unique_ptr<PgLedger>(new PgLedger(url, std::move(node)));
}

Status PgLedger::ConnectLocked() {
  const bool was_connected = conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
  FAAS_RETURN_IF_ERROR(pg::Connect(conn_, url_));
  if (!migrated_ || !was_connected) {
    // Also after a reconnect: the server may be a restored or new one.
    FAAS_RETURN_IF_ERROR(pg::Migrate(conn_));
    migrated_ = true;
  }
  return OkStatus();
}

Result<ShipResult> PgLedger::Ship(const std::vector<InvocationRecord>& rows,
                                  const std::vector<LogEntry>& logs) {
  ArrayLiteral cols[22];
  for (const InvocationRecord& r : rows) {
    cols[0].Add(r.invocation_id);
    cols[1].Add(r.function);
    cols[2].Add(int64_t{r.version});
    cols[3].Add(r.trigger);
    cols[4].Add(r.kind);
    cols[5].Add(r.start_unix_ms);
    cols[6].Add(r.wall_ns);
    cols[7].Add(r.cpu_ns);
    cols[8].Add(r.billed_ms);
    cols[9].Add(r.cost_micros);
    cols[10].Add(r.peak_memory_bytes);
    cols[11].Add(r.cold_start);
    cols[12].Add(r.outcome);
    cols[13].Add(r.error_code);
    cols[14].Add(r.queue_ns);
    cols[15].Add(r.spawn_ns);
    cols[16].Add(r.load_ns);
    cols[17].Add(r.init_ns);
    cols[18].Add(r.exec_ns);
    cols[19].Add(r.tenant);
    cols[20].Add(r.queue);
    cols[21].Add(r.message_id);
  }
  std::string a[22];
  for (int i = 0; i < 22; ++i) {
    a[i] = cols[i].Done();
  }
  std::unordered_map<std::string_view, const InvocationRecord*> by_id;
  for (const InvocationRecord& r : rows) {
    by_id.emplace(r.invocation_id, &r);
  }
  std::lock_guard lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  std::vector<std::pair<std::string, std::string>> conflicts;  // id, differing fields
  Result<ShipResult> shipped = pg::InTransaction(conn_, [&]() -> Result<ShipResult> {
    ShipResult out;
    conflicts.clear();
    if (!rows.empty()) {
      FAAS_ASSIGN_OR_RETURN(Rows inserted, Exec(conn_, kShipRows,
                                                {a[0],
                                                 a[1],
                                                 a[2],
                                                 a[3],
                                                 a[4],
                                                 a[5],
                                                 a[6],
                                                 a[7],
                                                 a[8],
                                                 a[9],
                                                 a[10],
                                                 a[11],
                                                 a[12],
                                                 a[13],
                                                 a[14],
                                                 a[15],
                                                 a[16],
                                                 a[17],
                                                 a[18],
                                                 a[19],
                                                 a[20],
                                                 a[21],
                                                 std::string_view(node_),
                                                 faas::UnixMillisNow()}));
      out.inserted = inserted.Size();
      if (out.inserted < rows.size()) {
        // Some ids were there already: a re-ship (same content) or a conflict (logged below).
        std::set<std::string> fresh;
        for (int i = 0; i < inserted.Count(); ++i) {
          fresh.insert(inserted.Text(i, 0));
        }
        ArrayLiteral old_ids;
        for (const InvocationRecord& r : rows) {
          if (!fresh.contains(r.invocation_id)) {
            old_ids.Add(r.invocation_id);
          }
        }
        FAAS_ASSIGN_OR_RETURN(Rows existing,
                              Exec(conn_,
                                   "SELECT " FAAS_PG_LEDGER_COLUMNS
                                   " FROM ledger_invocations WHERE invocation_id = ANY($1::text[])",
                                   {std::string_view(old_ids.Done())}));
        for (int i = 0; i < existing.Count(); ++i) {
          InvocationRecord central = ReadRecord(existing, i);
          auto it = by_id.find(central.invocation_id);
          std::string diff = it == by_id.end() ? "" : Differences(*it->second, central);
          if (diff.empty()) {
            ++out.duplicates;
          } else {
            ++out.conflicts;
            conflicts.emplace_back(central.invocation_id, std::move(diff));
          }
        }
      }
    }
    std::set<std::string> touched;
    for (const LogEntry& l : logs) {
      FAAS_RETURN_IF_ERROR(Exec(conn_,
                                "INSERT INTO ledger_logs (invocation_id, function, start_ms, text)"
                                " VALUES ($1, $2, $3::bigint, $4) ON CONFLICT (invocation_id)"
                                " DO NOTHING",
                                {std::string_view(l.invocation_id), std::string_view(l.function),
                                 l.start_unix_ms, pg::Bytes{l.text}})
                               .status());
      touched.insert(l.function);
    }
    for (const std::string& fn : touched) {  // keep each function's logs bounded
      FAAS_RETURN_IF_ERROR(Exec(conn_,
                                "DELETE FROM ledger_logs WHERE function = $1 AND seq <= (SELECT seq"
                                " FROM ledger_logs WHERE function = $1 ORDER BY seq DESC"
                                " OFFSET $2::bigint LIMIT 1)",
                                {std::string_view(fn), kMaxLogEntriesPerFunction})
                               .status());
    }
    return out;
  });
  for (const auto& [id, diff] : conflicts) {
    // An id reused with other content is a bug or tampering somewhere: the first row stays.
    static auto log = log::Get("ledger");
    FAAS_LOG(log, err, "ledger.ship_conflict", {"inv", id}, {"fields", diff},
             {"kept", "the central row"});
  }
  return shipped;
}

Status PgLedger::Sync() {
  return sync_hook_ ? sync_hook_() : OkStatus();
}

Result<std::vector<BillRow>> PgLedger::Bill(const BillQuery& q) {
  std::string key_expr;
  if (q.by.empty()) {
    key_expr = "''::text";
  } else if (q.by == "function") {
    key_expr = "function";
  } else if (q.by == "tenant") {
    key_expr = "tenant";
  } else if (q.by == "day") {
    key_expr = "to_char(to_timestamp(start_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
  } else if (q.by == "hour") {
    key_expr = "to_char(to_timestamp(start_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')";
  } else {
    return InvalidArgumentError("by \"" + q.by + "\": use function, tenant, day or hour");
  }
  // key_expr is one of the constants above, never user input. Sorted bytewise, as in SQLite.
  const std::string sql =
      "SELECT (" + key_expr +
      ") COLLATE \"C\", SUM(CASE WHEN kind = 'invocation' THEN 1 ELSE 0 END), SUM(cpu_ns),"
      " SUM(billed_ms), SUM(cost_micros), SUM(CASE WHEN cold_start THEN 1 ELSE 0 END),"
      " SUM(CASE WHEN kind = 'invocation' AND outcome <> 'ok' THEN 1 ELSE 0 END)"
      " FROM ledger_invocations WHERE ($1 = '' OR function = $1) AND start_ms >= $2::bigint"
      " AND ($3::bigint = 0 OR start_ms < $3::bigint) GROUP BY 1 ORDER BY 1";
  std::lock_guard lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  // The sums read every row in the range (unbounded by nature, unlike List and Logs, which stop
  // at `last` along an index): kReportTimeout instead of kStatementTimeout.
  const pg::LongerStatements longer(pg::kReportTimeout);
  FAAS_ASSIGN_OR_RETURN(Rows r, pg::InTransaction(conn_, [&]() -> Result<Rows> {
                          FAAS_RETURN_IF_ERROR(longer.Apply(conn_));
                          return Exec(
                              conn_, sql.c_str(),
                              {std::string_view(q.function), q.since_unix_ms, q.until_unix_ms});
                        }));
  std::vector<BillRow> rows;
  BillRow total;
  for (int i = 0; i < r.Count(); ++i) {
    BillRow b;
    b.key = r.Text(i, 0);
    b.invocations = static_cast<uint64_t>(r.Int(i, 1));
    b.cpu_ns = static_cast<uint64_t>(r.Int(i, 2));
    b.billed_ms = static_cast<uint64_t>(r.Int(i, 3));
    b.cost_micros = r.Int(i, 4);
    b.cold_starts = static_cast<uint64_t>(r.Int(i, 5));
    b.errors = static_cast<uint64_t>(r.Int(i, 6));
    AddToTotal(b, &total);
    if (!q.by.empty()) {
      rows.push_back(std::move(b));
    }
  }
  rows.push_back(total);
  return rows;
}

Result<std::vector<InvocationRecord>> PgLedger::List(const std::string& function, uint32_t last,
                                                     const std::string& outcome) {
  std::lock_guard lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(
      Rows r, Exec(conn_,
                   "SELECT " FAAS_PG_LEDGER_COLUMNS
                   " FROM ledger_invocations WHERE function = $1 AND ($2 = '' OR outcome = $2)"
                   " ORDER BY start_ms DESC, invocation_id DESC LIMIT $3::bigint",
                   {std::string_view(function), std::string_view(outcome), int64_t{last}}));
  std::vector<InvocationRecord> out;
  out.reserve(r.Size());
  for (int i = 0; i < r.Count(); ++i) {
    out.push_back(ReadRecord(r, i));
  }
  return out;
}

Result<std::vector<LogEntry>> PgLedger::Logs(const std::string& function,
                                             const std::string& invocation_id, uint32_t last,
                                             uint64_t after_seq) {
  std::lock_guard lock(mu_);
  FAAS_RETURN_IF_ERROR(ConnectLocked());
  FAAS_ASSIGN_OR_RETURN(
      Rows r, Exec(conn_,
                   "SELECT seq, invocation_id, function, start_ms, encode(text, 'hex')"
                   " FROM ledger_logs WHERE function = $1 AND ($2 = '' OR invocation_id = $2)"
                   " AND seq > $3::bigint ORDER BY seq DESC LIMIT $4::bigint",
                   {std::string_view(function), std::string_view(invocation_id),
                    static_cast<int64_t>(after_seq), int64_t{last}}));
  std::vector<LogEntry> out;
  for (int i = r.Count() - 1; i >= 0; --i) {  // oldest first
    out.push_back({static_cast<uint64_t>(r.Int(i, 0)), r.Text(i, 1), r.Text(i, 2), r.Int(i, 3),
                   FromHex(r.Text(i, 4))});
  }
  return out;
}

}  // namespace faas::store
