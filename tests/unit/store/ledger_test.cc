#include "faas/store/ledger.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "unit/store/temp_dir.h"

namespace faas::store {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  static InvocationRecord Rec(const std::string& id, const std::string& fn, int64_t start_ms,
                              uint64_t cpu_ns, const std::string& outcome = "ok") {
    InvocationRecord r;
    r.invocation_id = id;
    r.function = fn;
    r.version = 1;
    r.trigger = "http";
    r.start_unix_ms = start_ms;
    r.cpu_ns = cpu_ns;
    r.billed_ms = (cpu_ns + 999'999) / 1'000'000;
    r.cost_micros = static_cast<int64_t>(r.billed_ms) * 2;
    r.outcome = outcome;
    r.error_code = outcome == "ok" ? "" : outcome;
    r.cold_start = id.back() == '0';
    return r;
  }

  testing::TempDir tmp_;
  const std::string& dir_ = tmp_.Path();
};

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kT0 = 1'764'374'400'000;  // 2025-11-29T00:00:00Z

TEST_F(LedgerTest, AppendedRecordsReachSqliteAndAreBilledByKey) {
  auto ledger = Ledger::Open(dir_);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  Ledger& l = **ledger;
  ASSERT_TRUE(l.Append(Rec("a0", "resize", kT0 + 1000, 1'500'000)).ok());
  ASSERT_TRUE(l.Append(Rec("a1", "resize", kT0 + 3'600'000, 2'000'000, "function_timeout")).ok());
  ASSERT_TRUE(l.Append(Rec("b0", "email", kT0 + kDay, 100)).ok());
  InvocationRecord bg = Rec("bg-1", "resize", kT0 + 5000, 3'000'000);
  bg.kind = "background";
  bg.trigger = "background";
  ASSERT_TRUE(l.Append(bg).ok());
  ASSERT_TRUE(l.Flush().ok());
  EXPECT_EQ(*l.Count(), 4u);

  auto total = l.Bill({});
  ASSERT_TRUE(total.ok());
  ASSERT_EQ(total->size(), 1u);
  EXPECT_EQ(total->back().invocations, 3u);  // background rows are not invocations
  EXPECT_EQ(total->back().billed_ms, 2u + 2u + 1u + 3u);
  EXPECT_EQ(total->back().cost_micros, 16);
  EXPECT_EQ(total->back().errors, 1u);
  EXPECT_EQ(total->back().cold_starts, 2u);

  auto by_fn = l.Bill({.function = "", .by = "function"});
  ASSERT_TRUE(by_fn.ok());
  ASSERT_EQ(by_fn->size(), 3u);
  EXPECT_EQ((*by_fn)[0].key, "email");
  EXPECT_EQ((*by_fn)[1].key, "resize");
  EXPECT_EQ((*by_fn)[1].billed_ms, 7u);

  auto by_day = l.Bill({.function = "resize", .by = "day"});
  ASSERT_TRUE(by_day.ok());
  ASSERT_EQ(by_day->size(), 2u);
  EXPECT_EQ((*by_day)[0].key, "2025-11-29");

  auto by_hour = l.Bill({.function = "resize", .by = "hour"});
  ASSERT_EQ(by_hour->size(), 3u);  // 00h, 01h, total
  EXPECT_EQ((*by_hour)[1].key, "2025-11-29T01");

  auto window =
      l.Bill({.function = "", .since_unix_ms = kT0 + 2000, .until_unix_ms = kT0 + kDay, .by = ""});
  EXPECT_EQ(window->back().invocations, 1u);
  EXPECT_FALSE(l.Bill({.function = "", .by = "week"}).ok());

  auto list = l.List("resize", 10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].invocation_id, "a1");  // newest first
  EXPECT_EQ((*list)[0].error_code, "function_timeout");
  auto timeouts = l.List("resize", 10, "function_timeout");
  EXPECT_EQ(timeouts->size(), 1u);
}

