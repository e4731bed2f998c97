#include "faas/store/ledger.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "faas/base/log.h"
#include "faas/base/text.h"
#include "faas/base/thread.h"
#include "faas/base/unique_fd.h"

#include "sqlite.h"

namespace faas::store {
namespace {

using Json = nlohmann::json;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS invocations (
  id TEXT PRIMARY KEY,
  function TEXT NOT NULL,
  version INTEGER NOT NULL,
  trigger TEXT NOT NULL,
  kind TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  wall_ns INTEGER NOT NULL,
  cpu_ns INTEGER NOT NULL,
  billed_ms INTEGER NOT NULL,
  cost_micros INTEGER NOT NULL,
  peak_memory_bytes INTEGER NOT NULL,
  cold_start INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error_code TEXT NOT NULL,
  queue_ns INTEGER NOT NULL, spawn_ns INTEGER NOT NULL, load_ns INTEGER NOT NULL,
  init_ns INTEGER NOT NULL, exec_ns INTEGER NOT NULL,
  tenant TEXT NOT NULL DEFAULT '',
  queue TEXT NOT NULL DEFAULT '',
  message_id TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations(function, start_ms);
CREATE INDEX IF NOT EXISTS invocations_by_start ON invocations(start_ms);
CREATE TABLE IF NOT EXISTS logs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  function TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  text BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS logs_by_function ON logs(function, seq);
CREATE INDEX IF NOT EXISTS logs_by_id ON logs(id);
CREATE TABLE IF NOT EXISTS ship_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql";

// The shipper's scan for unshipped rows, made by the first Unshipped call (so only a ledger that
// ships has it: elsewhere every row stays unshipped). Partial, so on a node that ships it holds
// only the rows in flight.
constexpr const char* kUnshippedIndex =
    "CREATE INDEX IF NOT EXISTS invocations_unshipped ON invocations(shipped) WHERE shipped = 0";

// Columns of every record query, in InvocationRecord order (ReadRecord).
#define FAAS_LEDGER_COLUMNS                                                                    \
  "id, function, version, trigger, kind, start_ms, wall_ns, cpu_ns, billed_ms, cost_micros,"   \
  " peak_memory_bytes, cold_start, outcome, error_code, queue_ns, spawn_ns, load_ns, init_ns," \
  " exec_ns, tenant, queue, message_id"

// A row of a record query (sql::ReadAll's reader).
Result<InvocationRecord> ReadRecord(const sql::Stmt& st) {
  InvocationRecord r;
  r.invocation_id = st.Text(0);
  r.function = st.Text(1);
  r.version = static_cast<uint32_t>(st.Int(2));
  r.trigger = st.Text(3);
  r.kind = st.Text(4);
  r.start_unix_ms = st.Int(5);
  r.wall_ns = static_cast<uint64_t>(st.Int(6));
  r.cpu_ns = static_cast<uint64_t>(st.Int(7));
  r.billed_ms = static_cast<uint64_t>(st.Int(8));
  r.cost_micros = st.Int(9);
  r.peak_memory_bytes = static_cast<uint64_t>(st.Int(10));
  r.cold_start = st.Int(11) != 0;
  r.outcome = st.Text(12);
  r.error_code = st.Text(13);
  r.queue_ns = static_cast<uint64_t>(st.Int(14));
  r.spawn_ns = static_cast<uint64_t>(st.Int(15));
  r.load_ns = static_cast<uint64_t>(st.Int(16));
  r.init_ns = static_cast<uint64_t>(st.Int(17));
  r.exec_ns = static_cast<uint64_t>(st.Int(18));
  r.tenant = st.Text(19);
  r.queue = st.Text(20);
  r.message_id = st.Text(21);
  return r;
}

// A row of "SELECT seq, id, function, start_ms, text FROM logs" (sql::ReadAll's reader).
Result<LogEntry> ReadLog(const sql::Stmt& st) {
  return LogEntry{static_cast<uint64_t>(st.Int(0)), st.Text(1), st.Text(2), st.Int(3), st.Text(4)};
}

// One journal line. Hand-rolled: this runs on every invocation's hot path, where building a
// nlohmann::json object cost ~5% of the warm path's CPU (measured with perf).
std::string ToJsonLine(const InvocationRecord& r) {
  std::string out;
  out.reserve(320 + r.invocation_id.size() + r.function.size());
  auto str = [&](const char* key, std::string_view v) {
    out += key;
    AppendJsonBytes(out, v);
  };
  auto num = [&](const char* key, auto v) {
    out += key;
    out += std::to_string(v);
  };
  str("{\"id\":", r.invocation_id);
  str(",\"fn\":", r.function);
  num(",\"v\":", r.version);
  str(",\"trigger\":", r.trigger);
  str(",\"kind\":", r.kind);
  num(",\"start\":", r.start_unix_ms);
  num(",\"wall\":", r.wall_ns);
  num(",\"cpu\":", r.cpu_ns);
  num(",\"billed\":", r.billed_ms);
  num(",\"cost\":", r.cost_micros);
  num(",\"mem\":", r.peak_memory_bytes);
  out += r.cold_start ? ",\"cold\":true" : ",\"cold\":false";
  str(",\"outcome\":", r.outcome);
  str(",\"err\":", r.error_code);
  num(",\"q\":", r.queue_ns);
  num(",\"sp\":", r.spawn_ns);
  num(",\"ld\":", r.load_ns);
  num(",\"in\":", r.init_ns);
  num(",\"ex\":", r.exec_ns);
  str(",\"tenant\":", r.tenant);
  if (!r.message_id.empty()) {
    str(",\"queue\":", r.queue);
    str(",\"msg\":", r.message_id);
  }
  out += "}\n";
  return out;
}

// Parses one journal line; false for a torn or foreign line (skipped on replay).
bool FromJsonLine(const std::string& line, InvocationRecord* r) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return false;
  }
  try {
    r->invocation_id = j.at("id");
    r->function = j.at("fn");
    r->version = j.at("v");
    r->trigger = j.at("trigger");
    r->kind = j.at("kind");
    r->start_unix_ms = j.at("start");
    r->wall_ns = j.at("wall");
    r->cpu_ns = j.at("cpu");
    r->billed_ms = j.at("billed");
    r->cost_micros = j.at("cost");
    r->peak_memory_bytes = j.at("mem");
    r->cold_start = j.at("cold");
    r->outcome = j.at("outcome");
    r->error_code = j.at("err");
    r->queue_ns = j.at("q");
    r->spawn_ns = j.at("sp");
    r->load_ns = j.at("ld");
    r->init_ns = j.at("in");
    r->exec_ns = j.at("ex");
    r->tenant = j.value("tenant", "");  // absent in journals written before tenants existed
    r->queue = j.value("queue", "");    // absent unless a queue message ran
    r->message_id = j.value("msg", "");
  } catch (const Json::exception&) {
    return false;
  }
  return true;
}

// INSERT OR IGNORE: replaying a journal twice (crash during replay) adds nothing. OR IGNORE
// applies row by row, in a multi-row insert too.
constexpr std::string_view kInsertInvocations =
    "INSERT OR IGNORE INTO invocations (id, function, version, trigger, kind, start_ms,"
    " wall_ns, cpu_ns, billed_ms, cost_micros, peak_memory_bytes, cold_start, outcome,"
    " error_code, queue_ns, spawn_ns, load_ns, init_ns, exec_ns, tenant, queue, message_id)"
    " VALUES ";
constexpr int kInvocationColumns = 22;
// Rows per INSERT statement in a batch: one statement step per 16 rows cost the writer about 35 %
// less CPU per row than one per row (design/0043).
constexpr std::size_t kRowsPerInsert = 16;

// kInsertInvocations with `rows` rows of placeholders.
std::string InsertSql(std::size_t rows) {
  std::string row = "(?";
  for (int c = 1; c < kInvocationColumns; ++c) {
    row += ",?";
  }
  row += ")";
  std::string sql(kInsertInvocations);
  for (std::size_t i = 0; i < rows; ++i) {
    sql += i == 0 ? row : "," + row;
  }
  return sql;
}

// Binds `r` as the row at `row` (0-based) of a statement from InsertSql. `r` is borrowed: it must
// outlive the statement's next step (the batch outlives it in Commit).
Status BindRow(sql::Stmt& st, std::size_t row, const InvocationRecord& r) {
  return st.BindBorrowedAt(static_cast<int>(row) * kInvocationColumns + 1,
                           {r.invocation_id,
                            r.function,
                            int64_t{r.version},
                            r.trigger,
                            r.kind,
                            r.start_unix_ms,
                            static_cast<int64_t>(r.wall_ns),
                            static_cast<int64_t>(r.cpu_ns),
                            static_cast<int64_t>(r.billed_ms),
                            r.cost_micros,
                            static_cast<int64_t>(r.peak_memory_bytes),
                            int64_t{r.cold_start ? 1 : 0},
                            r.outcome,
                            r.error_code,
                            static_cast<int64_t>(r.queue_ns),
                            static_cast<int64_t>(r.spawn_ns),
                            static_cast<int64_t>(r.load_ns),
                            static_cast<int64_t>(r.init_ns),
                            static_cast<int64_t>(r.exec_ns),
                            r.tenant,
                            r.queue,
                            r.message_id});
}

// Inserts `rows`, kRowsPerInsert to a statement and the rest one by one, each statement prepared
// once per batch (preparing one per row cost the writer more than the insert itself).
Status InsertAll(sqlite3* db, const std::vector<InvocationRecord>& rows) {
  std::size_t done = 0;
  for (const std::size_t group : {kRowsPerInsert, std::size_t{1}}) {
    if (rows.size() - done < group) {
      continue;
    }
    FAAS_ASSIGN_OR_RETURN(sql::Stmt st, sql::Stmt::Prepare(db, InsertSql(group).c_str()));
    for (; rows.size() - done >= group; done += group) {
      st.Reset();
      for (std::size_t i = 0; i < group; ++i) {
        FAAS_RETURN_IF_ERROR(BindRow(st, i, rows[done + i]));
      }
      FAAS_RETURN_IF_ERROR(st.Run());
    }
  }
  return OkStatus();
}

}  // namespace

