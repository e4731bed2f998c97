// UniqueFd: owns one file descriptor; move-only. Plus EINTR-safe full read/write helpers.
//
//   FAAS_ASSIGN_OR_RETURN(faas::UniqueFd fd, faas::OpenReadOnly(path));
//   FAAS_RETURN_IF_ERROR(faas::WriteAll(fd.Get(), data));
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "faas/base/status.h"

namespace faas {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  [[nodiscard]] int Release() { return std::exchange(fd_, -1); }
  // Closes the old fd; a close() error is logged to stderr, never retried (close(2) NOTES).
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of `data`, retrying EINTR and short writes. Uses send(MSG_NOSIGNAL) on sockets
// so a dead peer is EPIPE, not SIGPIPE.
Status WriteAll(int fd, std::string_view data);
// Reads exactly `out.size()` bytes. EOF before that is kUnavailable("end of stream").
Status ReadExact(int fd, std::span<char> out);
// Reads a whole (small) file. Fails with kResourceExhausted past `max_bytes`.
Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes = 64u << 20);
// Writes a file atomically: temp file in the same dir, fsync, rename.
Status WriteFileAtomic(const std::string& path, std::string_view data);

}  // namespace faas