TEST_F(LedgerTest, RecordsSurviveAProcessThatDiesWithoutFlushing) {
  pid_t pid = ::fork();
  if (pid == 0) {
    // A long flush interval: nothing reaches SQLite before the process dies.
    auto l = Ledger::Open(dir_, {.flush_interval = std::chrono::hours(1), .max_batch = 100000});
    for (int i = 0; i < 500; ++i) {
      InvocationRecord r = Rec("id" + std::to_string(i), "f", kT0 + i, 1000);
      if (i % 2 == 0) {  // a queue message's run: its queue and message id are journaled too
        r.trigger = "queue";
        r.queue = "jobs";
        r.message_id = "m" + std::to_string(i);
      }
      if (!(*l)->Append(r).ok()) {
        ::_exit(2);
      }
    }
    ::_exit(0);  // no destructor, no flush: like SIGKILL right after answering
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // A torn line at the end (a write cut short) is skipped, not fatal.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/ledger-journal")) {
    std::ofstream(e.path(), std::ios::app) << "{\"id\":\"torn";
  }
  auto ledger = Ledger::Open(dir_);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  EXPECT_EQ(*(*ledger)->Count(), 500u);
  auto rows = (*ledger)->List("f", 1000);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 500u);
  for (const InvocationRecord& r : *rows) {
    int i = std::stoi(r.invocation_id.substr(2));
    EXPECT_EQ(r.queue, i % 2 == 0 ? "jobs" : "") << r.invocation_id;
    EXPECT_EQ(r.message_id, i % 2 == 0 ? "m" + std::to_string(i) : "") << r.invocation_id;
  }
  // Replaying again (a crash during replay) adds nothing.
  ledger->reset();
  auto again = Ledger::Open(dir_);
  EXPECT_EQ(*(*again)->Count(), 500u);
}

// Every column of each row, to compare a row read back with the one appended.
std::string AllFields(const InvocationRecord& r) {
  std::ostringstream out;
  out << r.invocation_id << '|' << r.function << '|' << r.version << '|' << r.trigger << '|'
      << r.kind << '|' << r.start_unix_ms << '|' << r.wall_ns << '|' << r.cpu_ns << '|'
      << r.billed_ms << '|' << r.cost_micros << '|' << r.peak_memory_bytes << '|' << r.cold_start
      << '|' << r.outcome << '|' << r.error_code << '|' << r.queue_ns << '|' << r.spawn_ns << '|'
      << r.load_ns << '|' << r.init_ns << '|' << r.exec_ns << '|' << r.tenant << '|' << r.queue
      << '|' << r.message_id;
  return out.str();
}

