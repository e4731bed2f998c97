// Status and Result<T>: error values shaped like absl::Status.
//
//   faas::Result<int> ParsePort(std::string_view s);
//   FAAS_ASSIGN_OR_RETURN(int port, ParsePort(flag));
//   if (port == 0) return faas::InvalidArgumentError("port must not be 0");
//
// Thread-compatible value types. Codes are chosen by what the caller should do next.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace faas {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong
  kNotFound,            // no such object
  kAlreadyExists,       // it is there already (e.g. a concurrent deploy: "conflict")
  kFailedPrecondition,  // the host must be fixed; the message says how
  kResourceExhausted,   // a limit was hit
  kUnavailable,         // a retry may work
  kDeadlineExceeded,    // a deadline passed
  kAborted,             // a concurrent operation won (deploy conflict)
  kInternal,            // our bug, or a peer that broke protocol
  kUnauthenticated,
  kPermissionDenied,
  kUnknown,  // the outcome is not known: a connection broke after the request left
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NOT_FOUND: function "x" does not exist"
  std::string ToString() const;
  // Explicitly drops an error; callers say why in a comment.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() {
  return Status();
}
inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status AlreadyExistsError(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhaustedError(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status UnavailableError(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status DeadlineExceededError(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status UnknownError(std::string m) {
  return {StatusCode::kUnknown, std::move(m)};
}
inline Status AbortedError(std::string m) {
  return {StatusCode::kAborted, std::move(m)};
}
inline Status InternalError(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// "open(/sys/fs/cgroup/x): Permission denied [EACCES]"
Status ErrnoError(int err, std::string_view call, std::string_view object = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) {
      v_ = Status(StatusCode::kInternal, "Result constructed from OK status");
    }
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace faas

#define FAAS_CONCAT_INNER_(a, b) a##b
#define FAAS_CONCAT_(a, b) FAAS_CONCAT_INNER_(a, b)

#define FAAS_RETURN_IF_ERROR(expr)        \
  do {                                    \
    ::faas::Status faas_status_ = (expr); \
    if (!faas_status_.ok()) {             \
      return faas_status_;                \
    }                                     \
  } while (false)

// tmp and lhs are declarations (`auto x`), which parentheses would break.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define FAAS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) {                                  \
    return tmp.status();                            \
  }                                                 \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#define FAAS_ASSIGN_OR_RETURN(lhs, expr) \
  FAAS_ASSIGN_OR_RETURN_IMPL_(FAAS_CONCAT_(faas_result_, __LINE__), lhs, expr)

// Aborts on a broken invariant of our own code. Never for kernel results, user input or frames.
#define FAAS_CHECK(cond)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      ::faas::internal::CheckFailed(#cond, __FILE__, __LINE__); \
    }                                                           \
  } while (false)

namespace faas::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}  // namespace faas::internal
