// faas-worker: loads one function library and serves invocations on fd 3.
//
// Order matters: confinement happens before dlopen (which runs the library's constructors), and
// nothing the function can reach is trusted by the daemon. Keep this file short and obvious.
#include "faas/sandbox/worker.h"

#include <dlfcn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "faas/base/time.h"
#include "faas/function.h"
#include "faas/sandbox/channel.h"
#include "faas/sandbox/jail.h"
#include "faas/v1/worker.pb.h"

// The opaque response the SDK's faas_response_* functions fill in.
struct faas_response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool overflow = false;
};

namespace {

constexpr int kChannelFd = 3;
constexpr std::size_t kMaxResponseBytes = 6u << 20;  // docs/cli.md default response limit
constexpr std::size_t kMaxResponseHeaders = 100;
constexpr std::size_t kMaxHeaderBytes = 8u << 10;

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

[[noreturn]] void Die(int code, const char* what) {
  std::fprintf(stderr, "faas-worker: %s\n", what);
  std::fflush(stderr);
  std::_Exit(code);
}

uint64_t NanosSince(faas::Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(faas::Clock::now() - t).count());
}

// Die with the daemon: a worker never outlives the process that owns its deadline.
void DieWithParent(pid_t parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
    Die(faas::sandbox::kExitJail, "parent is gone");
  }
}

void Send(const faas::v1::WorkerResponse& msg) {
  std::string frame(faas::sandbox::kFrameHeaderBytes, '\0');
  if (!msg.AppendToString(&frame) || !faas::sandbox::WriteFramed(kChannelFd, &frame).ok()) {
    Die(faas::sandbox::kExitChannelError, "cannot write to the channel");
  }
}

void SendReady(bool ok, std::string error, uint64_t load_ns, uint64_t init_ns) {
  faas::v1::WorkerResponse msg;
  auto* ready = msg.mutable_ready();
  ready->set_ok(ok);
  ready->set_error(std::move(error));
  ready->set_load_ns(load_ns);
  ready->set_init_ns(init_ns);
  Send(msg);
}

faas_str Str(const std::string& s) {
  return {s.data(), s.size()};
}

// Says "jailed, nothing of the function has run" (WorkerJailed: the daemon splits platform CPU
// from the function's init CPU here), then applies the function's environment, the daemon's
// answer (WorkerEnv), only now that the jail is entered, so it can no longer steer the dynamic
// loader or anything that ran as root.
void ApplyEnvironment() {
  faas::v1::WorkerResponse jailed;
  jailed.mutable_jailed();
  Send(jailed);
  faas::Result<std::string> frame =
      faas::sandbox::ReadFrame(kChannelFd, faas::sandbox::kMaxFrameBytes);
  faas::v1::WorkerEnv env;
  if (!frame.ok() || !env.ParseFromString(*frame)) {
    Die(faas::sandbox::kExitBadFrame, "expected the environment frame");
  }
  ::clearenv();
  for (const auto& var : env.vars()) {
    if (var.name().empty() ||
        var.name().find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
        var.value().find('\0') != std::string::npos ||
        ::setenv(var.name().c_str(), var.value().c_str(), 1) != 0) {
      Die(faas::sandbox::kExitBadFrame, "invalid environment variable");
    }
  }
}

// The daemon's request frames, read as they arrive on the channel. One recv usually brings a
// whole request, header and body (ReadFrame takes two: the header, then exactly the payload), and
// bytes past the end of a frame stay buffered for the next one, so requests written back to back
// are served in order without waiting again. The daemon is trusted here; a frame it could not
// have sent (over kMaxFrameBytes, or cut short by the end of the stream) ends the worker.
class RequestReader {
 public:
  // The next frame's payload, valid until the next call; a null view when the daemon closed the
  // channel between frames.
  std::string_view Next() {
    Consume();
    for (;;) {
      if (std::size_t total = FrameTotal(); total != 0 && size_ >= total) {
        last_ = total;
        return {buf_.get() + faas::sandbox::kFrameHeaderBytes,
                total - faas::sandbox::kFrameHeaderBytes};
      }
      if (!Fill()) {
        return {};
      }
    }
  }

