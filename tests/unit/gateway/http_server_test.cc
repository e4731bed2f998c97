// HttpServer against a real socket on 127.0.0.1, driven by a raw POSIX client: the bytes on the
// wire are exactly what each test writes.
#include "faas/gateway/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "faas/base/event_loop.h"
#include "faas/base/unique_fd.h"
#include "faas/gateway/errors.h"

namespace faas::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = seconds(5);

// A parsed response as the client saw it.
struct ClientResponse {
  int status = 0;
  std::string head;  // status line + headers, lower-cased names not applied
  std::string body;
  // Value of the first header `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const std::size_t end = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, end - pos - 2);
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos && colon == name.size() &&
          strncasecmp(line.data(), name.data(), name.size()) == 0) {
        std::size_t v = colon + 1;
        while (v < line.size() && line[v] == ' ') {
          ++v;
        }
        return line.substr(v);
      }
      pos = end;
    }
    return "";
  }
};

// Minimal blocking client with a poll deadline on every read.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = ::connect(fd_.Get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_.Get(); }

  bool Send(std::string_view bytes) { return WriteAll(fd_.Get(), bytes).ok(); }

  // Reads one response: the head, then Content-Length bytes of body (or to EOF without it).
  std::optional<ClientResponse> ReadResponse(bool head_only = false) {
    const auto deadline = Clock::now() + kDeadline;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) {
        return std::nullopt;
      }
    }
    ClientResponse res;
    res.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    if (res.head.size() < 12) {
      return std::nullopt;
    }
    res.status = std::stoi(res.head.substr(9, 3));
    const std::string cl = res.Header("content-length");
    if (head_only) {
      return res;
    }
    if (cl.empty()) {
      while (Fill(deadline)) {
      }
      res.body = std::move(buf_);
      buf_.clear();
      return res;
    }
    const auto len = static_cast<std::size_t>(std::stoul(cl));
    while (buf_.size() < len) {
      if (!Fill(deadline)) {
        return std::nullopt;
      }
    }
    res.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return res;
  }

  // True when the server closed (EOF or reset) before the deadline, with no bytes pending.
  bool WaitClosed() {
    const auto deadline = Clock::now() + kDeadline;
    const std::size_t before = buf_.size();
    while (Fill(deadline)) {
    }
    return eof_ && buf_.size() == before;
  }

 private:
  // Appends what arrives before `deadline`; false on EOF, error or timeout.
  bool Fill(Clock::time_point deadline) {
    if (eof_) {
      return false;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd_.Get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
      return false;
    }
    char chunk[16384];
    const ssize_t n = ::recv(fd_.Get(), chunk, sizeof(chunk), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  UniqueFd fd_;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

// Echoes method, path, query and body; headers via X-Seen-* for inspection.
void EchoHandler(HttpRequest& req, HttpResponse& res) {
  res.headers.emplace_back("X-Method", req.method);
  res.headers.emplace_back("X-Path", req.path);
  res.headers.emplace_back("X-Query", req.query);
  res.headers.emplace_back("X-Target", req.target);
  std::string names;
  for (const auto& [name, value] : req.headers) {
    names += name + ";";
  }
  res.headers.emplace_back("X-Header-Names", names);
  if (const std::string* v = req.Header("x-custom")) {
    res.headers.emplace_back("X-Seen-Custom", *v);
  }
  res.headers.emplace_back("X-Remote", req.remote_addr);
  res.body = req.body;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}, Handler handler = EchoHandler) {
    server_ = std::make_unique<HttpServer>(std::move(options), std::move(handler));
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void StartAsyncServer(ServerOptions options, AsyncHandler handler) {
    server_ = std::make_unique<HttpServer>(std::move(options), std::move(handler));
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  // Polls `pred` until it holds or the deadline passes.
  template <typename Pred>
  static bool Eventually(Pred pred) {
    const auto deadline = Clock::now() + kDeadline;
    while (!pred()) {
      if (Clock::now() > deadline) {
        return false;
      }
      std::this_thread::yield();
    }
    return true;
  }

  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, ServesTwoGetsOnOneKeepAliveConnection) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send("GET /a/b HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto res = c.ReadResponse();
    ASSERT_TRUE(res.has_value()) << "request " << i;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->Header("x-path"), "/a/b");
    EXPECT_EQ(res->Header("content-length"), "0");
    EXPECT_EQ(res->Header("connection"), "");
    EXPECT_THAT(res->Header("x-remote"), HasSubstr("127.0.0.1:"));
  }
  EXPECT_EQ(server_->ActiveConnections(), 1u);
}