struct Ledger::Impl {
  LedgerOptions options;
  std::string journal_dir;
  sqlite3* db = nullptr;
  std::shared_ptr<spdlog::logger> log = log::Get("ledger");

  // Appends hold journal_mu shared across their write(2) and queue push, so they never wait
  // for each other's I/O; the writer holds it exclusively (then mu) only to swap the batch and
  // the journal generation. So a record's journal line and its queue entry are always in the
  // same generation, and deleting a committed generation's file never loses a row. Order:
  // journal_mu before mu.
  std::shared_mutex journal_mu;  // guards the journal fd and generation
  std::mutex mu;                 // guards the queue and counters
  std::condition_variable wake;  // writer: work or stop
  std::condition_variable flushed;
  UniqueFd journal;
  uint64_t generation = 0;
  std::vector<InvocationRecord> queue;
  std::vector<LogEntry> log_queue;
  uint64_t appended = 0;   // records appended so far
  uint64_t committed = 0;  // records in SQLite so far
  uint64_t logs_appended = 0;
  uint64_t logs_committed = 0;
  bool stopping = false;
  std::thread writer;
  std::mutex db_mu;              // one connection: queries and the writer take turns
  bool unshipped_index = false;  // guarded by db_mu: kUnshippedIndex exists

  std::string JournalPath(uint64_t gen) const {
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.jsonl", static_cast<unsigned long long>(gen));
    return journal_dir + "/" + name;
  }

