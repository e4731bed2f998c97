#pragma once

// The node protocol's calls (NodeService.Invoke and InvokeSmall, on the node and on the
// gateway) on gRPC's completion-queue API, behind the few reactor methods they use
// (StartRead, StartWrite, Finish, OnDone, ...). One thread per process waits on the queue and
// runs every completion, so nothing hands a call from thread to thread inside gRPC
// (docs/design/0038-one-completion-queue.md).
//
// Rules the classes below keep for their users:
// - every completion of a call runs on the Runner's thread, so its handlers never run at once;
// - an operation may be started from any thread, but at most one read and one write at a time
//   (as with a reactor);
// - OnDone runs once, on that thread, after the call's last operation has completed, and may
//   delete the call. Only the completion of a Finish (or of an arrival that never came) can end
//   a call, and each start method touches nothing of the call after handing gRPC its operation:
//   a call started on another thread may be over by the time that start returns.

#include <atomic>
#include <memory>
#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>

namespace faas::daemon::cq {

// What a completion queue hands back: Done(ok) runs on the Runner's thread.
class Tag {
 public:
  virtual void Done(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// The one thread that waits on a completion queue and runs each tag. Stop() (or the
// destructor) shuts the queue down and returns once the thread has drained it: every call on
// the queue must have ended by then, and none may start after. Queue is grpc::CompletionQueue
// or grpc::ServerCompletionQueue.
template <typename Queue>
class Runner {
 public:
  explicit Runner(std::unique_ptr<Queue> queue) : queue_(std::move(queue)) {
    thread_ = std::thread([q = queue_.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) {
        static_cast<Tag*>(tag)->Done(ok);
      }
    });
  }
  ~Runner() { Stop(); }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Queue* queue() const { return queue_.get(); }

  void Stop() {
    if (thread_.joinable()) {
      queue_->Shutdown();
      thread_.join();
    }
  }

 private:
  std::unique_ptr<Queue> queue_;
  std::thread thread_;
};

// Counts one call's operations in flight; Ended runs after the last one, once the operation
// that ends the call (its Finish) has completed.
class Call {
 public:
  virtual ~Call() = default;

 protected:
  enum Kind { kArrive, kMeta, kRead, kWrite, kWritesDone, kFinish };
  // The tag of one kind of operation of this call.
  class Op final : public Tag {
   public:
    Op(Call* call, Kind kind) : call_(call), kind_(kind) {}
    void Done(bool ok) override { call_->Completed(kind_, ok); }

   private:
    Call* call_;
    Kind kind_;
  };

  // Before an operation starts: the tag to give it.
  Tag* Begin(Op* op) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    return op;
  }

 private:
  virtual void Handle(Kind kind, bool ok) = 0;
  virtual void Ended() = 0;  // calls the subclass's OnDone

  void Completed(Kind kind, bool ok) {
    Handle(kind, ok);  // may start further operations, never OnDone
    if (kind == kFinish || (kind == kArrive && !ok)) {  // answered, or shut down before it came
      over_ = true;
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1 && over_) {
      Ended();
    }
  }

  std::atomic<int> pending_{0};
  bool over_ = false;  // the Finish completed; only the Runner's thread touches it
};

// A server's unary call: Request asks gRPC for the next one; OnArrived runs when it came.
template <typename Request, typename Reply>
class ServerUnary : public Call {
 public:
  // For the service's RequestX(context(), request(), writer(), queue, queue, ArrivalTag()).
  grpc::ServerContext* context() { return &rpc_ctx_; }
  Request* request() { return &rpc_in_; }
  grpc::ServerAsyncResponseWriter<Reply>* writer() { return &rpc_writer_; }
  Tag* ArrivalTag() { return Begin(&arrive_); }

  void StartSendInitialMetadata() { rpc_writer_.SendInitialMetadata(Begin(&meta_)); }
  // Sends reply() with an OK status; any other status alone.
  void Finish(const grpc::Status& status) {
    if (status.ok()) {
      rpc_writer_.Finish(rpc_reply_, status, Begin(&finish_));
    } else {
      rpc_writer_.FinishWithError(status, Begin(&finish_));
    }
  }
  Reply* reply() { return &rpc_reply_; }

  virtual void OnDone() = 0;

 protected:
  // The call came (never when the server shut down first: OnDone only, then).
  virtual void OnArrived() = 0;

 private:
  void Ended() final { OnDone(); }
  void Handle(Kind kind, bool ok) override {
    if (kind == kArrive && ok) {
      OnArrived();
    }
  }

  grpc::ServerContext rpc_ctx_;
  Request rpc_in_;
  Reply rpc_reply_;
  grpc::ServerAsyncResponseWriter<Reply> rpc_writer_{&rpc_ctx_};
  Op arrive_{this, kArrive};
  Op meta_{this, kMeta};
  Op finish_{this, kFinish};
};

// A server's bidirectional stream that reads In and writes Out.
template <typename In, typename Out>
class ServerBidi : public Call {
 public:
  grpc::ServerContext* context() { return &rpc_ctx_; }
  grpc::ServerAsyncReaderWriter<Out, In>* stream() { return &rpc_stream_; }
  Tag* ArrivalTag() { return Begin(&arrive_); }