 private:
  // Bytes asked of one recv: a typical request (a frame with a small body) fits, and the rest
  // of a bigger frame is asked in one piece. Small, because the buffer stays: zygote-forked
  // instances measured 16 KiB more private heap with a 16 KiB chunk, 12 KiB with this one
  // (density, docs/benchmarks.md).
  static constexpr std::size_t kReadChunk = 4u << 10;

  // Header plus payload of the buffered frame, or 0 while its header is incomplete.
  std::size_t FrameTotal() const {
    if (size_ < faas::sandbox::kFrameHeaderBytes) {
      return 0;
    }
    const uint32_t len = faas::sandbox::FrameLength(buf_.get());
    if (len > faas::sandbox::kMaxFrameBytes) {
      Die(faas::sandbox::kExitChannelError, "protocol violation: oversized request frame");
    }
    return faas::sandbox::kFrameHeaderBytes + len;
  }

  // Drops the frame Next returned last, keeping whatever followed it.
  void Consume() {
    if (last_ < size_) {
      std::memmove(buf_.get(), buf_.get() + last_, size_ - last_);
    }
    size_ -= last_;
    last_ = 0;
    if (size_ == 0 && capacity_ > 4 * kReadChunk) {
      buf_.reset();  // after a big request, an idle worker holds nothing big
      capacity_ = 0;
    }
  }

  // One recv after the buffered bytes: as much as has arrived, up to the end of the buffered
  // frame when that is longer than a chunk. False: the daemon closed the channel between frames.
  bool Fill() {
    const std::size_t total = FrameTotal();
    const std::size_t want = total > size_ + kReadChunk ? total - size_ : kReadChunk;
    if (capacity_ < size_ + want) {
      // Not zeroed: only the pages recv writes become the instance's own.
      auto bigger = std::make_unique_for_overwrite<char[]>(size_ + want);
      if (size_ > 0) {
        std::memcpy(bigger.get(), buf_.get(), size_);
      }
      buf_ = std::move(bigger);
      capacity_ = size_ + want;
    }
    for (;;) {
      // Idle until the next request: wait in poll(2), never asleep in recv (ReadBytes in
      // channel.cc says why). The request is almost never there yet when the last answer has
      // just gone, so a first recv would only cost an EAGAIN.
      (void)faas::sandbox::WaitReadable(kChannelFd, faas::Clock::time_point::max());
      const ssize_t n = ::recv(kChannelFd, buf_.get() + size_, want, MSG_DONTWAIT);
      if (n > 0) {
        size_ += static_cast<std::size_t>(n);
        return true;
      }
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        continue;
      }
      const bool closed = n == 0 || errno == ECONNRESET;
      if (closed && size_ == 0) {
        return false;
      }
      Die(faas::sandbox::kExitChannelError,
          closed ? "protocol violation: stream ended inside a frame" : "cannot read the channel");
    }
  }

  std::unique_ptr<char[]> buf_;  // the first size_ of capacity_ bytes are what has been read
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  std::size_t last_ = 0;  // bytes of the frame Next returned last
};

}  // namespace

// The SDK entry points a function library calls. Exported from the executable through
// worker.dynlist so that dlopen'ed libraries resolve them.
extern "C" {

FAAS_EXPORT int faas_response_set_status(faas_response* res, int status) {
  // 1xx are interim answers, never a final one: the daemon refuses them (docs/sdk.md).
  if (res == nullptr || status < 200 || status > 599) {
    return -1;
  }
  res->status = status;
  return 0;
}

FAAS_EXPORT int faas_response_set_header(faas_response* res, const char* name, const char* value) {
  if (res == nullptr || name == nullptr || value == nullptr ||
      res->headers.size() >= kMaxResponseHeaders) {
    return -1;
  }
  std::string_view n(name);
  std::string_view v(value);
  if (n.empty() || n.size() + v.size() > kMaxHeaderBytes) {
    return -1;
  }
  for (char c : n) {
    if (!IsTokenChar(c)) {
      return -1;
    }
  }
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return -1;  // no header injection
    }
  }
  std::string lower(n);
  for (char& c : lower) {
    c = Lower(c);
  }
  res->headers.emplace_back(std::move(lower), std::string(v));
  return 0;
}