  Result<UniqueFd> CreateGeneration(uint64_t gen) const {
    std::string path = JournalPath(gen);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd.Valid()) {
      return ErrnoError(errno, "open", path);
    }
    return fd;
  }

  Status OpenGeneration(uint64_t gen) {
    FAAS_ASSIGN_OR_RETURN(journal, CreateGeneration(gen));
    generation = gen;
    return OkStatus();
  }

  // Inserts a batch in one transaction.
  Status Commit(const std::vector<InvocationRecord>& batch,
                const std::vector<LogEntry>& logs = {}) {
    std::lock_guard lock(db_mu);
    FAAS_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::Begin(db));
    FAAS_RETURN_IF_ERROR(InsertAll(db, batch));
    std::set<std::string> touched;
    if (!logs.empty()) {
      FAAS_ASSIGN_OR_RETURN(
          sql::Stmt insert,
          sql::Stmt::Prepare(db,
                             "INSERT INTO logs(id, function, start_ms, text) VALUES (?,?,?,?)"));
      for (const auto& l : logs) {
        FAAS_RETURN_IF_ERROR(insert.Rebind({l.invocation_id, l.function, l.start_unix_ms, l.text}));
        FAAS_RETURN_IF_ERROR(insert.Run());
        touched.insert(l.function);
      }
    }
    for (const auto& fn : touched) {  // keep each function's store bounded
      FAAS_ASSIGN_OR_RETURN(
          sql::Stmt st,
          sql::Stmt::Prepare(db,
                             "DELETE FROM logs WHERE function = ?1 AND seq <= (SELECT seq FROM logs"
                             " WHERE function = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                             {fn, static_cast<int64_t>(options.max_log_entries_per_function)}));
      FAAS_RETURN_IF_ERROR(st.Run());
    }
    return tx.Commit();
  }

  // Ledgers written before tenants (or queue message ids, or shipping) were recorded lack the
  // column; CREATE TABLE IF NOT EXISTS does not add it, so add it here (idempotent).
  Status AddColumn(const std::string& name, const std::string& decl) {
    FAAS_ASSIGN_OR_RETURN(sql::Stmt st,
                          sql::Stmt::Prepare(db,
                                             "SELECT 1 FROM pragma_table_info('invocations')"
                                             " WHERE name = ?1",
                                             {name}));
    FAAS_ASSIGN_OR_RETURN(bool has, st.Step());
    if (has) {
      return OkStatus();
    }
    const std::string alter = "ALTER TABLE invocations ADD COLUMN " + name + " " + decl;
    return sql::Exec(db, alter.c_str());
  }

  // Replays every journal generation left on disk (a crashed daemon's), then removes them.
  Result<uint64_t> Replay() {
    std::vector<std::string> files;
    if (DIR* d = ::opendir(journal_dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 6 && n.ends_with(".jsonl")) {
          files.push_back(n);
        }
      }
      ::closedir(d);
    }
    std::sort(files.begin(), files.end());
    uint64_t replayed = 0;
    uint64_t max_gen = 0;
    for (const auto& n : files) {
      max_gen = std::max<uint64_t>(max_gen, std::strtoull(n.c_str(), nullptr, 16));
      FAAS_ASSIGN_OR_RETURN(std::string text, ReadFile(journal_dir + "/" + n, 1ull << 32));
      std::vector<InvocationRecord> batch;
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        InvocationRecord r;
        if (FromJsonLine(line, &r)) {
          batch.push_back(std::move(r));
        }
      }
      FAAS_RETURN_IF_ERROR(Commit(batch));
      replayed += batch.size();
      ::unlink((journal_dir + "/" + n).c_str());
    }
    generation = max_gen + 1;
    return replayed;
  }

  void WriterLoop() {
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait_for(lock, options.flush_interval,
                    [&] { return stopping || queue.size() >= options.max_batch; });
      if (queue.empty() && log_queue.empty()) {
        if (stopping) {
          return;
        }
        continue;
      }
      // Swap out the batch and start a new journal generation under both locks: the old file
      // then holds exactly this batch, and can be deleted once it is committed. The new file is
      // created first, outside them (only this thread changes `generation`).
      const uint64_t old_gen = generation;
      lock.unlock();
      Result<UniqueFd> next = CreateGeneration(old_gen + 1);
      std::unique_lock journal_lock(journal_mu);
      lock.lock();
      std::vector<InvocationRecord> batch;
      batch.swap(queue);
      std::vector<LogEntry> logs;
      logs.swap(log_queue);
      UniqueFd old_fd;
      const bool opened = next.ok();
      if (opened) {
        old_fd = std::move(journal);
        journal = std::move(*next);
        generation = old_gen + 1;
      } else {
        // Keep appending to the old generation; it is then not deleted after this commit.
        FAAS_LOG(log, err, "ledger.journal_failed", {"error", next.status().message()});
      }
      journal_lock.unlock();
      lock.unlock();
      Status s = Commit(batch, logs);
      lock.lock();
      if (!s.ok()) {
        // Keep the records (and their journal) and retry on the next round.
        FAAS_LOG(log, err, "ledger.commit_failed", {"error", s.message()}, {"rows", batch.size()});
        queue.insert(queue.begin(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
        log_queue.insert(log_queue.begin(), std::make_move_iterator(logs.begin()),
                         std::make_move_iterator(logs.end()));
        continue;
      }
      if (opened) {
        old_fd.Reset();
        ::unlink(JournalPath(old_gen).c_str());
      }
      committed += batch.size();
      logs_committed += logs.size();
      flushed.notify_all();
    }
  }
};

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& data_dir, LedgerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->journal_dir = data_dir + "/ledger-journal";
  for (const std::string& dir : {data_dir, impl->journal_dir}) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir", dir);
    }
  }
  std::string path = data_dir + "/ledger.db";
  FAAS_ASSIGN_OR_RETURN(impl->db,
                        sql::Open(path, {.no_wal_event = "ledger.no_wal", .logger = "ledger"}));
  FAAS_RETURN_IF_ERROR(sql::Exec(impl->db, kSchema));
  for (const char* column : {"tenant", "queue", "message_id"}) {
    FAAS_RETURN_IF_ERROR(impl->AddColumn(column, "TEXT NOT NULL DEFAULT ''"));
  }
  // 0 until the central ledger committed the row (LedgerShipper), then 1; 2: set aside, the
  // central ledger refused it (SetAside). Rows of a ledger that never shipped are 0 too: a node
  // that joins a cluster ships its history once.
  FAAS_RETURN_IF_ERROR(impl->AddColumn("shipped", "INTEGER NOT NULL DEFAULT 0"));
  FAAS_ASSIGN_OR_RETURN(uint64_t replayed, impl->Replay());
  if (replayed > 0) {
    FAAS_LOG(impl->log, warn, "ledger.replayed", {"rows", replayed},
             {"why", "journal left by a faasd that did not stop cleanly"});
  }
  FAAS_RETURN_IF_ERROR(impl->OpenGeneration(impl->generation));
  Impl* raw = impl.get();
  impl->writer = std::thread([raw] {
    NameThisThread("faas-ledger");
    // Its commits are bursts of milliseconds: short slices keep them from holding a woken loop
    // thread or client off its CPU until the next tick.
    UseShortSlices(std::chrono::microseconds(100));
    raw->WriterLoop();
  });
  return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

