#include "grpc_awake.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace faas::daemon {

namespace {

// Well under the nexting threads' 1 s wait: the thread that took the last tick has at least
// 1 s - kPeriod left before it could time out.
constexpr std::chrono::milliseconds kPeriod{250};

// connect() to a path under /dev/null fails at once (ENOTDIR) on every host, so each tick is a
// call that fails inside this process, touching no socket and no server. Its completion is what
// the callback threads need; the status is ignored.
constexpr const char* kNowhere = "unix:/dev/null/faas-grpc-awake";

}  // namespace

class GrpcAwake {
 public:
  GrpcAwake()
      : channel_(grpc::CreateChannel(kNowhere, grpc::InsecureChannelCredentials())),
        stub_(channel_),
        request_(&empty_, 1),
        thread_([this] { Run(); }) {}

  ~GrpcAwake() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  GrpcAwake(const GrpcAwake&) = delete;
  GrpcAwake& operator=(const GrpcAwake&) = delete;

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, kPeriod, [this] { return stop_; })) {
      if (in_flight_) {
        continue;  // the last tick has not ended yet (it always ends by its deadline)
      }
      in_flight_ = true;
      ctx_ = std::make_unique<grpc::ClientContext>();
      ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      lock.unlock();
      stub_.UnaryCall(ctx_.get(), "/faas.Awake/Tick", grpc::StubOptions(), &request_, &reply_,
                      [this](const grpc::Status&) {
                        std::lock_guard done(mu_);
                        in_flight_ = false;
                        cv_.notify_all();
                      });
      lock.lock();
    }
    cv_.wait(lock, [this] { return !in_flight_; });  // the callback uses this object
  }

  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  grpc::Slice empty_;
  grpc::ByteBuffer request_;  // one empty slice: a default ByteBuffer is no message at all
  grpc::ByteBuffer reply_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;       // guarded by mu_
  bool in_flight_ = false;  // guarded by mu_
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::thread thread_;  // last: starts once the members above exist
};

std::shared_ptr<GrpcAwake> KeepGrpcCallbackThreadsAwake() {
  static std::mutex mu;
  static std::weak_ptr<GrpcAwake> current;
  std::lock_guard lock(mu);
  std::shared_ptr<GrpcAwake> held = current.lock();
  if (held == nullptr) {
    held = std::make_shared<GrpcAwake>();
    current = held;
  }
  return held;
}

}  // namespace faas::daemon
