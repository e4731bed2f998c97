#include "load.h"

#include <memory>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "http_client.h"

namespace faas::testing {

Load::Load(std::vector<Gateway> gateways, std::string target, int clients,
           std::chrono::milliseconds client_deadline)
    : Load(std::move(gateways), {Lane{.target = std::move(target), .clients = clients}},
           client_deadline) {}

Load::Load(std::vector<Gateway> gateways, std::vector<Lane> lanes,
           std::chrono::milliseconds client_deadline)
    : gateways_(std::move(gateways)), lanes_(std::move(lanes)), deadline_(client_deadline) {}

Load::~Load() {
  Stop();
}

void Load::Start() {
  started_ = std::chrono::steady_clock::now();
  started_wall_ = std::chrono::system_clock::now();
  int index = 0;
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
    for (int i = 0; i < lanes_[lane].clients; ++i, ++index) {
      threads_.emplace_back([this, index, lane] { Client(index, static_cast<int>(lane)); });
    }
  }
}

void Load::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
}

double Load::Now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

void Load::Client(int index, int lane) {
  const Lane& my = lanes_[static_cast<std::size_t>(lane)];
  std::size_t gw = static_cast<std::size_t>(index) % gateways_.size();
  auto next_send = std::chrono::steady_clock::now();
  std::unique_ptr<HttpConnection> conn;
  std::vector<RequestRecord> mine;
  int refusals_in_a_row = 0;
  double conn_opened_s = 0;
  while (!stop_) {
    if (conn == nullptr) {
      // When it began to connect: a blocking connect can return long after the gateway took it
      // (a client thread waits for a CPU), and the gateway may be gone by then.
      const double connecting_s = Now();
      conn = std::make_unique<HttpConnection>(gateways_[gw].host, gateways_[gw].port);
      if (!conn->Connected()) {
        // Nothing was sent: the gateway is gone. Move to the next one.
        conn.reset();
        ++refused_connects_;
        gw = (gw + 1) % gateways_.size();
        if (++refusals_in_a_row > 100) {
          break;  // every gateway refuses; the test sees the missing answers
        }
        continue;
      }
      refusals_in_a_row = 0;
      conn_opened_s = connecting_s;
    }
    if (my.interval.count() > 0) {
      // Paced: load shaping, not synchronisation (the wait is at most one interval).
      std::this_thread::sleep_until(next_send);
      next_send += my.interval;
      if (stop_) {
        break;
      }
    }
    RequestRecord r;
    r.client = index;
    r.lane = lane;
    r.gateway = static_cast<int>(gw);
    r.conn_opened_s = conn_opened_s;
    r.sent_s = Now();
    HttpResult res = conn->Request(my.method, my.target, "", {}, deadline_);
    r.answered_s = Now();
    r.status = res.status;
    r.node = res.Header("x-faas-node");
    r.invocation = res.Header("x-invocation-id");
    if (res.status == 0) {
      r.timed_out = r.answered_s - r.sent_s >= std::chrono::duration<double>(deadline_).count();
      conn.reset();  // broken: the next request opens a new connection
    } else if (res.status == 202) {
      if (r.invocation.empty()) {
        auto j = nlohmann::json::parse(res.body, nullptr, false);
        if (!j.is_discarded() && j.is_object()) {
          r.invocation = j.value("invocation_id", "");
        }
      }
    } else if (res.status != 200) {
      auto j = nlohmann::json::parse(res.body, nullptr, false);
      if (!j.is_discarded() && j.contains("error") && j["error"].is_object()) {
        r.code = j["error"].value("code", "");
        r.message = j["error"].value("message", "");
      }
    }
    if (res.Header("connection") == "close") {
      conn.reset();
    }
    mine.push_back(std::move(r));
    ++answered_;
  }
  std::lock_guard lock(mu_);
  records_.insert(records_.end(), mine.begin(), mine.end());
}

}  // namespace faas::testing
