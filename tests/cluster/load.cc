#include "load.h"

#include <memory>

#include <nlohmann/json.hpp>

#include "http_client.h"

namespace faas::testing {

Load::Load(std::vector<Gateway> gateways, std::string target, int clients,
           std::chrono::milliseconds client_deadline)
    : gateways_(std::move(gateways)),
      target_(std::move(target)),
      clients_(clients),
      deadline_(client_deadline) {}

Load::~Load() {
  Stop();
}

void Load::Start() {
  started_ = std::chrono::steady_clock::now();
  started_wall_ = std::chrono::system_clock::now();
  for (int i = 0; i < clients_; ++i) {
    threads_.emplace_back([this, i] { Client(i); });
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

void Load::Client(int index) {
  std::size_t gw = static_cast<std::size_t>(index) % gateways_.size();
  std::unique_ptr<HttpConnection> conn;
  std::vector<RequestRecord> mine;
  int refusals_in_a_row = 0;
  while (!stop_) {
    if (conn == nullptr) {
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
    }
    RequestRecord r;
    r.client = index;
    r.gateway = static_cast<int>(gw);
    r.sent_s = Now();
    HttpResult res = conn->Request("GET", target_, "", {}, deadline_);
    r.answered_s = Now();
    r.status = res.status;
    r.node = res.Header("x-faas-node");
    r.invocation = res.Header("x-invocation-id");
    if (res.status == 0) {
      r.timed_out = r.answered_s - r.sent_s >= std::chrono::duration<double>(deadline_).count();
      conn.reset();  // broken: the next request opens a new connection
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