Ledger::~Ledger() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->writer.joinable()) {
    impl_->writer.join();
  }
  if (impl_->queue.empty()) {
    impl_->journal.Reset();
    ::unlink(impl_->JournalPath(impl_->generation).c_str());
  }
  sqlite3_close(impl_->db);
}

Status Ledger::Append(InvocationRecord&& record) {
  std::string line = ToJsonLine(record);
  std::shared_lock journal_lock(impl_->journal_mu);
  // One write(2) with O_APPEND: a whole line or nothing useful (a torn tail is skipped on replay).
  // Concurrent appends need no lock between them: the kernel serialises O_APPEND writes.
  ssize_t n = ::write(impl_->journal.Get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    return n < 0 ? ErrnoError(errno, "write", "ledger journal")
                 : ResourceExhaustedError("ledger journal: short write (disk full?)");
  }
  std::lock_guard lock(impl_->mu);
  impl_->queue.push_back(std::move(record));
  ++impl_->appended;
  if (impl_->queue.size() >= impl_->options.max_batch) {
    impl_->wake.notify_one();
  }
  return OkStatus();
}

void Ledger::AppendLog(LogEntry entry) {
  std::lock_guard lock(impl_->mu);
  if (impl_->log_queue.size() < 100'000) {  // best effort: never let logs grow without bound
    impl_->log_queue.push_back(std::move(entry));
    ++impl_->logs_appended;
  }
}