FAAS_EXPORT int faas_response_write(faas_response* res, const void* data, size_t len) {
  if (res == nullptr || (data == nullptr && len != 0)) {
    return -1;
  }
  if (len > kMaxResponseBytes - res->body.size()) {
    res->overflow = true;
    return -1;
  }
  res->body.append(static_cast<const char*>(data), len);
  return 0;
}

FAAS_EXPORT const faas_str* faas_request_header(const faas_request* req, const char* name) {
  if (req == nullptr || name == nullptr) {
    return nullptr;
  }
  std::string_view want(name);
  for (std::size_t i = 0; i < req->header_count; ++i) {
    const faas_header& h = req->headers[i];
    if (h.name.len != want.size()) {
      continue;
    }
    bool same = true;
    for (std::size_t j = 0; j < want.size() && same; ++j) {
      same = Lower(h.name.data[j]) == Lower(want[j]);
    }
    if (same) {
      return &h.value;
    }
  }
  return nullptr;
}

}  // extern "C"

namespace faas::sandbox {

int WorkerMain(int argc, char** argv) {
  JailSpec spec;
  pid_t parent = 0;
  bool jail = true;
  bool zygote = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag(argv[i]);
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    auto number = [&] { return std::strtoull(value, nullptr, 10); };
    if (flag == "--no-jail") {  // for tests of the worker protocol only; faasd never passes it
      jail = false;
      continue;
    }
    if (flag == "--zygote") {
      zygote = true;
      continue;
    }
    ++i;
    if (flag == "--library") {
      spec.library = value;
    } else if (flag == "--parent-pid") {
      parent = static_cast<pid_t>(number());
    } else if (flag == "--uid") {
      spec.uid = static_cast<uid_t>(number());
    } else if (flag == "--gid") {
      spec.gid = static_cast<gid_t>(number());
    } else if (flag == "--memory-bytes") {
      spec.memory_bytes = number();
    } else if (flag == "--nproc") {
      spec.nproc = number();
    } else if (flag == "--tmp-bytes") {
      spec.tmp_bytes = number();
    } else if (flag == "--network") {
      spec.network_outbound = std::string_view(value) == "outbound";
    } else if (flag == "--egress-deny") {
      spec.egress_deny.emplace_back(value);
    } else if (flag == "--egress-allow") {
      spec.egress_allow.emplace_back(value);
    } else {
      Die(kExitUsage, "unknown flag");
    }
  }
  if (spec.library.empty() || parent <= 0 || (jail && (spec.uid == 0 || spec.gid == 0))) {
    Die(kExitUsage,
        "usage: faas-worker --library PATH --parent-pid PID --uid U --gid G "
        "[--memory-bytes N] [--nproc N] [--tmp-bytes N] [--network none|outbound] [--zygote] "
        "(channel on fd 3)");
  }
  struct stat st {};
  if (::fstat(kChannelFd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    Die(kExitNoChannel, "fd 3 is not the channel socket");
  }
  DieWithParent(parent);
  spec.zygote = zygote;
  std::string library = spec.library;
  std::vector<sock_filter> instance_filter;
  if (jail && zygote) {
    // Built before the jail's filter and before any function code runs.
    Result<std::vector<sock_filter>> built = BuildInstanceFilter();
    if (!built.ok()) {
      SendReady(false, "instance filter: " + built.status().message(), 0, 0);
      return kExitJail;
    }
    instance_filter = std::move(*built);
  }
  if (jail) {
    Result<std::string> in_jail = EnterJail(spec);
    if (!in_jail.ok()) {
      SendReady(false, in_jail.status().message(), 0, 0);
      return kExitJail;
    }
    library = *in_jail;
  }
  ApplyEnvironment();

  auto t0 = Clock::now();
  void* lib = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = ::dlerror();
    SendReady(false, std::string("dlopen: ") + (err ? err : "unknown error"), NanosSince(t0), 0);
    return 0;
  }
  const auto* abi = static_cast<const uint32_t*>(::dlsym(lib, "faas_abi_version"));
  if (abi == nullptr) {
    SendReady(false, "library does not export faas_abi_version (add FAAS_FUNCTION_ABI)",
              NanosSince(t0), 0);
    return 0;
  }
  if (*abi != FAAS_ABI_VERSION) {
    SendReady(false,
              "library is built for faas ABI " + std::to_string(*abi) + ", this worker runs ABI " +
                  std::to_string(FAAS_ABI_VERSION),
              NanosSince(t0), 0);
    return 0;
  }
  using HandleFn = int (*)(const faas_request*, faas_response*);
  using InitFn = int (*)();
  auto handle = reinterpret_cast<HandleFn>(::dlsym(lib, "faas_handle"));
  auto init = reinterpret_cast<InitFn>(::dlsym(lib, "faas_init"));
  if (handle == nullptr) {
    SendReady(false, "library does not export faas_handle", NanosSince(t0), 0);
    return 0;
  }
  uint64_t load_ns = NanosSince(t0);
  auto t1 = Clock::now();
  if (init != nullptr) {
    int rc = init();
    std::fflush(nullptr);
    if (rc != 0) {
      SendReady(false, "faas_init returned " + std::to_string(rc), load_ns, NanosSince(t1));
      return 0;
    }
  }
  SendReady(true, "", load_ns, NanosSince(t1));
  if (zygote) {
    const InstanceJail instance{
        .uid = spec.uid, .gid = spec.gid, .tmp_bytes = spec.tmp_bytes, .filter = &instance_filter};
    ServeForks(kChannelFd, jail ? &instance : nullptr);  // returns in a forked instance
  }