  void StartRead(In* in) { rpc_stream_.Read(in, Begin(&read_)); }
  void StartWrite(const Out* out) { rpc_stream_.Write(*out, Begin(&write_)); }
  void StartSendInitialMetadata() { rpc_stream_.SendInitialMetadata(Begin(&meta_)); }
  void Finish(const grpc::Status& status) { rpc_stream_.Finish(status, Begin(&finish_)); }

  virtual void OnDone() = 0;

 protected:
  virtual void OnArrived() = 0;
  virtual void OnReadDone(bool ok) = 0;
  virtual void OnWriteDone(bool ok) = 0;

 private:
  void Ended() final { OnDone(); }
  void Handle(Kind kind, bool ok) override {
    switch (kind) {
      case kArrive:
        if (ok) {
          OnArrived();
        }
        break;
      case kRead:
        OnReadDone(ok);
        break;
      case kWrite:
        OnWriteDone(ok);
        break;
      default:
        break;
    }
  }

  grpc::ServerContext rpc_ctx_;
  grpc::ServerAsyncReaderWriter<Out, In> rpc_stream_{&rpc_ctx_};
  Op arrive_{this, kArrive};
  Op meta_{this, kMeta};
  Op read_{this, kRead};
  Op write_{this, kWrite};
  Op finish_{this, kFinish};
};

// A client's unary call. OnReadInitialMetadataDone(ok) runs before OnDone(status); ok is false
// when the server answered with a status alone.
template <typename Reply>
class ClientUnary : public Call {
 public:
  // `rpc` from the stub's PrepareAsyncX on the Runner's queue; the reply lands in `reply`.
  void StartCall(std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> rpc, Reply* reply) {
    rpc_ = std::move(rpc);
    rpc_->StartCall();
    rpc_->ReadInitialMetadata(Begin(&meta_));
    rpc_->Finish(reply, &status_, Begin(&finish_));
  }

 protected:
  virtual void OnReadInitialMetadataDone(bool ok) = 0;
  virtual void OnDone(const grpc::Status& status) = 0;

 private:
  void Ended() final { OnDone(status_); }
  void Handle(Kind kind, bool ok) override {
    if (kind == kMeta) {
      OnReadInitialMetadataDone(ok);
    }
  }

  std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> rpc_;
  grpc::Status status_;
  Op meta_{this, kMeta};
  Op finish_{this, kFinish};
};

// A client's bidirectional stream that writes Out and reads In.
template <typename Out, typename In>
class ClientBidi : public Call {
 public:
  // `rpc` from the stub's PrepareAsyncX(ctx, ...) on the Runner's queue, with the first write
  // and read. The initial metadata waits for the first write (corked): StartCall and Write
  // share one set of operations, so a write may not start before StartCall's has completed.
  void StartCall(grpc::ClientContext* ctx,
                 std::unique_ptr<grpc::ClientAsyncReaderWriter<Out, In>> rpc, const Out* out,
                 In* in) {
    rpc_ = std::move(rpc);
    ctx->set_initial_metadata_corked(true);
    rpc_->StartCall(nullptr);                  // corked: starts no operation
    rpc_->ReadInitialMetadata(Begin(&meta_));  // before any Read, which would ask for it too
    StartWrite(out);
    StartRead(in);
    rpc_->Finish(&status_, Begin(&finish_));  // last: only its completion can end the call
  }
  void StartWrite(const Out* out) { rpc_->Write(*out, Begin(&write_)); }
  void StartWritesDone() { rpc_->WritesDone(Begin(&writes_done_)); }
  void StartRead(In* in) { rpc_->Read(in, Begin(&read_)); }

 protected:
  virtual void OnReadInitialMetadataDone(bool ok) = 0;
  virtual void OnWriteDone(bool ok) = 0;
  virtual void OnReadDone(bool ok) = 0;
  virtual void OnDone(const grpc::Status& status) = 0;

 private:
  void Ended() final { OnDone(status_); }
  void Handle(Kind kind, bool ok) override {
    switch (kind) {
      case kMeta:
        OnReadInitialMetadataDone(ok);
        break;
      case kWrite:
        OnWriteDone(ok);
        break;
      case kRead:
        OnReadDone(ok);
        break;
      default:
        break;
    }
  }

  std::unique_ptr<grpc::ClientAsyncReaderWriter<Out, In>> rpc_;
  grpc::Status status_;
  Op meta_{this, kMeta};
  Op write_{this, kWrite};
  Op writes_done_{this, kWritesDone};
  Op read_{this, kRead};
  Op finish_{this, kFinish};
};

}  // namespace faas::daemon::cq