Result<std::vector<LogEntry>> Ledger::Logs(const std::string& function,
                                           const std::string& invocation_id, uint32_t last,
                                           uint64_t after_seq) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st, sql::Stmt::Prepare(
                        impl_->db,
                        "SELECT seq, id, function, start_ms, text FROM logs"
                        " WHERE function = ?1 AND (?2 = '' OR id = ?2) AND seq > ?3"
                        " ORDER BY seq DESC LIMIT ?4",
                        {function, invocation_id, static_cast<int64_t>(after_seq), int64_t{last}}));
  FAAS_ASSIGN_OR_RETURN(std::vector<LogEntry> out, sql::ReadAll<LogEntry>(st, ReadLog));
  std::reverse(out.begin(), out.end());
  return out;
}

Status Ledger::Flush() {
  std::unique_lock lock(impl_->mu);
  uint64_t target = impl_->appended;
  uint64_t log_target = impl_->logs_appended;
  impl_->wake.notify_one();
  if (!impl_->flushed.wait_for(lock, std::chrono::seconds(30), [&] {
        return impl_->committed >= target && impl_->logs_committed >= log_target;
      })) {
    return DeadlineExceededError("ledger flush did not finish within 30s");
  }
  return OkStatus();
}

void AddToTotal(const BillRow& row, BillRow* total) {
  total->invocations += row.invocations;
  total->cpu_ns += row.cpu_ns;
  total->billed_ms += row.billed_ms;
  total->cost_micros += row.cost_micros;
  total->cold_starts += row.cold_starts;
  total->errors += row.errors;
}