TEST_F(HttpServerTest, EchoesPostBody) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("x-method"), "POST");
  EXPECT_EQ(res->body, "hello world");
}

TEST_F(HttpServerTest, EchoesChunkedPostBody) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "hello world");
}

TEST_F(HttpServerTest, LowerCasesHeaderNamesInOrder) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Custom: Mixed Case\r\nACCEPT: */*\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("x-header-names"), "host;x-custom;accept;");
  EXPECT_EQ(res->Header("x-seen-custom"), "Mixed Case");
}

TEST_F(HttpServerTest, SplitsQueryFromPath) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /fn/x%20y?a=1&b=2?c HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("x-path"), "/fn/x%20y");
  EXPECT_EQ(res->Header("x-query"), "a=1&b=2?c");
  EXPECT_EQ(res->Header("x-target"), "/fn/x%20y?a=1&b=2?c");
}

TEST_F(HttpServerTest, RejectsOversizedContentLengthBeforeTheBody) {
  std::atomic<int> calls{0};
  StartServer({.max_body_bytes = 1024}, [&](HttpRequest&, HttpResponse&) { ++calls; });
  Client c(port_);
  // Only the head is sent: the 413 must come without the server waiting for the body.
  ASSERT_TRUE(
      c.Send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->Header("content-type"), "application/json");
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_FALSE(res->Header("x-invocation-id").empty());
  EXPECT_THAT(res->body, HasSubstr(R"({"error":{"code":"payload_too_large",)"));
  EXPECT_THAT(res->body, HasSubstr(res->Header("x-invocation-id")));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(server_->GetRejections().payload_too_large, 1u);
}

TEST_F(HttpServerTest, AcceptsBodyExactlyAtTheLimit) {
  StartServer({.max_body_bytes = 4});
  Client c(port_);
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "abcd");
}

TEST_F(HttpServerTest, RejectsChunkedBodyOverTheLimit) {
  StartServer({.max_body_bytes = 16});
  Client c(port_);
  ASSERT_TRUE(
      c.Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "10\r\n0123456789abcdef\r\n"));
  // 16 bytes so far: at the limit, not over it. The next chunk passes it.
  ASSERT_TRUE(c.Send("1\r\nX\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 413);
  EXPECT_THAT(res->body, HasSubstr("payload_too_large"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(server_->GetRejections().payload_too_large, 1u);
}

TEST_F(HttpServerTest, RejectsOversizedHeaderWith431) {
  StartServer({.max_header_bytes = 1024});
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 431);
  EXPECT_THAT(res->body, HasSubstr(R"("code":"header_too_large")"));
  EXPECT_TRUE(c.WaitClosed());
  const HttpServer::Rejections r = server_->GetRejections();
  EXPECT_EQ(r.header_too_large, 1u);
  EXPECT_EQ(r.payload_too_large, 0u);
  EXPECT_EQ(r.bad_request, 0u);
}

TEST_F(HttpServerTest, RejectsLongTargetWith414) {
  StartServer({.max_target_bytes = 100});
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 414);
  EXPECT_THAT(res->body, HasSubstr(R"("code":"uri_too_long")"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(server_->GetRejections().header_too_large, 1u);
  // A target at the limit is served.
  Client ok(port_);
  ASSERT_TRUE(ok.Send("GET /" + std::string(99, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto served = ok.ReadResponse();
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->status, 200);
}

TEST_F(HttpServerTest, RejectsContentLengthWithTransferEncoding) {
  StartServer();
  for (const char* request :
       {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        "0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"
        "hello"}) {
    Client c(port_);
    ASSERT_TRUE(c.Send(request));
    auto res = c.ReadResponse();
    ASSERT_TRUE(res.has_value()) << request;
    EXPECT_EQ(res->status, 400) << request;
    EXPECT_THAT(res->body, HasSubstr(R"("code":"bad_request")"));
    EXPECT_TRUE(c.WaitClosed()) << request;
  }
  EXPECT_EQ(server_->GetRejections().bad_request, 3u);
}

TEST_F(HttpServerTest, RejectsGarbageRequestLine) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("\x01\x02 garbage\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 400);
  EXPECT_THAT(res->body, HasSubstr("bad_request"));
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, ClosesHttp10ConnectionsAfterTheResponse) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.0\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HonoursConnectionClose) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HandlerCanAskToClose) {
  StartServer({}, [](HttpRequest&, HttpResponse& res) { res.close = true; });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, TimesOutAHalfSentRequest) {
  StartServer({.read_timeout = milliseconds(200)});
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n"));
  auto res = c.ReadResponse();  // within kDeadline (5 s)
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 408);
  EXPECT_THAT(res->body, HasSubstr("request_timeout"));
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(server_->GetRejections().request_timeout, 1u);
}

TEST_F(HttpServerTest, TheHeaderDeadlineCountsFromTheFirstByteAfterAKeepAliveWait) {
  // One timer per connection, moved (EventLoop::RescheduleTimer) from the idle deadline to the
  // header's at the first byte: the header gets its whole read_timeout, counted from that byte,
  // and the idle deadline it replaced does not fire.
  StartServer({.read_timeout = milliseconds(400)});
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c.ReadResponse();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  std::this_thread::sleep_for(milliseconds(250));  // the scenario: a keep-alive pause
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("GET /b HTTP/1.1\r\nHost: x\r\n"));  // half a header, then nothing
  auto res = c.ReadResponse();
  const auto took = std::chrono::steady_clock::now() - sent;
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 408);
  EXPECT_GE(took, milliseconds(390));  // not at the idle deadline, 150 ms after the byte
  EXPECT_EQ(server_->GetRejections().request_timeout, 1u);
}

TEST_F(HttpServerTest, ClosesAnIdleKeepAliveConnectionSilently) {
  StartServer({.read_timeout = milliseconds(200)});
  Client c(port_);
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_TRUE(Eventually([&] { return server_->ActiveConnections() == 0; }));
  EXPECT_EQ(server_->GetRejections().request_timeout, 0u);  // nothing was asked: no 408
}

TEST_F(HttpServerTest, AnswersNoCapacityBeyondMaxConnections) {
  StartServer({.max_connections = 1});
  Client first(port_);
  ASSERT_TRUE(first.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(first.ReadResponse().has_value());  // now surely accepted and counted

  Client second(port_);
  ASSERT_TRUE(second.connected());
  auto res = second.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, HasSubstr(R"("code":"no_capacity")"));
  EXPECT_EQ(res->Header("retry-after"), "1");
  EXPECT_TRUE(second.WaitClosed());

  // The first connection is unaffected.
  ASSERT_TRUE(first.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto again = first.ReadResponse();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->status, 200);
  const HttpServer::Rejections r = server_->GetRejections();
  EXPECT_EQ(r.connections_global, 1u);
  EXPECT_EQ(r.connections_per_ip, 0u);
}

TEST_F(HttpServerTest, AnswersRateLimitedBeyondMaxConnectionsPerIp) {
  StartServer({.max_connections_per_ip = 2});
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(open.back()->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(open.back()->ReadResponse().has_value());  // accepted and counted
  }

  Client third(port_);
  ASSERT_TRUE(third.connected());
  auto res = third.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->Header("content-type"), "application/json");
  EXPECT_EQ(res->Header("retry-after"), "1");
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_FALSE(res->Header("x-invocation-id").empty());
  EXPECT_THAT(res->body,
              HasSubstr(R"j({"error":{"code":"rate_limited","message":"too many open )j"
                        R"j(connections from 127.0.0.1 (at most 2 per client address)")j"));
  EXPECT_TRUE(third.WaitClosed());
  HttpServer::Rejections r = server_->GetRejections();
  EXPECT_EQ(r.connections_per_ip, 1u);
  EXPECT_EQ(r.connections_global, 0u);
  EXPECT_EQ(server_->ActiveConnections(), 2u);

  // The open connections are unaffected.
  for (auto& c : open) {
    ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto again = c->ReadResponse();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->status, 200);
  }

  // A closed connection frees its slot.
  open.pop_back();
  ASSERT_TRUE(Eventually([&] { return server_->ActiveConnections() == 1; }));
  Client fourth(port_);
  ASSERT_TRUE(fourth.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto served = fourth.ReadResponse();
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->status, 200);
  EXPECT_EQ(server_->GetRejections().connections_per_ip, 1u);
}

TEST_F(HttpServerTest, PerIpCapCountsRejectedAndFinishedConnectionsCorrectly) {
  StartServer({.max_connections_per_ip = 1});
  for (int round = 0; round < 3; ++round) {
    auto holder = std::make_unique<Client>(port_);
    ASSERT_TRUE(holder->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(holder->ReadResponse().has_value()) << round;
    Client refused(port_);
    auto res = refused.ReadResponse();
    ASSERT_TRUE(res.has_value()) << round;
    EXPECT_EQ(res->status, 429) << round;
    holder.reset();
    ASSERT_TRUE(Eventually([&] { return server_->ActiveConnections() == 0; })) << round;
  }
  EXPECT_EQ(server_->GetRejections().connections_per_ip, 3u);
}

TEST_F(HttpServerTest, ZeroMaxConnectionsPerIpMeansNoCap) {
  StartServer({.max_connections_per_ip = 0});
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto res = clients.back()->ReadResponse();
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_EQ(server_->ActiveConnections(), 5u);
  EXPECT_EQ(server_->GetRejections().connections_per_ip, 0u);
}

TEST_F(HttpServerTest, PerIpCapComesBeforeTheGlobalCap) {
  StartServer({.max_connections = 1, .max_connections_per_ip = 1});
  Client first(port_);
  ASSERT_TRUE(first.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(first.ReadResponse().has_value());
  Client second(port_);
  auto res = second.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 429);
  const HttpServer::Rejections r = server_->GetRejections();
  EXPECT_EQ(r.connections_per_ip, 1u);
  EXPECT_EQ(r.connections_global, 0u);
}

TEST_F(HttpServerTest, AClientThatNeverReadsIsDroppedAtTheWriteDeadline) {
  // 32 MiB cannot sit in the socket buffers, so the write blocks until the deadline.
  StartServer({.write_timeout = std::chrono::milliseconds(200)},
              [](HttpRequest&, HttpResponse& res) { res.body.assign(32u << 20, 'x'); });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(Eventually([&] { return server_->ActiveConnections() == 1; }));
  auto t0 = Clock::now();
  // The connection thread gives up and exits although the client never read a byte.
  EXPECT_TRUE(Eventually([&] { return server_->ActiveConnections() == 0; }));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(HttpServerTest, DrainFinishesTheRequestInFlightWithConnectionClose) {
  std::latch entered(1);
  std::latch release(1);
  StartServer({}, [&](HttpRequest&, HttpResponse& res) {
    entered.count_down();
    release.wait();
    res.body = "done";
  });
  Client busy(port_);
  ASSERT_TRUE(busy.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  entered.wait();
  Client idle(port_);  // connected, never sends anything
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(Eventually([&] { return server_->ActiveConnections() == 2; }));
  EXPECT_EQ(server_->InFlightRequests(), 1u);

  auto drained = std::async(std::launch::async, [&] { server_->Drain(seconds(5)); });
  // The idle connection is closed at once, while the request is still in flight.
  EXPECT_TRUE(idle.WaitClosed());
  EXPECT_EQ(drained.wait_for(milliseconds(0)), std::future_status::timeout);
  // New connections are refused.
  Client late(port_);
  EXPECT_FALSE(late.connected());

  release.count_down();
  auto res = busy.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "done");
  EXPECT_EQ(res->Header("connection"), "close");
  EXPECT_TRUE(busy.WaitClosed());
  ASSERT_EQ(drained.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(server_->ActiveConnections(), 0u);
  EXPECT_EQ(server_->InFlightRequests(), 0u);
}

TEST_F(HttpServerTest, DrainShutsDownRequestsStillReadingAfterGrace) {
  StartServer();
  Client slow(port_);
  ASSERT_TRUE(slow.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  ASSERT_TRUE(Eventually([&] { return server_->ActiveConnections() == 1; }));
  server_->Drain(milliseconds(50));  // returns although the body never completes
  EXPECT_EQ(server_->ActiveConnections(), 0u);
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500) {
  StartServer({}, [](HttpRequest&, HttpResponse&) { throw std::runtime_error("boom"); });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 500);
  EXPECT_THAT(res->body, HasSubstr(R"("code":"internal")"));
  EXPECT_THAT(res->body, ::testing::Not(HasSubstr("boom")));
  // The connection survives.
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto again = c.ReadResponse();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->status, 500);
}

TEST_F(HttpServerTest, DropsResponseHeadersThatWouldSplitTheResponse) {
  StartServer({}, [](HttpRequest&, HttpResponse& res) {
    res.headers.emplace_back("X-Ok", "fine");
    res.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: x=1");
    res.headers.emplace_back("X-Lf", "a\nX-Split: 1");
    res.headers.emplace_back("X-Nul", std::string("a\0b", 3));
    res.headers.emplace_back("Content-Length", "999");
    res.body = "abc";
  });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->Header("x-ok"), "fine");
  EXPECT_EQ(res->Header("set-cookie"), "");
  EXPECT_EQ(res->Header("x-lf"), "");
  EXPECT_EQ(res->Header("x-split"), "");
  EXPECT_EQ(res->Header("x-nul"), "");
  EXPECT_EQ(res->Header("content-length"), "3");
  EXPECT_EQ(res->body, "abc");
}

TEST_F(HttpServerTest, HeadResponseHasLengthButNoBody) {
  StartServer({}, [](HttpRequest&, HttpResponse& res) { res.body = "12345"; });
  Client c(port_);
  ASSERT_TRUE(c.Send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = c.ReadResponse(/*head_only=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->Header("content-length"), "5");
  auto get = c.ReadResponse();  // pipelined: proves no body bytes followed the HEAD answer
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "12345");
}

TEST_F(HttpServerTest, StartReportsAddressInUse) {
  StartServer();
  HttpServer other({.port = port_}, EchoHandler);
  auto port = other.Start();
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(port.status().message(),
            "bind(127.0.0.1:" + std::to_string(port_) + "): Address already in use [EADDRINUSE]");
}

TEST_F(HttpServerTest, StartRejectsANonNumericHost) {
  HttpServer server({.host = "localhost"}, EchoHandler);
  auto port = server.Start();
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kInvalidArgument);
}

// --- AsyncHandler: answers given on the loop, later, from other threads, or never.

TEST_F(HttpServerTest, AnAsyncHandlerRunsOnTheLoopAndMayAnswerAtOnce) {
  std::atomic<bool> on_loop{false};
  StartAsyncServer({}, [&](HttpRequest& req, Responder r) {
    on_loop = r.Loop()->InLoopThread();
    HttpResponse res;
    res.body = "inline " + req.path;
    r.Send(std::move(res));
  });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto a = c.ReadResponse();
  auto b = c.ReadResponse();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->body, "inline /a");
  EXPECT_EQ(b->body, "inline /b") << "pipelined requests are answered in order";
  EXPECT_TRUE(on_loop.load());
}

TEST_F(HttpServerTest, AnAsyncAnswerMayComeLaterFromAnotherThreadWithoutBlockingTheLoop) {
  std::mutex mu;
  std::vector<Responder> parked;  // answered by the test thread
  StartAsyncServer({.threads = 1}, [&](HttpRequest& req, Responder r) {
    if (req.path == "/park") {
      std::lock_guard lock(mu);
      parked.push_back(std::move(r));
      return;
    }
    HttpResponse res;
    res.body = "quick";
    r.Send(std::move(res));
  });
  Client slow(port_);
  ASSERT_TRUE(slow.Send("GET /park HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return parked.size() == 1;
  }));
  // One loop thread, and it is free: another client is served meanwhile.
  Client quick(port_);
  ASSERT_TRUE(quick.Send("GET /q HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto q = quick.ReadResponse();
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->body, "quick");
  EXPECT_EQ(server_->InFlightRequests(), 1u);
  std::thread([&] {
    HttpResponse res;
    res.body = "late";
    std::lock_guard lock(mu);
    parked[0].Send(std::move(res));
    HttpResponse again;
    again.status = 500;
    parked[0].Send(std::move(again));  // a second Send is ignored
  }).join();
  auto late = slow.ReadResponse();
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->status, 200);
  EXPECT_EQ(late->body, "late");
  auto after = slow.ReadResponse();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->body, "quick") << "the pipelined request waited for the parked one";
  std::lock_guard lock(mu);
  parked.clear();
}

TEST_F(HttpServerTest, AResponderDroppedUnansweredAnswers500) {
  StartAsyncServer({}, [](HttpRequest&, Responder) {});
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->status, 500);
  EXPECT_THAT(res->body, ::testing::HasSubstr("\"internal\""));
  // The connection stays usable.
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(c.ReadResponse().has_value());
}

TEST_F(HttpServerTest, DrainWaitsForAnAsyncAnswer) {
  std::promise<Responder> handed;
  StartAsyncServer({}, [&](HttpRequest&, Responder r) { handed.set_value(std::move(r)); });
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto f = handed.get_future();
  ASSERT_EQ(f.wait_for(kDeadline), std::future_status::ready);
  Responder r = f.get();
  auto drained = std::async(std::launch::async, [&] { server_->Drain(milliseconds(0)); });
  EXPECT_EQ(drained.wait_for(milliseconds(50)), std::future_status::timeout)
      << "a handler's answer is awaited even past the grace period";
  HttpResponse res;
  res.body = "x";
  r.Send(std::move(res));
  ASSERT_EQ(drained.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(server_->ActiveConnections(), 0u);
  EXPECT_EQ(server_->InFlightRequests(), 0u);
}

TEST_F(HttpServerTest, AClientThatStopsReadingDoesNotStallItsLoop) {
  StartAsyncServer({.write_timeout = std::chrono::seconds(20), .threads = 1},
                   [](HttpRequest& req, Responder r) {
                     HttpResponse res;
                     res.body = req.path == "/big" ? std::string(16u << 20, 'x') : "small";
                     r.Send(std::move(res));
                   });
  Client stuck(port_);
  ASSERT_TRUE(stuck.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));            // and never reads
  ASSERT_TRUE(Eventually([&] { return server_->InFlightRequests() == 0; }));  // answered: writing
  const auto t0 = Clock::now();
  Client other(port_);
  ASSERT_TRUE(other.Send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = other.ReadResponse();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->body, "small");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5)) << "served long before the write deadline";
  EXPECT_EQ(server_->ActiveConnections(), 2u) << "the stuck one is still being written";
}

TEST_F(HttpServerTest, APipeliningClientCannotHoldItsLoop) {
  constexpr int kRequests = 20000;
  std::atomic<int> greedy_handled{0};
  std::atomic<int> greedy_when_other{-1};  // how many of the burst were handled before /b
  StartAsyncServer({.threads = 1}, [&](HttpRequest& req, Responder r) {
    if (req.path == "/b") {
      greedy_when_other = greedy_handled.load();
    } else {
      ++greedy_handled;
    }
    HttpResponse res;
    res.body = req.path;  // answered inline, as a 401 or a health check is
    r.Send(std::move(res));
  });
  std::string burst;
  for (int i = 0; i < kRequests; ++i) {
    burst += "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  Client greedy(port_);
  std::thread reader([&] {  // reads as fast as it can, so its answers never back up
    for (int n = 0; n < kRequests && greedy.ReadResponse().has_value(); ++n) {
    }
  });
  std::thread writer([&] { greedy.Send(burst); });
  ASSERT_TRUE(Eventually([&] { return greedy_handled.load() > 0; }));
  Client other(port_);
  const int greedy_before = greedy_handled.load();
  ASSERT_TRUE(other.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = other.ReadResponse();
  writer.join();
  reader.join();
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->body, "/b");
  // Served within a few turns of 16 (thousands of the burst were still waiting without turns).
  EXPECT_LT(greedy_when_other.load() - greedy_before, kRequests / 10)
      << "the other client waited while the loop served the burst";
}

// Reads this process's thread count from /proc.
int ThreadCount() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "Threads:", 8) == 0) {
      n = std::atoi(line + 8);
    }
  }
  if (f != nullptr) {
    std::fclose(f);
  }
  return n;
}

TEST_F(HttpServerTest, ConnectionsDoNotCostAThreadEach) {
  StartAsyncServer({.threads = 2, .max_connections_per_ip = 0},
                   [](HttpRequest&, Responder r) { r.Send(HttpResponse{}); });
  const int before = ThreadCount();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 300; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->connected());
  }
  ASSERT_TRUE(Eventually([&] { return server_->ActiveConnections() == 300; }));
  for (auto& c : clients) {
    ASSERT_TRUE(c->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  for (auto& c : clients) {
    auto res = c->ReadResponse();
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_LE(ThreadCount(), before + 2) << "300 connections, still the same two loop threads";
}

TEST(HttpServerLifecycle, StopWithoutStartIsANoOp) {
  HttpServer server({}, EchoHandler);
  server.Stop();
  server.Stop();
  EXPECT_EQ(server.ActiveConnections(), 0u);
  const HttpServer::Rejections r = server.GetRejections();
  EXPECT_EQ(r.connections_global + r.connections_per_ip + r.header_too_large + r.payload_too_large +
                r.request_timeout + r.bad_request,
            0u);
}

TEST(ErrorResponse, HasTheDesignShapeAndHeaders) {
  HttpResponse res = MakeErrorResponse(429, "rate_limited", "slow \"down\"", "inv1", 3);
  EXPECT_EQ(res.status, 429);
  EXPECT_EQ(
      res.body,
      R"({"error":{"code":"rate_limited","message":"slow \"down\"","invocation_id":"inv1"}})");
  EXPECT_THAT(res.headers, ::testing::Contains(std::pair<std::string, std::string>(
                               "Content-Type", "application/json")));
  EXPECT_THAT(res.headers,
              ::testing::Contains(std::pair<std::string, std::string>("X-Invocation-Id", "inv1")));
  EXPECT_THAT(res.headers,
              ::testing::Contains(std::pair<std::string, std::string>("Retry-After", "3")));
  EXPECT_FALSE(res.close);
}

TEST(ErrorResponse, OmitsRetryAfterByDefault) {
  HttpResponse res = MakeErrorResponse(500, "internal", "x", "i");
  for (const auto& [name, value] : res.headers) {
    EXPECT_NE(name, "Retry-After");
  }
}

TEST(JsonEscape, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(JsonEscape(R"(a"b\c)"), R"(a\"b\\c)");
}

TEST(JsonEscape, EscapesControlCharacters) {
  EXPECT_EQ(JsonEscape(std::string_view("\n\r\t\b\f\x01\x1f\0", 8)),
            R"(\n\r\t\b\f\u0001\u001f\u0000)");
  EXPECT_EQ(JsonEscape("\x7f"), "\x7f");  // DEL is legal in JSON strings
}

TEST(JsonEscape, KeepsValidUtf8) {
  EXPECT_EQ(JsonEscape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(JsonEscape, ReplacesInvalidUtf8) {
  EXPECT_EQ(JsonEscape("a\xff"
                       "b"),
            R"(a\ufffdb)");
  EXPECT_EQ(JsonEscape("\xc0\xaf"), R"(\ufffd\ufffd)");                      // overlong '/'
  EXPECT_EQ(JsonEscape("\xed\xa0\x80"), R"(\ufffd\ufffd\ufffd)");            // UTF-16 surrogate
  EXPECT_EQ(JsonEscape("\xf4\x90\x80\x80"), R"(\ufffd\ufffd\ufffd\ufffd)");  // > U+10FFFF
  EXPECT_EQ(JsonEscape("\xe2\x82"), R"(\ufffd\ufffd)");                      // truncated
  EXPECT_EQ(JsonEscape("\x80"), R"(\ufffd)");                                // lone continuation
}

}  // namespace
}  // namespace faas::gateway
