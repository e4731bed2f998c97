#include "faas/base/unique_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace faas {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0 && ::close(fd_) != 0 && errno != EINTR) {
    std::fprintf(stderr, "close(%d): %s\n", fd_, std::strerror(errno));
  }
  fd_ = fd;
}

Status WriteAll(int fd, std::string_view data) {
  bool is_socket = true;
  while (!data.empty()) {
    ssize_t n = is_socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                          : ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == ENOTSOCK && is_socket) {
        is_socket = false;
        continue;
      }
      return ErrnoError(errno, "write");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return OkStatus();
}

Status ReadExact(int fd, std::span<char> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "read");
    }
    if (n == 0) {
      return UnavailableError("end of stream");
    }
    got += static_cast<std::size_t>(n);
  }
  return OkStatus();
}

Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open", path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.Get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "read", path);
    }
    if (n == 0) {
      break;
    }
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return ResourceExhaustedError(path + " is larger than " + std::to_string(max_bytes) +
                                    " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.Valid()) {
      return ErrnoError(errno, "open", tmp);
    }
    FAAS_RETURN_IF_ERROR(WriteAll(fd.Get(), data));
    if (::fsync(fd.Get()) != 0) {
      return ErrnoError(errno, "fsync", tmp);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "rename", path);
  }
  return OkStatus();
}

}  // namespace faas
