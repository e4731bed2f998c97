// C++ helpers over the faas C ABI. Header-only; needs nothing but this header and function.h.
//
//   #include <faas/function.hpp>
//   faas::Response Handle(const faas::Request& req) {
//     return faas::Response::Text("hello " + std::string(req.Query()) + "\n");
//   }
//   FAAS_HANDLER(Handle)
//
// An exception escaping the handler becomes a 500 function_error; its what() goes to stderr.
#pragma once

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/function.h"

namespace faas {

inline std::string_view View(faas_str s) {
  return {s.data, s.len};
}

class Request {
 public:
  explicit Request(const faas_request* r) : r_(r) {}
  std::string_view Method() const { return View(r_->method); }
  std::string_view Path() const { return View(r_->path); }
  std::string_view Query() const { return View(r_->query); }
  std::string_view Body() const { return View(r_->body); }
  std::string_view InvocationId() const { return View(r_->invocation_id); }
  std::string_view Trigger() const { return View(r_->trigger); }
  std::string_view Queue() const { return View(r_->queue); }
  std::string_view MessageId() const { return View(r_->message_id); }
  uint32_t Attempt() const { return r_->attempt; }
  int64_t DeadlineUnixMs() const { return r_->deadline_unix_ms; }
  std::size_t HeaderCount() const { return r_->header_count; }
  std::pair<std::string_view, std::string_view> HeaderAt(std::size_t i) const {
    return {View(r_->headers[i].name), View(r_->headers[i].value)};
  }
  // Case-insensitive; nullopt if absent.
  std::optional<std::string_view> Header(const char* name) const {
    const faas_str* v = faas_request_header(r_, name);
    if (v == nullptr) {
      return std::nullopt;
    }
    return View(*v);
  }
  // The value of `key` in the query string (no percent-decoding), or nullopt.
  std::optional<std::string_view> QueryParam(std::string_view key) const {
    std::string_view q = Query();
    while (!q.empty()) {
      std::size_t amp = q.find('&');
      std::string_view item = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      std::size_t eq = item.find('=');
      if (item.substr(0, eq) == key) {
        return eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      }
    }
    return std::nullopt;
  }
  const faas_request* Raw() const { return r_; }

 private:
  const faas_request* r_;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  static Response Text(std::string body, int status = 200) {
    Response r;
    r.status = status;
    r.headers.emplace_back("content-type", "text/plain; charset=utf-8");
    r.body = std::move(body);
    return r;
  }
  static Response Json(std::string body, int status = 200) {
    Response r;
    r.status = status;
    r.headers.emplace_back("content-type", "application/json");
    r.body = std::move(body);
    return r;
  }
};

namespace internal {
template <typename Fn>
int Dispatch(Fn fn, const faas_request* req, faas_response* res) {
  try {
    Response out = fn(Request(req));
    if (faas_response_set_status(res, out.status) != 0) {
      return 1;
    }
    for (const auto& [name, value] : out.headers) {
      if (faas_response_set_header(res, name.c_str(), value.c_str()) != 0) {
        return 1;
      }
    }
    return faas_response_write(res, out.body.data(), out.body.size()) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unhandled exception: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "unhandled exception\n");
  }
  return 1;
}
}  // namespace internal

}  // namespace faas

// Defines faas_abi_version and faas_handle for `faas::Response fn(const faas::Request&)`.
#define FAAS_HANDLER(fn)                                                                \
  FAAS_FUNCTION_ABI                                                                     \
  extern "C" FAAS_EXPORT int faas_handle(const faas_request* req, faas_response* res) { \
    return ::faas::internal::Dispatch(fn, req, res);                                    \
  }