Result<std::vector<BillRow>> Ledger::Bill(const BillQuery& q) {
  std::string key_expr;
  if (q.by.empty()) {
    key_expr = "''";
  } else if (q.by == "function") {
    key_expr = "function";
  } else if (q.by == "tenant") {
    key_expr = "tenant";
  } else if (q.by == "day") {
    key_expr = "strftime('%Y-%m-%d', start_ms / 1000, 'unixepoch')";
  } else if (q.by == "hour") {
    key_expr = "strftime('%Y-%m-%dT%H', start_ms / 1000, 'unixepoch')";
  } else {
    return InvalidArgumentError("by \"" + q.by + "\": use function, tenant, day or hour");
  }
  // key_expr is one of the constants above, never user input.
  std::string sql = "SELECT " + key_expr +
                    ", SUM(kind = 'invocation'), SUM(cpu_ns), SUM(billed_ms), SUM(cost_micros),"
                    " SUM(cold_start), SUM(kind = 'invocation' AND outcome != 'ok')"
                    " FROM invocations WHERE (?1 = '' OR function = ?1) AND start_ms >= ?2"
                    " AND (?3 = 0 OR start_ms < ?3) GROUP BY 1 ORDER BY 1";
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st,
      sql::Stmt::Prepare(impl_->db, sql.c_str(), {q.function, q.since_unix_ms, q.until_unix_ms}));
  std::vector<BillRow> rows;
  BillRow total;
  for (;;) {
    FAAS_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) {
      break;
    }
    BillRow r;
    r.key = st.Text(0);
    r.invocations = static_cast<uint64_t>(st.Int(1));
    r.cpu_ns = static_cast<uint64_t>(st.Int(2));
    r.billed_ms = static_cast<uint64_t>(st.Int(3));
    r.cost_micros = st.Int(4);
    r.cold_starts = static_cast<uint64_t>(st.Int(5));
    r.errors = static_cast<uint64_t>(st.Int(6));
    AddToTotal(r, &total);
    if (!q.by.empty()) {
      rows.push_back(std::move(r));
    }
  }
  rows.push_back(total);
  return rows;
}