  faas::v1::WorkerRequest req;
  faas::v1::WorkerResponse reply;
  std::vector<faas_header> headers;
  RequestReader reader;
  for (;;) {
    std::string_view frame = reader.Next();
    if (frame.data() == nullptr) {
      return 0;  // the daemon closed the channel: retire
    }
    if (!req.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
      Die(kExitBadFrame, "malformed request frame");
    }
    headers.clear();
    for (const auto& h : req.headers()) {
      headers.push_back({Str(h.name()), Str(h.value())});
    }
    faas_request r{};
    r.method = Str(req.method());
    r.path = Str(req.path());
    r.query = Str(req.query());
    r.body = Str(req.body());
    r.invocation_id = Str(req.invocation_id());
    r.headers = headers.data();
    r.header_count = headers.size();
    r.trigger = Str(req.trigger());
    r.queue = Str(req.queue());
    r.message_id = Str(req.message_id());
    r.attempt = req.attempt();
    r.deadline_unix_ms = req.deadline_unix_ms();

    faas_response res;
    const auto handler_t0 = Clock::now();
    int rc = handle(&r, &res);
    std::fflush(nullptr);  // stdio buffers belong to this invocation's log

    reply.Clear();
    auto* result = reply.mutable_result();
    result->set_status(res.status);
    result->set_handler_return(rc);
    result->set_response_too_large(res.overflow);
    result->set_invocation_id(req.invocation_id());
    // Where this invocation's logs end, for a daemon that wrote the next request already (one
    // lseek; the O_APPEND writes ignore the position it moves).
    if (req.want_log_end()) {
      if (const off_t log_end = ::lseek(STDERR_FILENO, 0, SEEK_END); log_end >= 0) {
        result->set_log_end(static_cast<uint64_t>(log_end));
      }
      result->set_handler_ns(static_cast<uint64_t>(NanosSince(handler_t0)));
    }
    for (auto& [name, value] : res.headers) {
      auto* h = result->add_headers();
      h->set_name(std::move(name));
      h->set_value(std::move(value));
    }
    result->set_body(std::move(res.body));
    Send(reply);
  }
}

}  // namespace faas::sandbox