// The writer inserts a batch several rows to a statement (design/0043): 37 rows make two full
// groups and five single rows. Every column of every row reads back as appended, and replaying
// a journal whose rows are already in SQLite (a crash after the commit, before the journal was
// deleted) adds nothing and changes nothing.
TEST_F(LedgerTest, EveryColumnOfABatchRoundTripsAndAReplayedBatchAddsNothing) {
  std::vector<InvocationRecord> appended;
  for (uint32_t i = 0; i < 37; ++i) {
    InvocationRecord r = Rec("r" + std::to_string(100 + i), "f", kT0 + i, 1000u + i);
    r.version = i + 1;
    r.trigger = i % 3 == 0 ? "queue" : "http";
    r.wall_ns = 2000u + i;
    r.peak_memory_bytes = 4096u * (i + 1);
    r.queue_ns = 10u + i;
    r.spawn_ns = 20u + i;
    r.load_ns = 30u + i;
    r.init_ns = 40u + i;
    r.exec_ns = 50u + i;
    r.tenant = "t" + std::to_string(i % 4);
    r.queue = i % 3 == 0 ? "jobs" : "";
    r.message_id = i % 3 == 0 ? "m" + std::to_string(i) : "";
    appended.push_back(r);
  }
  pid_t pid = ::fork();
  if (pid == 0) {  // journal only: nothing reaches SQLite before the process dies
    auto l = Ledger::Open(dir_, {.flush_interval = std::chrono::hours(1), .max_batch = 100000});
    for (const InvocationRecord& r : appended) {
      if (!l.ok() || !(*l)->Append(r).ok()) {
        ::_exit(2);
      }
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const std::string journal = dir_ + "/ledger-journal";
  const std::string saved = dir_ + "/journal-copy";
  std::filesystem::copy(journal, saved);
  auto check = [&] {
    auto ledger = Ledger::Open(dir_);  // replays the journal
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    EXPECT_EQ(*(*ledger)->Count(), appended.size());
    auto rows = (*ledger)->List("f", 1000);
    ASSERT_TRUE(rows.ok());
    std::map<std::string, std::string> by_id;
    for (const InvocationRecord& r : *rows) {
      by_id[r.invocation_id] = AllFields(r);
    }
    ASSERT_EQ(by_id.size(), appended.size());
    for (const InvocationRecord& r : appended) {
      EXPECT_EQ(by_id[r.invocation_id], AllFields(r));
    }
  };
  check();
  // The same journal again, its rows already committed: INSERT OR IGNORE, row by row.
  std::filesystem::remove_all(journal);
  std::filesystem::copy(saved, journal);
  check();
}

TEST_F(LedgerTest, ConcurrentAppendsAreAllRecordedExactlyOnce) {
  auto ledger =
      Ledger::Open(dir_, {.flush_interval = std::chrono::milliseconds(1), .max_batch = 64});
  ASSERT_TRUE(ledger.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2500; ++i) {
        ASSERT_TRUE((*ledger)
                        ->Append(Rec(std::to_string(t) + "-" + std::to_string(i), "f", kT0 + i, 1))
                        .ok());
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  ASSERT_TRUE((*ledger)->Flush().ok());
  EXPECT_EQ(*(*ledger)->Count(), 10000u);
}

// Appends race the writer's generation swaps (every millisecond), and the process dies without
// flushing: every row must be in SQLite or in a journal generation still on disk. A row whose
// journal line landed in one generation and its queue entry in the next would be lost when the
// first generation was deleted after its commit.
TEST_F(LedgerTest, RowsAppendedDuringGenerationSwapsSurviveADeathWithoutFlushing) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto l = Ledger::Open(dir_, {.flush_interval = std::chrono::milliseconds(1), .max_batch = 16});
    if (!l.ok()) {
      ::_exit(2);
    }
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2000; ++i) {
          if (!(*l)->Append(Rec(std::to_string(t) + "-" + std::to_string(i), "f", kT0 + i, 1))
                   .ok()) {
            failed = true;
          }
        }
      });
    }
    for (auto& th : threads) {
      th.join();
    }
    ::_exit(failed ? 3 : 0);  // no flush, no destructor: the writer may be mid-commit
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto ledger = Ledger::Open(dir_);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  EXPECT_EQ(*(*ledger)->Count(), 8000u);
}

TEST_F(LedgerTest, LogsAreBoundedPerFunctionAndFollowable) {
  auto ledger = Ledger::Open(dir_, {.max_log_entries_per_function = 5});
  ASSERT_TRUE(ledger.ok());
  Ledger& l = **ledger;
  for (int i = 0; i < 12; ++i) {
    l.AppendLog({.invocation_id = "i" + std::to_string(i),
                 .function = "f",
                 .start_unix_ms = kT0 + i,
                 .text = "line " + std::to_string(i) + "\n"});
  }
  l.AppendLog({.invocation_id = "other", .function = "g", .text = std::string("a\0b", 3)});
  ASSERT_TRUE(l.Flush().ok());
  auto all = l.Logs("f", "", 100, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);  // the newest 5, oldest first
  EXPECT_EQ(all->front().invocation_id, "i7");
  EXPECT_EQ(all->back().text, "line 11\n");
  auto one = l.Logs("f", "i9", 100, 0);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(one->front().text, "line 9\n");
  auto newer = l.Logs("f", "", 100, all->at(2).seq);
  EXPECT_EQ(newer->size(), 2u);
  auto g = l.Logs("g", "", 10, 0);
  ASSERT_EQ(g->size(), 1u);
  EXPECT_EQ(g->front().text, std::string("a\0b", 3));  // binary output survives
}

}  // namespace
}  // namespace faas::store
