// End-to-end: every control API method but GetVersion refuses a caller without the admin token
// (UNAUTHENTICATED, faas-code "unauthorized"). The methods come from control.proto's descriptor,
// so a method added later is covered without editing this file.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "faas/v1/control.pb.h"

#include "e2e/faasd_test.h"
#include "faasd_process.h"

namespace faas::testing {
namespace {

struct CallResult {
  grpc::Status status;
  std::string faas_code;  // trailing metadata "faas-code"
};

class ControlAuth : public FaasdTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Logs();
    channel_ = grpc::CreateChannel(d_.grpc_addr(), grpc::InsecureChannelCredentials());
  }

  // Every method of faas.v1.Control by name.
  static std::vector<std::string> Methods() {
    const google::protobuf::ServiceDescriptor* service =
        v1::DeployChunk::descriptor()->file()->FindServiceByName("Control");
    std::vector<std::string> names;
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
      names.push_back(service->method(i)->name());
    }
    return names;
  }

  // Calls `method` with an empty request (valid for every message type) and, unless empty,
  // `authorization` as the header of that name.
  CallResult Call(const std::string& method, const std::string& authorization) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!authorization.empty()) {
      ctx.AddMetadata("authorization", authorization);
    }
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::CompletionQueue cq;
    auto call = stub.PrepareUnaryCall(&ctx, "/faas.v1.Control/" + method, request, &cq);
    call->StartCall();
    grpc::ByteBuffer response;
    CallResult out;
    int tag = 0;
    call->Finish(&response, &out.status, &tag);
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok) && got == &tag) << method;
    cq.Shutdown();
    while (cq.Next(&got, &ok)) {
    }
    auto it = ctx.GetServerTrailingMetadata().find("faas-code");
    if (it != ctx.GetServerTrailingMetadata().end()) {
      out.faas_code.assign(it->second.data(), it->second.size());
    }
    return out;
  }

  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ControlAuth, EveryMethodButGetVersionRefusesACallerWithoutTheAdminToken) {
  const std::string token = d_.AdminToken();
  ASSERT_FALSE(token.empty());
  std::string near_miss = token;
  near_miss.back() = near_miss.back() == 'a' ? 'b' : 'a';  // same length: the constant-time path
  const std::vector<std::string> refused = {
      "",  // no header
      "Bearer not-the-admin-token",
      "Bearer " + near_miss,
      "Bearer " + token + "x",
      token,  // the right token without the scheme
      "bearer " + token,
      "Basic " + token,
  };
  std::vector<std::string> methods = Methods();
  ASSERT_GE(methods.size(), 27u) << "control.proto's descriptor is missing methods";
  for (const std::string& method : methods) {
    if (method == "GetVersion") {
      continue;
    }
    for (const std::string& authorization : refused) {
      CallResult r = Call(method, authorization);
      EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with authorization \"" << authorization
          << "\": " << r.status.error_message();
      EXPECT_EQ(r.faas_code, "unauthorized") << method;
    }
  }
}

TEST_F(ControlAuth, TheAdminTokenPassesEveryMethodsCheck) {
  // Empty requests: most methods then refuse the input, but none for the token.
  const std::string authorization = "Bearer " + d_.AdminToken();
  for (const std::string& method : Methods()) {
    CallResult r = Call(method, authorization);
    EXPECT_NE(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method << ": " << r.status.error_message();
    EXPECT_NE(r.faas_code, "unauthorized") << method;
  }
}

TEST_F(ControlAuth, GetVersionNeedsNoToken) {
  CallResult r = Call("GetVersion", "");
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
}

}  // namespace
}  // namespace faas::testing