Result<std::vector<InvocationRecord>> Ledger::List(const std::string& function, uint32_t last,
                                                   const std::string& outcome) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st,
      sql::Stmt::Prepare(impl_->db,
                         "SELECT " FAAS_LEDGER_COLUMNS
                         " FROM invocations WHERE function = ?1 AND (?2 = '' OR outcome = ?2)"
                         " ORDER BY start_ms DESC, rowid DESC LIMIT ?3",
                         {function, outcome, int64_t{last}}));
  return sql::ReadAll<InvocationRecord>(st, ReadRecord);
}

Result<std::vector<InvocationRecord>> Ledger::Unshipped(std::size_t limit) {
  std::lock_guard lock(impl_->db_mu);
  if (!impl_->unshipped_index) {
    FAAS_RETURN_IF_ERROR(sql::Exec(impl_->db, kUnshippedIndex));
    impl_->unshipped_index = true;
  }
  FAAS_ASSIGN_OR_RETURN(sql::Stmt st,
                        sql::Stmt::Prepare(impl_->db,
                                           "SELECT " FAAS_LEDGER_COLUMNS
                                           " FROM invocations WHERE shipped = 0 ORDER BY rowid"
                                           " LIMIT ?1",
                                           {static_cast<int64_t>(limit)}));
  return sql::ReadAll<InvocationRecord>(st, ReadRecord);
}

Result<std::vector<LogEntry>> Ledger::UnshippedLogs(std::size_t limit) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st,
      sql::Stmt::Prepare(impl_->db,
                         "SELECT seq, id, function, start_ms, text FROM logs WHERE seq >"
                         " COALESCE((SELECT value FROM ship_state WHERE name = 'logs'), 0)"
                         " ORDER BY seq LIMIT ?1",
                         {static_cast<int64_t>(limit)}));
  return sql::ReadAll<LogEntry>(st, ReadLog);
}

Status Ledger::MarkShipped(const std::vector<std::string>& ids, uint64_t logs_through_seq) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::Begin(impl_->db));
  if (!ids.empty()) {
    FAAS_ASSIGN_OR_RETURN(
        sql::Stmt st,
        sql::Stmt::Prepare(impl_->db, "UPDATE invocations SET shipped = 1 WHERE id = ?"));
    for (const std::string& id : ids) {
      FAAS_RETURN_IF_ERROR(st.Rebind({id}));
      FAAS_RETURN_IF_ERROR(st.Run());
    }
  }
  if (logs_through_seq > 0) {
    FAAS_ASSIGN_OR_RETURN(sql::Stmt st,
                          sql::Stmt::Prepare(impl_->db,
                                             "INSERT INTO ship_state(name, value) VALUES"
                                             " ('logs', ?1) ON CONFLICT(name) DO UPDATE SET"
                                             " value = MAX(value, excluded.value)",
                                             {static_cast<int64_t>(logs_through_seq)}));
    FAAS_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Status Ledger::SetAside(const std::vector<std::string>& ids) {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::Begin(impl_->db));
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st,
      sql::Stmt::Prepare(impl_->db, "UPDATE invocations SET shipped = 2 WHERE id = ?"));
  for (const std::string& id : ids) {
    FAAS_RETURN_IF_ERROR(st.Rebind({id}));
    FAAS_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Result<uint64_t> Ledger::UnshippedCount() {
  uint64_t queued = 0;
  {
    std::lock_guard lock(impl_->mu);
    queued = impl_->appended - impl_->committed;
  }
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(
      sql::Stmt st,
      sql::Stmt::Prepare(impl_->db, "SELECT COUNT(*) FROM invocations WHERE shipped = 0"));
  FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
  return queued + (row ? static_cast<uint64_t>(st.Int(0)) : 0);
}

Result<uint64_t> Ledger::Count() {
  std::lock_guard lock(impl_->db_mu);
  FAAS_ASSIGN_OR_RETURN(sql::Stmt st,
                        sql::Stmt::Prepare(impl_->db, "SELECT COUNT(*) FROM invocations"));
  FAAS_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<uint64_t>(st.Int(0)) : 0;
}

}  // namespace faas::store
