// Test support for the fault tests: a closed-loop load generator. N clients, each a thread with
// one keep-alive HTTP connection to its gateway, send GET requests back to back and record every
// request's outcome. A client whose gateway refuses a new connection moves to the next gateway
// (that is not a request: nothing was sent); a request whose connection breaks is recorded as a
// connection error and the client reconnects.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace faas::testing {

struct Gateway {
  std::string host;
  int port = 0;
};

// A group of clients that send the same request. A closed-loop lane sends the next request as
// soon as the last is answered; a paced lane (interval > 0) sends at most one per interval per
// client (async work: each request only queues, so a closed loop would flood the queue).
struct Lane {
  std::string method = "GET";
  std::string target;
  int clients = 0;
  std::chrono::milliseconds interval{0};
};

struct RequestRecord {
  int client = 0;
  int lane = 0;              // index into the lanes given to Load
  int gateway = 0;           // index into the gateways given to Load
  int status = 0;            // 0: no response (the connection broke, or the client deadline)
  bool timed_out = false;    // no answer within the client deadline (a test failure)
  std::string code;          // error.code of a JSON error body
  std::string message;       // its error.message
  std::string node;          // X-Faas-Node
  std::string invocation;    // X-Invocation-Id (or a 202's invocation_id)
  double sent_s = 0;         // seconds since the load started (steady clock)
  double conn_opened_s = 0;  // when the connection it was sent on began to connect (same clock)
  double answered_s = 0;
  double latency_ms() const { return (answered_s - sent_s) * 1000; }
};

class Load {
 public:
  // Client i starts on gateways[i % gateways.size()].
  Load(std::vector<Gateway> gateways, std::string target, int clients,
       std::chrono::milliseconds client_deadline);
  // Clients numbered across the lanes in order; client i starts on gateways[i % size].
  Load(std::vector<Gateway> gateways, std::vector<Lane> lanes,
       std::chrono::milliseconds client_deadline);
  ~Load();  // Stop()s
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void Start();
  // Tells every client to stop after its current request, and joins them.
  void Stop();
  // Seconds since Start() on the clock the records use.
  double Now() const;
  std::chrono::system_clock::time_point started_wall() const { return started_wall_; }

  // Valid after Stop().
  const std::vector<RequestRecord>& records() const { return records_; }
  // Connections a gateway refused (a client then moved on); not requests.
  int refused_connects() const { return refused_connects_.load(); }
  // Requests answered so far (any outcome), for polling while the load runs.
  int answered() const { return answered_.load(); }

 private:
  void Client(int index, int lane);

  std::vector<Gateway> gateways_;
  std::vector<Lane> lanes_;
  std::chrono::milliseconds deadline_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::system_clock::time_point started_wall_;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_connects_{0};
  std::atomic<int> answered_{0};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<RequestRecord> records_;
};

}  // namespace faas::testing
