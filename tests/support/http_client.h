// Test support: a small blocking HTTP/1.1 client over a real TCP socket, for e2e tests.
// Sends exactly the bytes given (raw mode) or a well-formed request; parses status, headers
// (names lower-cased), and a Content-Length or chunked body. Every read has a deadline.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace faas::testing {

struct HttpResult {
  int status = 0;  // 0: no response (connection closed or deadline)
  std::map<std::string, std::string> headers;
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpConnection {
 public:
  HttpConnection(const std::string& host, int port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  bool Connected() const { return fd_ >= 0; }
  // Sends a request (Content-Length added when body is non-empty or method is POST/PUT).
  HttpResult Request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends raw bytes, then reads one response.
  HttpResult Raw(const std::string& bytes,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  HttpResult ReadResponse(std::chrono::milliseconds timeout);
  int fd_ = -1;
  std::string buffered_;
};

// The `phase;dur=` value of the response's Server-Timing header in ms (faasd's own measurement of
// queue, cold, exec or cpu), or -1 when the header or the phase is missing. Tests assert timings
// on these rather than on the client's clock, which shares the CPUs with the rest of the run.
double ServerTimingMs(const HttpResult& r, const std::string& phase);

// One request on a fresh connection.
// Reads one small HTTP/1.1 request from `fd` (a test server's accepted socket): until its
// Content-Length body is in, the peer closes, or nothing arrives for `idle`. Returns it raw.
std::string ReadHttpRequest(int fd, std::chrono::milliseconds idle);

HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace faas::testing
